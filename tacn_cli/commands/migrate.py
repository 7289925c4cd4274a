"""tacn migrate status|up|down: numbered migrations in migrations/, recorded in tacn_migrations."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.commands.clean_invalid_trade_date import BackupDirOption, default_backup_dir
from tacn.cli.options import DatabaseOption, JsonOption, QuietOption, StoreOption, VerboseOption
from tacn.cli.progress import ProgressDisplay
from tacn.cli.render import Output, error_fields, to_jsonable
from tacn.cli.runner import handle_errors, open_store_for


class Action(StrEnum):
    status = "status"
    up = "up"
    down = "down"


def migrate_command(
    action: Annotated[Action, typer.Argument(help="status, up (apply pending) or down (revert).")],
    to: Annotated[int | None, typer.Option("--to", help="up: apply through N; down: revert back to N (0 = all). "
                                            "Default: up applies all, down reverts the newest one.", min=0)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be done; change nothing.")] = False,
    backup_dir: BackupDirOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    store: StoreOption = None,
    database: DatabaseOption = None,
) -> None:
    """Apply or revert the numbered migrations, in order, never twice.

    0001 backfills period=daily; 0002 replaces the legacy 3-field unique index with the 4-field one
    (refuses and lists duplicates when they exist); 0003 removes invalid trade_dates with a backup
    (its down restores it). Every backup a migration writes is recorded before it changes anything,
    so down also reverts a run that was killed part-way. A failed or refusing migration stops the run (exit 1 when it refused
    because of the data, 3 when it could not run); those before it stay applied.
    """
    from tacn.cli.settings import load_env

    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        from tacn.migrations.runner import (
            MigrationContext,
            _check_target,
            discover,
            migrate_down,
            migrate_up,
            status,
        )

        _check_target(to, discover())  # a usage error before the store is looked for

        env = load_env()
        ctx = MigrationContext(backup_dir=backup_dir if backup_dir is not None else default_backup_dir(env))
        mode = "read" if action is Action.status or dry_run else "write"  # migrate never creates a store
        with open_store_for(out, store, database, env=env, mode=mode) as opened, \
                ProgressDisplay(out, "migrate", plain=False) as display:
            ctx.progress = display if display.wanted else None
            if action is Action.status:
                result = status(opened)
            elif action is Action.up:
                result = migrate_up(opened, ctx, to=to, dry_run=dry_run)
            else:
                result = migrate_down(opened, ctx, to=to, dry_run=dry_run)
        failed = result.failed
        code = exit_codes.for_kind(failed["kind"]) if failed else exit_codes.OK
        if json_:
            payload = to_jsonable(result)
            if failed:
                payload["failed"]["exit_code"] = code
            out.json({**payload, **(error_fields("migration_failed", str(failed["error"]), code)
                                    if failed and code != exit_codes.PROBLEMS_FOUND else {})})
        else:
            _render(out, result)
        if failed:
            out.error(f"migration {failed['id']:04d} ({failed['name']}) failed: {failed['error']}", ends_run=True)
            raise typer.Exit(code)
    raise typer.Exit(exit_codes.OK)


INCOMPLETE = ("interrupted", "failed")


def _render(out: Output, result) -> None:
    for item in result.done:
        if "plan" in item:
            out.line(f"{item['id']:04d} {item['name']}: {item['plan']}", style="yellow")
        else:
            verb = "applied" if result.action == "up" else "reverted"
            out.line(f"{item['id']:04d} {item['name']}: {verb} {item['details']}", style="green")
    if result.action != "status" and not result.done and not result.failed:
        out.line("nothing to do")
    rows = [[f"{m.id:04d}", m.name, m.state + (f" ({len(m.backups)} backup(s) kept)" if m.state in INCOMPLETE else ""),
             f"{m.applied_at:%Y-%m-%d %H:%M:%S}" if m.applied_at else None,
             {None: "-", True: "ok", False: "CHANGED since applied"}[m.checksum_matches]] for m in result.migrations]
    out.table("migrations", ["id", "name", "state", "applied_at (UTC)", "checksum"], rows,
              caption=f"in {result.store}",
              styles=["green" if m.applied else "red" if m.state in INCOMPLETE else None for m in result.migrations])
    if any(m.state in INCOMPLETE for m in result.migrations):
        out.warn("a migration run was interrupted or failed part-way: `tacn migrate up` runs it again, "
                 "`tacn migrate down` puts back what it changed (every recorded backup)")


ORDER = 35


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)
