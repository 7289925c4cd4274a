"""tacn clean-invalid-trade-date: dry run by default; with --yes, back up then delete in batches."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import (
    DatabaseOption,
    DataSourceOption,
    JsonOption,
    QuietOption,
    StoreOption,
    SymbolsOption,
    VerboseOption,
)
from tacn.cli.progress import ProgressDisplay
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors, open_store_for

YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Back up and delete (default: dry run).")]
BackupDirOption = Annotated[
    Path | None,
    typer.Option("--backup-dir", metavar="DIR", help="Where backups go (default: $TACN_HOME/backups).", show_default=False),
]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", metavar="N", help="Records deleted per batch.", min=1)]
SYMBOLS_SHOWN = 30


def default_backup_dir(env) -> Path:
    from tacn.cli.settings import tacn_home

    return tacn_home(env) / "backups"


def may_ask(out: Output) -> bool:
    """Whether a dry run may offer to apply (a terminal on both ends, no --json)."""
    return not out.json_mode and sys.stdin.isatty() and sys.stdout.isatty()


def store_mode(out: Output, yes: bool) -> str:
    """A dry run that cannot turn into a change reads through a read-only connection."""
    return "write" if yes or may_ask(out) else "read"


def ask_to_apply(out: Output, selected: int) -> bool:
    """On a terminal, offer to apply what the dry run showed; never when stdin is not a terminal."""
    if selected == 0 or not may_ask(out):
        return False
    return typer.confirm(f"Back up and delete these {selected:,} records?", default=False)


def render_clean(out: Output, result) -> None:
    """The dry-run summary or what was backed up and deleted (tables on stdout)."""
    verb = "would be removed" if result.dry_run else "selected"
    out.line(f"{result.selected:,} records with an invalid trade_date {verb} ({result.store})",
             style="red" if result.selected and result.dry_run else None)
    if result.selected:
        out.table("by data_source", ["data_source", "records"], [[k, v] for k, v in result.by_data_source.items()])
        out.table("by kind of bad value", ["kind", "records"], [[k, v] for k, v in result.by_kind.items()])
        out.table(
            "samples",
            ["_id", "symbol", "data_source", "period", "trade_date", "kind"],
            [[s["_id"], s["symbol"], s["data_source"], s["period"], repr(s["trade_date"]), s["kind"]]
             for s in result.samples],
        )
        shown = ", ".join(result.symbols[:SYMBOLS_SHOWN])
        more = f" … and {len(result.symbols) - SYMBOLS_SHOWN} more" if len(result.symbols) > SYMBOLS_SHOWN else ""
        out.line(f"affected symbols ({len(result.symbols)}): {shown}{more}")
    if result.dry_run:
        out.line("dry run: nothing changed. Run again with --yes to back up and delete.", style="yellow")
        return
    out.line(f"backup: {result.backup}")
    out.line(f"manifest: {result.manifest}")
    out.line(f"deleted {result.deleted:,} records in {result.batches} batch(es); "
             f"undo with: tacn restore {result.manifest}", style="green")


def clean_command(
    data_source: DataSourceOption = None,
    symbols: SymbolsOption = None,
    yes: YesOption = False,
    backup_dir: BackupDirOption = None,
    batch_size: BatchSizeOption = 50_000,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    store: StoreOption = None,
    database: DatabaseOption = None,
) -> None:
    """Back up and delete invalid trade_dates.

    Finds records whose trade_date is not a valid YYYY-MM-DD date. The selection is validators' date rule ("0", "20251023", "2025/10/23", "2024-02-30", missing, …).
    Without --yes: a dry run (count, breakdowns, 10 samples, affected symbols). With --yes: every
    selected record is first written to a backup (Extended JSON Lines + manifest, fsynced), then
    deleted in batches, on FerretDB mostly in one guarded pass. `tacn restore MANIFEST` undoes it.
    """
    from tacn.cli.options import parse_choice, parse_symbols
    from tacn.cli.settings import load_env
    from tacn.pipelines.stores.base import RecordFilter
    from tacn.validators.records import DATA_SOURCES

    # parsed outside handle_errors: typer's BadParameter must reach typer (usage error, exit 2)
    flt = RecordFilter(
        data_source=parse_choice(data_source, DATA_SOURCES, "--data-source"), symbols=parse_symbols(symbols)
    )
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        from tacn.pipelines.recovery.clean import clean_invalid_trade_date

        env = load_env()
        target = backup_dir if backup_dir is not None else default_backup_dir(env)
        with open_store_for(out, store, database, env=env, mode=store_mode(out, yes)) as opened, \
                ProgressDisplay(out, "delete", plain=False) as display:
            progress = display if display.wanted else None  # the batches deleted of the backup's count
            result = clean_invalid_trade_date(opened, flt, apply=yes, backup_dir=target, batch_size=batch_size,
                                              progress=progress)
            if not yes and ask_to_apply(out, result.selected):
                result = clean_invalid_trade_date(opened, flt, apply=True, backup_dir=target, batch_size=batch_size,
                                                  progress=progress)
        if not result.dry_run:
            out.info(f"backed up {result.selected:,} records to {result.backup}")
        if json_:
            out.json(result)
        else:
            render_clean(out, result)
    raise typer.Exit(exit_codes.OK)


ORDER = 30


def register(app: typer.Typer) -> None:
    app.command("clean-invalid-trade-date", epilog=examples(
        ("Dry run: count, breakdowns and samples; nothing changes", "tacn clean-invalid-trade-date"),
        ("Back up, then delete AKShare's bad records", "tacn clean-invalid-trade-date --data-source akshare --yes"),
        ("Backups elsewhere, smaller batches",
         "tacn clean-invalid-trade-date --yes --backup-dir /srv/bk --batch-size 5000"),
    ))(clean_command)
