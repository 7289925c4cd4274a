"""tacn ws-stats: who is connected to the application's WebSocket notifications."""

from __future__ import annotations

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import ApiUrlOption, InsecureOption, JsonOption, QuietOption, VerboseOption
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors


def ws_stats_command(api_url: ApiUrlOption = None, json_: JsonOption = False, insecure: InsecureOption = False,
                     quiet: QuietOption = False, verbose: VerboseOption = False) -> None:
    """Show who is connected to the notifications.

    GET /api/ws/stats: total users, total connections and connections per user.
    """
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        from tacn.cli.settings import connect_timeout_s, load_env
        from tacn.pipelines.watch.client import fetch_ws_stats

        env = load_env()
        stats = fetch_ws_stats(api_url or env.get("TACN_API_URL"), insecure=insecure,
                               timeout=connect_timeout_s(env))
        if json_:
            out.json(stats)
            raise typer.Exit(exit_codes.OK)
        rows = [[user, n] for user, n in sorted(stats.users.items(), key=lambda item: (-item[1], item[0]))]
        out.table(None, ["user", "connections"], rows)
        out.line(f"{stats.total_users:,} user(s), {stats.total_connections:,} connection(s) at {stats.api_url}")
    raise typer.Exit(exit_codes.OK)


ORDER = 81


def register(app: typer.Typer) -> None:
    app.command("ws-stats", epilog=examples(
        ("Users and connections of the configured backend", "tacn ws-stats"),
        ("Another backend, as JSON", "tacn ws-stats --api-url https://tacn.example:8443 --json"),
    ))(ws_stats_command)
