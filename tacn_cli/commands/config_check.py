"""tacn config-check: what is configured, where each value comes from, MongoDB and Redis health."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import JsonOption, QuietOption, StoreOption, VerboseOption
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors

STYLES = {"error": "red", "warning": "yellow", "skipped": "dim"}
GROUP_TITLES = {"required": "Required (error when missing)", "recommended": "Recommended (warning when missing)",
                "optional": "Optional (info)"}


def config_check_command(
    env_file: Annotated[
        Path | None,
        typer.Option("--env-file", metavar="PATH", help="The application's .env file (default: ./.env when it exists).",
                     show_default=False),
    ] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Skip MongoDB and Redis (no database values).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    store: StoreOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Check settings, MongoDB and Redis health.

    Each setting: set?, masked value, winning source, disagreement; then MongoDB and Redis live checks.

    Exit 0 when every required item and live check passes, 1 when one fails (--strict: or warns),
    3 when the check itself cannot run (unreadable env file).
    """
    from tacn.pipelines.config.check import run_config_check

    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        result = run_config_check(os.environ, env_file, offline=offline, store_url=store)
        if json_:
            out.json(result.to_dict())
        else:
            _render(out, result, strict)
    raise typer.Exit(exit_codes.PROBLEMS_FOUND if result.failed(strict) else exit_codes.OK)


def _render(out: Output, result, strict: bool) -> None:
    out.info(f"env file: {result.env_file} ({'read' if result.env_file_found else 'not found'}); "
             f"database values: {result.database_values}")
    for group, title in GROUP_TITLES.items():
        items = [r for r in result.items if r.group == group]
        rows = [[r.name, r.status, r.startup or "-", r.value, r.source or "-",
                 "; ".join(part for part in (r.message, r.stricter) if part)] for r in items]
        _table(out, title, ["item", "status", "app start-up", "value", "from", "note"], rows,
               [r.status for r in items])
    out.line("Precedence (first wins), as the application applies it:")
    for kind, order in result.precedence.items():
        out.line(f"  {kind}: {order}")
    checks = result.live_checks
    _table(out, "Live checks", ["service", "check", "status", "detail"],
           [[c.service, c.check, c.status, c.message] for c in checks], [c.status for c in checks])
    verdict = f"{result.errors} error(s), {result.warnings} warning(s)"
    counted = ("error", "warning") if strict else ("error",)
    failing = [r.name for r in result.items if r.status in counted] + \
        [f"{c.service} {c.check}" for c in checks if c.status in counted]
    out.verdict(verdict, failed=result.failed(strict), style="red" if result.errors else "yellow" if result.warnings
                else "green", detail=", ".join(failing[:5]))


def _table(out: Output, title: str, columns: list[str], rows: list[list[str]], statuses: list[str]) -> None:
    """Like Output.table, but names never wrap and the last column folds: notes are long."""
    if out.quiet:
        return
    from rich.table import Table

    from tacn.cli.render import markup_text

    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        last = i == len(columns) - 1
        table.add_column(column, no_wrap=not last and i < 2, overflow="fold" if last else "ellipsis", ratio=3 if last else None)
    for row, status in zip(rows, statuses, strict=True):
        table.add_row(*(markup_text(str(cell)) for cell in row), style=STYLES.get(status))
    out.stdout.print(table)


ORDER = 70


def register(app: typer.Typer) -> None:
    app.command("config-check", epilog=examples(
        ("The application's ./.env and its live services", "tacn config-check"),
        ("Another .env, no network; warnings fail too", "tacn config-check --env-file /srv/app/.env --offline --strict"),
        ("As JSON, for monitoring", "tacn config-check --json"),
    ))(config_check_command)
