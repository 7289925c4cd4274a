"""tacn restore: put a backup's records back exactly (``_id`` included); idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import DatabaseOption, JsonOption, QuietOption, StoreOption, VerboseOption
from tacn.cli.progress import ProgressDisplay
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors, open_store_for

CONFLICTS_SHOWN = 20


def restore_command(
    backup: Annotated[Path, typer.Argument(metavar="BACKUP", help="A backup's .manifest.json or .jsonl, or any Extended JSON Lines file.")],
    store: StoreOption = None,
    database: DatabaseOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Put a backup's records back exactly.

    The records of BACKUP go back as they were, _id included; running it twice changes nothing.
    A tacn backup is checked against its manifest (SHA-256, size, count) first and refused with
    exit 3 when damaged, truncated or altered. A plain Extended JSON Lines file (mongoexport
    output) is accepted too: every line is parsed before anything is written.
    Exit 1 when some records could not be put back (a different record holds their _id or key).
    """
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        from tacn.pipelines.recovery.backup import open_backup
        from tacn.pipelines.recovery.restore import restore_backup

        verified = open_backup(backup)  # refuse a bad file before connecting to the store
        with open_store_for(out, store, database, mode="create") as opened, \
                ProgressDisplay(out, "restore", plain=False) as display:
            result = restore_backup(opened, verified, progress=display if display.wanted else None)
        if result.manifest is None:
            out.warn(f"{result.backup} has no tacn manifest: restored as plain Extended JSON Lines "
                     "(no checksum to verify; every line parsed first)")
        if json_:
            out.json({**result.__dict__, "complete": result.complete})
        else:
            out.line(f"restored from {result.backup} ({result.verified_by})")
            out.table(None, ["records in backup", "put back", "already present", "conflicts"],
                      [[result.records, result.inserted, result.already_present, len(result.conflicts)]])
            if result.replaced:
                out.line(f"{result.replaced:,} present record(s) given their backed-up values back (a re-base backup)")
            if result.conflicts:
                out.table("not put back", ["_id", "reason"],
                          [[c["_id"], c["reason"]] for c in result.conflicts[:CONFLICTS_SHOWN]], )
        if result.conflicts:
            out.error(f"{len(result.conflicts):,} record(s) could not be put back: another record holds "
                      "their _id or key (the store was changed since the backup)", ends_run=True)
            raise typer.Exit(exit_codes.PROBLEMS_FOUND)
    raise typer.Exit(exit_codes.OK)


ORDER = 31


def register(app: typer.Typer) -> None:
    app.command("restore", epilog=examples(
        ("Undo a clean: the manifest its output named",
         "tacn restore bk/clean-invalid-trade-date-20251024T010203Z.manifest.json"),
        ("A mongoexport file into a MongoDB store",
         "tacn restore export.jsonl --store mongodb://127.0.0.1:27017/tradingagents"),
        ("The same restore, as JSON for a script", "tacn restore export.jsonl --json"),
    ))(restore_command)
