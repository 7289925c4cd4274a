"""tacn watch: tail the application's WebSocket notifications (or one task's progress), stay connected."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tacn_cli import exit_codes
from tacn_cli.options import ApiUrlOption, InsecureOption, JsonOption, parse_duration
from tacn_cli.render import Output
from tacn_cli.runner import handle_errors
from tacn_cli.secrets import register_secret, scrub

SEVERITY_STYLE = {"error": "red", "warning": "yellow", "success": "green", "info": None}


def watch_command(
    url: Annotated[str | None, typer.Option("--url", help="Full endpoint, ws(s)://HOST/api/ws/notifications.",
                                            show_default=False)] = None,
    api_url: ApiUrlOption = None,
    token: Annotated[str | None, typer.Option("--token", help="JWT to connect with (default: TACN_TOKEN).",
                                              show_default=False)] = None,
    mint_token: Annotated[bool, typer.Option("--mint-token", help="Mint a token locally from JWT_SECRET "
                                             "(environment or ./.env).")] = False,
    user: Annotated[str, typer.Option("--user", help="sub of a minted token.")] = "admin",
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime of a minted token: 90s, 30m, 1h, 7d.")] = "1h",
    types: Annotated[str | None, typer.Option("--type", help="Only these message types, comma-separated: "
                                              "notification, progress, connected, heartbeat.",
                                              show_default=False)] = None,
    json_: JsonOption = False,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Exit 0 after N shown messages.",
                                              show_default=False)] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0.001, help="Exit 0 after S seconds.",
                                                  show_default=False)] = None,
    max_retries: Annotated[int | None, typer.Option("--max-retries", min=0, help="Give up (exit 3) after N "
                                                    "failed reconnects in a row (default: unlimited).",
                                                    show_default=False)] = None,
    heartbeat_timeout: Annotated[float | None, typer.Option(
        "--heartbeat-timeout", min=0, help="Reconnect when no frame arrives for S seconds; 0 = off "
        "(default 75, off with --task).", show_default=False)] = None,
    task: Annotated[str | None, typer.Option("--task", help="Watch /api/ws/tasks/TASK_ID; exit 0 when it "
                                             "completes, 1 when it fails.", show_default=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show heartbeats too.")] = False,
    insecure: InsecureOption = False,
) -> None:
    """Tail the WebSocket notification stream: one line per message, or NDJSON with --json."""
    out = Output(json_, streaming=True)  # --json streams one message per line: errors stay on stderr
    # typer.BadParameter is raised here, outside handle_errors, so that Typer reports it (exit 2)
    wanted = _parse_types(types)
    ttl_seconds = parse_duration(ttl, "--ttl")
    with handle_errors(out):
        from pipelines.watch import (
            DEFAULT_HEARTBEAT_TIMEOUT,
            WatchConfig,
            endpoint_url,
            resolve_token,
            shown_url,
            watch,
        )
        from tacn_cli.settings import connect_timeout_s, load_env

        env = load_env()
        endpoint = endpoint_url(url, api_url or (None if url else env.get("TACN_API_URL")), task)
        resolved, origin, minted = resolve_token(
            token, env_token=env.get("TACN_TOKEN"), env_token_origin=env.origin.get("TACN_TOKEN"), mint=mint_token,
            jwt_secret=env.get("JWT_SECRET"), jwt_secret_origin=env.origin.get("JWT_SECRET"), user=user,
            ttl_seconds=ttl_seconds)
        register_secret(resolved)
        if heartbeat_timeout is None:
            heartbeat_timeout = None if task else DEFAULT_HEARTBEAT_TIMEOUT
        config = WatchConfig(
            url=endpoint, token=resolved, token_origin=origin, minted=minted, types=wanted, count=count,
            timeout=timeout, max_retries=max_retries, heartbeat_timeout=heartbeat_timeout or None, task_id=task,
            verbose=verbose, insecure=insecure, connect_timeout=connect_timeout_s(env))
        out.info(f"watching {shown_url(endpoint)} (token {origin.split(' (')[0]})")
        render = _Renderer(out, json_)
        result = watch(config, render)
        out.info(f"shown {result.shown} message(s); {result.reconnects} reconnect(s), "
                 f"{result.warnings} warning(s); ended by {result.ended_by}")
        if task:
            if result.ended_by == "task":
                out.info(f"task {task} {result.task_status}")
                raise typer.Exit(exit_codes.PROBLEMS_FOUND if result.task_failed else exit_codes.OK)
            if result.ended_by == "timeout":
                out.error(f"task {task} did not report completion or failure within {timeout:g} s")
                raise typer.Exit(exit_codes.CANNOT_RUN)
    raise typer.Exit(exit_codes.OK)


MESSAGE_TYPES = ("connected", "heartbeat", "notification", "progress")  # pipelines.watch.KNOWN_TYPES


def _parse_types(text: str | None, known: tuple[str, ...] = MESSAGE_TYPES) -> frozenset[str] | None:
    if text is None:
        return None
    wanted = frozenset(t.strip().lower() for t in text.split(",") if t.strip())
    unknown = sorted(wanted - set(known))
    if unknown or not wanted:
        raise typer.BadParameter(f"--type: expected some of {', '.join(known)}, got {text!r}")
    return wanted


class _Renderer:
    """Turns watch events into output: messages on stdout (flushed per line), the rest on stderr."""

    def __init__(self, out: Output, json_mode: bool):
        self.out, self.json_mode = out, json_mode
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

            sys.stdout.write(scrub(json.dumps(message, ensure_ascii=False, separators=(",", ":"))) + "\n")
            sys.stdout.flush()
            return
        text, style = message_line(message)
        text = scrub(text)
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text(text, style=style or ""))
        else:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


def severity(data: dict) -> str:
    """error / warning / success / info: an explicit severity or level, else read from type and status."""
    for name in ("severity", "level", "priority"):
        value = str(data.get(name) or "").lower()
        if value in ("error", "critical", "high", "fatal"):
            return "error"
        if value in ("warning", "warn", "medium"):
            return "warning"
        if value in ("success", "info", "low"):
            return "success" if value == "success" else "info"
    status, kind = str(data.get("status") or "").lower(), str(data.get("type") or "").lower()
    if status in ("failed", "error") or kind in ("error", "failure"):
        return "error"
    if kind in ("alert", "warning") or status == "warning":
        return "warning"
    if status in ("completed", "success", "succeeded"):
        return "success"
    return "info"


def message_line(message: dict) -> tuple[str, str | None]:
    """One terminal line: time, severity/type, title, content, link; and its style."""
    kind = message["type"]
    data = message.get("data") if isinstance(message.get("data"), dict) else {}
    when = _when(data)
    if kind == "notification":
        level = severity(data)
        parts = [when, f"{level.upper():<7}", str(data.get("type") or "notification"), _text(data.get("title"))]
        if data.get("content"):
            parts.append(f"— {_text(data['content'])}")
        if data.get("link"):
            parts.append(f"<{_text(data['link'])}>")
        return "  ".join(p for p in parts if p), SEVERITY_STYLE[level]
    if kind == "progress":
        level = severity(data)
        progress = data.get("progress")
        parts = [when, "PROGRESS", _text(data.get("task_id")), _text(data.get("status")),
                 f"{progress:g}%" if isinstance(progress, int | float) else _text(progress),
                 _text(data.get("message"))]
        return "  ".join(p for p in parts if p), SEVERITY_STYLE[level]
    if kind == "connected":
        return "  ".join(p for p in [when, "CONNECTED", _text(data.get("user_id")), _text(data.get("message"))] if p), \
            "green"
    return f"{when}  HEARTBEAT", "dim"


def _when(data: dict) -> str:
    from datetime import datetime

    for name in ("created_at", "timestamp"):
        value = data.get(name)
        if isinstance(value, str) and value:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
            except ValueError:
                return value[:19]
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _text(value) -> str:
    return "" if value is None else " ".join(str(value).split())


ORDER = 80


def register(app: typer.Typer) -> None:
    app.command("watch")(watch_command)
