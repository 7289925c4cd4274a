"""tacn watch: tail the application's WebSocket notifications (or one task's progress), stay connected."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import (
    ApiUrlOption,
    InsecureOption,
    JsonOption,
    QuietOption,
    VerboseOption,
    finite,
    from_settings,
    parse_duration,
)
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors
from tacn.cli.secrets import register_secret, scrub

SEVERITY_STYLE = {"error": "red", "warning": "yellow", "success": "green", "info": None}


def watch_command(
    url: Annotated[str | None, typer.Option("--url", metavar="URL", help="Full endpoint, ws(s)://HOST/api/ws/notifications.",
                                            show_default=False)] = None,
    api_url: ApiUrlOption = None,
    token: Annotated[str | None, typer.Option("--token", metavar="JWT", envvar="TACN_TOKEN", show_envvar=True, callback=from_settings,
                                              help="JWT to connect with (default: TACN_TOKEN).",
                                              show_default=False)] = None,
    mint_token: Annotated[bool, typer.Option("--mint-token", help="Mint a token locally from JWT_SECRET "
                                             "(environment or ./.env).")] = False,
    user: Annotated[str, typer.Option("--user", metavar="NAME", help="sub of a minted token.")] = "admin",
    ttl: Annotated[str, typer.Option("--ttl", metavar="DURATION", help="Lifetime of a minted token: 90s, 30m, 1h, 7d.")] = "1h",
    types: Annotated[str | None, typer.Option("--type", metavar="TYPES", help="Only these message types, comma-separated: "
                                              "notification, progress, connected, heartbeat.",
                                              show_default=False)] = None,
    json_: JsonOption = False,
    limit: Annotated[int | None, typer.Option("--limit", metavar="N", min=1, help="Exit 0 after N shown messages.",
                                              show_default=False)] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", metavar="SECONDS", min=0.001, callback=finite, help="Exit 0 after S seconds (with --task: exit 3 when the task "
        "has not finished; default 7200).", show_default=False)] = None,
    retries: Annotated[int | None, typer.Option("--retries", metavar="N", min=0, help="Give up (exit 3) after N "
                                                "failed reconnects in a row (default: unlimited).",
                                                show_default=False)] = None,
    heartbeat_timeout: Annotated[float | None, typer.Option(
        "--heartbeat-timeout", metavar="SECONDS", min=0, callback=finite, help="Reconnect when no frame arrives for S seconds; "
        "0 = off (default 75).", show_default=False)] = None,
    task: Annotated[str | None, typer.Option("--task", metavar="TASK_ID", help="Follow one analysis task: poll its status, show its "
                                             "progress; exit 0 completed, 1 failed or cancelled, 3 unknown task.",
                                             show_default=False)] = None,
    poll_interval: Annotated[float, typer.Option(
        "--poll-interval", metavar="SECONDS", min=0.1, max=3600, callback=finite,
        help="With --task: seconds between status polls.")] = 2.0,
    utc: Annotated[bool, typer.Option("--utc", help="Show times in UTC (default: Asia/Shanghai).")] = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    insecure: InsecureOption = False,
) -> None:
    """Tail the application's WebSocket notifications.

    One line per message, or NDJSON with --json; stays connected (reconnects with backoff). --task
    follows one analysis task to its end instead.
    """
    out = Output(json_, streaming=True, quiet=quiet, verbose=verbose)  # --json: a stream; errors on stderr
    # typer.BadParameter is raised here, outside handle_errors, so that Typer reports it (exit 2)
    wanted = _parse_types(types)
    ttl_seconds = parse_duration(ttl, "--ttl")
    if task is not None and (limit is not None or types is not None):
        raise typer.BadParameter("--task follows one task to its end: --limit and --type do not apply",
                                 param_hint="--task")
    with handle_errors(out):
        from tacn.cli.settings import connect_timeout_s, load_env
        from tacn.pipelines.safe_text import escape_unprintable
        from tacn.pipelines.watch.client import (
            DEFAULT_HEARTBEAT_TIMEOUT,
            DEFAULT_TASK_TIMEOUT,
            WatchConfig,
            api_base,
            check_task_id,
            endpoint_url,
            follow_task,
            resolve_token,
            shown_url,
            task_status_url,
            watch,
        )

        env = load_env()
        endpoint = endpoint_url(url, api_url or (None if url else env.get("TACN_API_URL")))
        if task is not None:
            check_task_id(task)
            task_shown = escape_unprintable(task)
        resolved, origin, minted = resolve_token(
            token, env_token=env.get("TACN_TOKEN"), env_token_origin=env.origin.get("TACN_TOKEN"), mint=mint_token,
            jwt_secret=env.get("JWT_SECRET"), jwt_secret_origin=env.origin.get("JWT_SECRET"), user=user,
            ttl_seconds=ttl_seconds)
        register_secret(resolved)
        if heartbeat_timeout is None:
            heartbeat_timeout = DEFAULT_HEARTBEAT_TIMEOUT
        config = WatchConfig(
            url=endpoint, token=resolved, token_origin=origin, minted=minted, types=wanted, count=limit,
            timeout=timeout, max_retries=retries, heartbeat_timeout=heartbeat_timeout or None, task_id=task,
            verbose=verbose, insecure=insecure, connect_timeout=connect_timeout_s(env))
        render = _Renderer(out, json_, utc=utc)
        zone = "" if json_ else f"; times in {render.zone_name}"
        if task is None:
            out.info(f"watching {shown_url(endpoint)} (token {origin.split(' (')[0]}){zone}")
            result = watch(config, render)
        else:
            out.info(f"following task {task_shown}: polling {task_status_url(api_base(endpoint), task)} every "
                     f"{poll_interval:g} s, its progress from {shown_url(endpoint)} (token {origin.split(' (')[0]})"
                     f"{zone}")
            result = follow_task(config, render, poll_interval=poll_interval)
        out.info(f"shown {result.shown} message(s); {result.reconnects} reconnect(s), "
                 f"{result.warnings} warning(s); ended by {result.ended_by}")
        if task is not None:
            if result.ended_by == "task":
                out.verdict(f"task {task_shown} {result.task_status}" + (f": {result.task_message}" if result.task_message
                                                                          else ""), failed=result.task_failed, stderr=True)
                raise typer.Exit(exit_codes.PROBLEMS_FOUND if result.task_failed else exit_codes.OK)
            if result.ended_by == "timeout":
                deadline = timeout if timeout is not None else DEFAULT_TASK_TIMEOUT
                out.error(f"task {task_shown} did not finish within {deadline:g} s", ends_run=True)
                raise typer.Exit(exit_codes.CANNOT_RUN)
    raise typer.Exit(exit_codes.OK)


MESSAGE_TYPES = ("connected", "heartbeat", "notification", "progress")  # tacn.pipelines.watch.client.KNOWN_TYPES


def _parse_types(text: str | None, known: tuple[str, ...] = MESSAGE_TYPES) -> frozenset[str] | None:
    if text is None:
        return None
    wanted = frozenset(t.strip().lower() for t in text.split(",") if t.strip())
    unknown = sorted(wanted - set(known))
    if unknown or not wanted:
        raise typer.BadParameter(f"--type: expected some of {', '.join(known)}, got {text!r}")
    return wanted


class _Renderer:
    """Turns watch events into output: messages on stdout (flushed per line), the rest on stderr.

    Lines show only printable text (server text escaped); --json lines are the message's JSON with
    unsafe characters as \\u escapes (the same JSON value).
    """

    def __init__(self, out: Output, json_mode: bool, *, utc: bool = False):
        from datetime import UTC

        from tacn.validators.dates import SHANGHAI

        self.out, self.json_mode = out, json_mode
        self.zone = UTC if utc else SHANGHAI
        self.zone_name = "UTC" if utc else "Asia/Shanghai"
        self.console = None
        if not json_mode and sys.stdout.isatty():
            from rich.console import Console

            self.console = Console(highlight=False, soft_wrap=True)

    def __call__(self, event) -> None:
        if event.kind == "message":
            self.message(event.message)
        elif event.kind == "warning":
            self.out.warn(event.text)
        else:
            self.out.info(event.text)

    def message(self, message: dict) -> None:
        if self.json_mode:
            import json

            from tacn.pipelines.safe_text import json_safe

            sys.stdout.write(json_safe(scrub(json.dumps(message, ensure_ascii=False, separators=(",", ":")))) + "\n")
            sys.stdout.flush()
            return
        if self.out.quiet:  # --quiet: the exit code (and an error) only; --json lines are asked-for output
            return
        text, style = message_line(message, self.zone)
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text(text, style=style or ""))
        else:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


def severity(data: dict) -> str | None:
    """The message's own severity (``severity`` or ``level``), lower case; None when it has none.

    The application's published notifications carry none: tacn does not invent one.
    """
    for name in ("severity", "level"):
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


FINAL_STYLE = {"completed": "green", "failed": "red", "cancelled": "red"}


def message_line(message: dict, zone=None) -> tuple[str, str | None]:
    """One line of printable text (server text escaped): time in ``zone``, kind, fields; and its style."""
    from tacn.pipelines.safe_text import escape_unprintable

    kind = message["type"]
    data = message.get("data") if isinstance(message.get("data"), dict) else {}
    when = shown_time(data, zone)
    style = None
    if kind == "notification":
        level = severity(data)
        parts = [when, "NOTIFICATION", _text(data.get("type")), level.upper() if level else "",
                 _text(data.get("title"))]
        if data.get("content"):
            parts.append(f"— {_text(data['content'])}")
        if data.get("link"):
            parts.append(f"<{_text(data['link'])}>")
        style = SEVERITY_STYLE.get(level) if level else None
    elif kind in ("progress", "task_status"):
        progress = data.get("progress")
        parts = [when, "PROGRESS" if kind == "progress" else "TASK", _text(data.get("task_id")),
                 _text(data.get("status")),
                 _percent(progress),
                 _text(data.get("current_step")), _text(data.get("message"))]
        level = severity(data)
        style = SEVERITY_STYLE.get(level) if level else FINAL_STYLE.get(str(data.get("status")).lower())
    elif kind == "connected":
        parts, style = [when, "CONNECTED", _text(data.get("user_id")), _text(data.get("message"))], "green"
    else:
        parts, style = [when, "HEARTBEAT"], "dim"
    return escape_unprintable("  ".join(p for p in parts if p)), style


def shown_time(data: dict, zone=None) -> str:
    """``created_at`` or ``timestamp`` in ``zone`` (default Asia/Shanghai): naive values are UTC
    (the application's connected/heartbeat), aware ones are converted (its +08:00 created_at).
    Without one, the time now; an unreadable one is shown as given."""
    from datetime import UTC, datetime

    if zone is None:
        from tacn.validators.dates import SHANGHAI as zone
    for name in ("created_at", "timestamp"):
        value = data.get(name)
        if isinstance(value, str) and value:
            try:
                when = datetime.fromisoformat(value.strip())
            except ValueError:
                return value[:32]
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            try:
                return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
            except (OverflowError, ValueError):
                return value[:32]
    return datetime.now(zone).strftime("%Y-%m-%d %H:%M:%S")


def _text(value) -> str:
    return "" if value is None else str(value)


def _percent(value) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return f"{float(value):g}%"
        except OverflowError:  # an integer too large for a float: JSON allows it
            pass
    return _text(value)


ORDER = 80


def register(app: typer.Typer) -> None:
    app.command("watch", epilog=examples(
        ("Notifications only, with a token minted from JWT_SECRET",
         "tacn watch --mint-token --type notification"),
        ("Another backend, token from TACN_TOKEN", "tacn watch --api-url http://127.0.0.1:8000"),
        ("The next 5 messages as NDJSON, a minute at most", "tacn watch --json --limit 5 --timeout 60"),
        ("Follow one analysis task to its end", "tacn watch --task 3f2a9c1e-7b4d-4e0a-9c55-1d2e3f4a5b6c"),
    ))(watch_command)
