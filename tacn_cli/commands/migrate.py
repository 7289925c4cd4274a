"""tacn migrate status|up|down (subcommands): numbered migrations in migrations/, recorded in tacn_migrations."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.commands.clean_invalid_trade_date import BackupDirOption, default_backup_dir
from tacn.cli.help_text import examples
from tacn.cli.options import DatabaseOption, JsonOption, QuietOption, StoreOption, VerboseOption
from tacn.cli.progress import ProgressDisplay
from tacn.cli.render import Output, error_fields, to_jsonable
from tacn.cli.runner import handle_errors, open_store_for


class Action(StrEnum):
    status = "status"
    up = "up"
    down = "down"


migrate_app = typer.Typer(
    name="migrate",
    help="""Apply, revert or list the store's migrations.

    Numbered migrations run in order, never twice, recorded in the store's tacn_migrations.
    0001 backfills period=daily; 0002 replaces the legacy 3-field unique index with the 4-field one
    (refuses and lists duplicates when they exist); 0003 removes invalid trade_dates with a backup
    (its down restores it). Every backup a migration writes is recorded before it changes anything,
    so down also reverts a run that was killed part-way. A failed or refusing migration stops the
    run (exit 1 when it refused because of the data, 3 when it could not run); those before it stay
    applied.
    """,
    no_args_is_help=True,
    epilog=examples(
        ("What is applied and what is pending", "tacn migrate status"),
        ("Apply every pending migration", "tacn migrate up"),
        ("Revert the newest applied migration", "tacn migrate down"),
    ),
)
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Say what would be done; change nothing.")]


@migrate_app.command("status", epilog=examples(
    ("Each migration: applied, pending or interrupted", "tacn migrate status"),
    ("Of a MongoDB store, as JSON", "tacn migrate status --store mongodb://127.0.0.1:27017/tradingagents --json"),
))
def status_command(json_: JsonOption = False, quiet: QuietOption = False, verbose: VerboseOption = False,
                   store: StoreOption = None, database: DatabaseOption = None) -> None:
    """List applied and pending migrations.

    Also an interrupted or failed one, with when each was applied and whether its code changed since. Exit 0; 3 when the store cannot
    be read.
    """
    run_migrate(Action.status, None, False, None, json_, quiet, verbose, store, database)


ToOption = Annotated[int | None, typer.Option(
    "--to", metavar="N", min=0, help="up: apply through migration N (default: all pending); down: revert back to "
    "N, 0 = all (default: the newest one only).")]


def _changing_command(action: Action, summary: str):
    """migrate up and down: the same options, one direction each."""

    def command(to: ToOption = None, dry_run: DryRunOption = False, backup_dir: BackupDirOption = None,
                json_: JsonOption = False, quiet: QuietOption = False, verbose: VerboseOption = False,
                store: StoreOption = None, database: DatabaseOption = None) -> None:
        run_migrate(action, to, dry_run, backup_dir, json_, quiet, verbose, store, database)

    command.__doc__ = summary
    command.__name__ = f"{action.value}_command"
    return command


migrate_app.command("up", epilog=examples(
    ("Say what would be applied, changing nothing", "tacn migrate up --dry-run"),
    ("Apply every pending migration", "tacn migrate up"),
    ("Apply through 0002 only, backups elsewhere", "tacn migrate up --to 2 --backup-dir /srv/backups"),
))(_changing_command(Action.up, """Apply the pending migrations, in order.

    A migration that was interrupted runs again. Exit 0 when all applied; 1 when one refused because
    of the data (0002 with duplicate keys); 3 when one could not run. Those before it stay applied.
    """))
migrate_app.command("down", epilog=examples(
    ("Revert the newest applied migration", "tacn migrate down"),
    ("Revert back to 0001 (0002 and later undone)", "tacn migrate down --to 1"),
    ("Say what reverting all would do", "tacn migrate down --to 0 --dry-run"),
))(_changing_command(Action.down, """Revert applied migrations, newest first.

    Each puts back what it changed (0003 restores its backup), also after a run killed part-way.
    Exit 0 when reverted; 1 or 3 as for up.
    """))


def run_migrate(action: Action, to: int | None, dry_run: bool, backup_dir, json_: bool, quiet: bool, verbose: bool,
                store, database) -> None:
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
    app.add_typer(migrate_app, name="migrate")
