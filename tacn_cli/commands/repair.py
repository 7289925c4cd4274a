"""tacn repair: clean (with backup) → re-sync exactly what was lost → verify-fix. Dry run by default."""

from __future__ import annotations

from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.commands.clean_invalid_trade_date import (
    BackupDirOption,
    BatchSizeOption,
    YesOption,
    ask_to_apply,
    default_backup_dir,
    render_clean,
    store_mode,
)
from tacn.cli.help_text import examples
from tacn.cli.options import (
    DatabaseOption,
    DataSourceOption,
    JsonOption,
    QuietOption,
    StoreOption,
    VerboseOption,
)
from tacn.cli.progress import step_displays
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors, open_store_for


def repair_command(
    source: Annotated[str | None, typer.Option(
        "--source", metavar="SOURCE", help="Re-sync from akshare, tushare or file:PATH (default: each pair from its own data_source). "
        "akshare/tushare also limit the repair to that data_source.")] = None,
    data_source: DataSourceOption = None,
    yes: YesOption = False,
    backup_dir: BackupDirOption = None,
    batch_size: BatchSizeOption = 50_000,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    store: StoreOption = None,
    database: DatabaseOption = None,
) -> None:
    """Clean, re-sync what was lost, then verify.

    Cleans invalid trade_dates (backup first), re-syncs exactly the (symbol, data_source) pairs that lost
    records over the date span they covered, then verify-fix.

    Without --yes: the clean dry run and the re-sync plan only. Exit 0 when the store verifies clean
    and every re-sync succeeded, 1 otherwise (the backup is kept; `tacn restore` undoes the clean).
    """
    from tacn.cli.options import parse_choice
    from tacn.validators.records import DATA_SOURCES

    parse_choice(data_source, DATA_SOURCES, "--data-source")
    if source is not None and source not in ("akshare", "tushare") and not source.startswith("file:"):
        raise typer.BadParameter(f"--source must be akshare, tushare or file:PATH, got {source!r}")
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        from tacn.cli.settings import load_env
        from tacn.pipelines.recovery.repair import repair

        env = load_env()
        # the same source settings as sync: its token, and TACN_TUSHARE_URL (a stand-in server)
        options = {"tushare_token": env.get("TUSHARE_TOKEN"), "tushare_url": env.get("TACN_TUSHARE_URL")}
        target = backup_dir if backup_dir is not None else default_backup_dir(env)
        kwargs = dict(source=source, data_source=data_source, backup_dir=target, batch_size=batch_size,
                      sync_options=options, steps=step_displays(out, "repair"))
        with open_store_for(out, store, database, env=env, mode=store_mode(out, yes)) as opened:
            result = repair(opened, apply=yes, **kwargs)
            if not yes and ask_to_apply(out, result.clean.selected):
                result = repair(opened, apply=True, **kwargs)
        if json_:
            out.json({**result.__dict__, "ok": result.ok})
        else:
            _render(out, result)
    raise typer.Exit(exit_codes.OK if result.ok else exit_codes.PROBLEMS_FOUND)


def _render(out: Output, result) -> None:
    render_clean(out, result.clean)
    if result.targets:
        out.table(
            "re-sync plan" if result.dry_run else "re-synced",
            ["symbol", "data_source", "lost", "start", "end", "from", "span from"],
            [[t.symbol, f"{t.data_source} {t.period}", t.records_lost, t.start or "incremental", t.end,
              t.source or "-", t.basis] for t in result.targets],
        )
    for t in result.targets:
        if t.note:
            out.warn(f"{t.symbol} {t.data_source}: {t.note}")
    for r in result.resyncs:
        style = "green" if r.status == "success" else "red"
        out.line(f"sync {r.source} {r.period} {','.join(r.symbols)} {r.start}..{r.end}: {r.status}, "
                 f"inserted {r.inserted}, updated {r.updated}, rejected {r.rejected}"
                 + (f", re-based {', '.join(f'{s} ({n})' for s, n in r.rebased.items())}" if r.rebased else "")
                 + (f" ({r.error})" if r.error else ""), style=style)
    if result.verify is not None:
        v = result.verify
        out.line(f"verify-fix: {v.invalid_trade_date_total:,} invalid trade_date, "
                 f"{v.failing_other_rules_total:,} failing other error-level rules",
                 style="green" if v.ok else "red")
    if not result.dry_run:
        problems = [f"sync {r.source} {','.join(r.symbols)}: {r.status}" for r in result.resyncs if r.status != "success"]
        problems += [f"{t.symbol} {t.data_source}: not re-synced" for t in result.targets if t.source is None]
        if result.verify is not None and not result.verify.ok:
            problems.append("verify-fix found invalid records")
        out.verdict("repaired" if result.ok else "NOT fully repaired (see above)", failed=not result.ok,
                    style="green" if result.ok else "red", detail="; ".join(problems[:3]))


ORDER = 33


def register(app: typer.Typer) -> None:
    app.command("repair", epilog=examples(
        ("Dry run: what would be cleaned and re-synced", "tacn repair"),
        ("Repair AKShare's records from AKShare", "tacn repair --source akshare --yes"),
        ("Re-sync from a file, backups elsewhere", "tacn repair --source file:quotes.csv --yes --backup-dir /srv/backups"),
    ))(repair_command)
