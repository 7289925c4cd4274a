"""Options shared by several commands, and the parsing of their values. Defined once."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

import typer


# Fixed choices, Enum-typed so that help and completion show them. The values are the library's
# (validators.records.DATA_SOURCES, …; tests/test_help.py checks they agree), written out here so that
# `tacn --help` imports no library module.
def choices(name: str, *values: str) -> type[StrEnum]:
    """An Enum of fixed choices for an option: each member's name and value are the choice."""
    return StrEnum(name, [(value, value) for value in values])


DataSource = choices("DataSource", "tushare", "akshare", "baostock")
Period = choices("Period", "daily", "weekly", "monthly")
Layout = choices("Layout", "akshare", "tushare", "document")
FileType = choices("FileType", "csv", "jsonl", "parquet")


def choice_value(value: StrEnum | None) -> str | None:
    """Callback of Enum-typed options: the command receives the plain string (as stores and JSON expect)."""
    return None if value is None else str(value.value)


def from_settings(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Callback of options whose environment variable help shows (``envvar=``): a value click took from
    the environment is left to tacn's settings, which also read ./.env and report where a value came from."""
    source = ctx.get_parameter_source(param.name)
    return None if source is not None and source.name == "ENVIRONMENT" else value


# Renamed options: the old name is still accepted on that command (hidden from help) and prints one
# deprecation line on stderr (tacn.cli.app rewrites it before parsing). docs/notes/cli-help.md says why.
DEPRECATED_OPTIONS: dict[str, dict[str, str]] = {
    "sync": {"--timeout": "--request-timeout", "--format": "--layout"},
    "validate": {"--format": "--layout", "--chunk-size": "--batch-size"},
    "reconcile": {"--since": "--start"},
    "watch": {"--count": "--limit", "--max-retries": "--retries"},
}


def replace_deprecated(command: str, args: list[str], takes_value: set[str]) -> tuple[list[str], list[str]]:
    """``args`` with the command's deprecated option names replaced by the new ones, and one warning per
    name used. An option's value (the word after an option in ``takes_value``) and anything after ``--``
    are never rewritten."""
    renamed = DEPRECATED_OPTIONS.get(command, {})
    out: list[str] = []
    warnings: list[str] = []
    value_next = False
    for i, arg in enumerate(args):
        if value_next:  # the value of the option before it, whatever it looks like
            value_next = False
        elif arg == "--":  # the end of the options
            return out + args[i:], warnings
        else:
            name, eq, value = arg.partition("=")
            if name in renamed:
                warning = f"warning: tacn {command} {name} is deprecated, use {renamed[name]} (same meaning)"
                if warning not in warnings:
                    warnings.append(warning)
                name = renamed[name]
                arg = name + eq + value
            value_next = not eq and name in takes_value
        out.append(arg)
    return out, warnings


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        envvar="TACN_STORE",
        show_envvar=True,
        callback=from_settings,
        help="Store URL: sqlite:///PATH or mongodb://… (default: TACN_STORE, the app's MONGODB_*, "
        "else the embedded SQLite file under TACN_HOME).",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database", metavar="NAME", help="MongoDB database (default: the URI's, else 'tradingagents').", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")]
QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print nothing but the one line of an error or failed check (the exit code "
                 "says the rest); with --json the JSON is still printed."),
]
VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="More diagnostics on stderr: settings resolved, timings per batch, "
                 "chunk or symbol."),
]
DataSourceOption = Annotated[
    DataSource | None, typer.Option("--data-source", callback=choice_value, help="Only this data_source.")
]
PeriodOption = Annotated[Period | None, typer.Option("--period", callback=choice_value, help="Only this period.")]
SymbolsOption = Annotated[
    str | None, typer.Option("--symbols", metavar="CODES", help="Comma-separated 6-digit codes, e.g. 000001,600000.")
]
SinceOption = Annotated[
    str | None, typer.Option("--since", metavar="WHEN", help="Records updated since: a duration (24h, 7d, 30m) or a date.")
]
# Files (sync's file: source and validate's TARGET): one reader, one pair of options.
LayoutOption = Annotated[
    Layout | None,
    typer.Option("--layout", callback=choice_value, help="Files: force the column layout (default: from "
                 "the columns).", show_default=False),
]
FileTypeOption = Annotated[
    FileType | None,
    typer.Option("--file-type", callback=choice_value, help="Files: force the file type (default: the "
                 "extension; for a pipe or FIFO, its first bytes tell JSON Lines and Parquet).",
                 show_default=False),
]

_DURATION_RE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_symbols(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    from tacn.validators.records import parse_code

    tokens = [s.strip() for s in text.split(",") if s.strip()]
    if not tokens:
        raise typer.BadParameter("expected 6-digit codes separated by commas, got nothing")
    try:  # 000001 or 000001.SZ; an unknown or wrong exchange suffix (000001.XX) is refused
        return tuple(dict.fromkeys(parse_code(token) for token in tokens))
    except ValueError as exc:
        raise typer.BadParameter(f"--symbols: {exc}") from None


def parse_choice(value: str | None, choices: tuple[str, ...], name: str) -> str | None:
    if value is not None and value not in choices:
        raise typer.BadParameter(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_date_option(value: str | None, name: str) -> str | None:
    """A --start/--end style date (YYYY-MM-DD or YYYYMMDD) as YYYY-MM-DD."""
    if value is None:
        return None
    from tacn.validators.dates import InvalidTradeDate, normalize_trade_date

    try:
        return normalize_trade_date(value)
    except InvalidTradeDate as exc:
        raise typer.BadParameter(f"{name}: {exc.reason} ({value!r})") from None


def parse_since(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """``24h``/``7d``/``30m`` back from now, or a date/datetime; naive UTC like stored timestamps."""
    if value is None:
        return None
    from tacn.validators.records import utc_now

    now = now or utc_now()
    match = _DURATION_RE.match(value.strip().lower())
    if match:
        try:
            return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
        except OverflowError:
            raise typer.BadParameter(f"--since: {value!r} reaches before year 1") from None
    from dateutil import parser as date_parser

    try:
        parsed = date_parser.isoparse(value.strip())
    except (ValueError, OverflowError):
        raise typer.BadParameter(f"--since: expected a duration like 24h or 7d, or an ISO date, got {value!r}") from None
    if parsed.tzinfo is not None:
        from datetime import UTC

        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


MinRecordsOption = Annotated[
    int,
    typer.Option("--min-records", metavar="N", min=0, help="Fail (exit 1) when fewer records than this were checked: a gate "
                 "over an empty or misspelt selection then cannot pass. Default 0: an empty check passes, and says so."),
]


def records_gate(checked: int, min_records: int) -> dict:
    """How many records a gate checked, against --min-records: the JSON fields and the verdict's note."""
    too_few = checked < min_records
    if too_few:
        note = f"only {checked:,} records checked, --min-records {min_records:,}"
    elif checked == 0:
        note = "0 records checked: nothing was judged (--min-records 1 makes this a failure)"
    else:
        note = ""
    return {"records_checked": checked, "min_records": min_records, "too_few_records": too_few, "note": note}


ApiUrlOption = Annotated[
    str | None,
    typer.Option("--api-url", metavar="URL", envvar="TACN_API_URL", show_envvar=True, callback=from_settings,
                 help="The application's backend, http(s)://HOST:PORT (default: TACN_API_URL, "
                 "else http://localhost:8000).", show_default=False),
]
InsecureOption = Annotated[
    bool, typer.Option("--insecure", help="Do not verify TLS certificates (wss:// / https://). Only on request.")
]


def parse_duration(value: str | None, name: str) -> float | None:
    """A duration like ``90``, ``90s``, ``30m``, ``1h``, ``7d`` in seconds."""
    if value is None:
        return None
    text = value.strip().lower()
    match = _DURATION_RE.match(text if not text.isdigit() else text + "s")
    if not match or int(match[1]) <= 0:
        raise typer.BadParameter(f"{name}: expected a positive duration like 90s, 30m, 1h or 7d, got {value!r}")
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])}).total_seconds()
    except OverflowError:
        raise typer.BadParameter(f"{name}: {value!r} is too long a duration") from None


def finite(value: float | None) -> float | None:
    """Callback of float options: typer's min/max let NaN through (every comparison with it is false)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"expected a finite number, got {value}")
    return value
