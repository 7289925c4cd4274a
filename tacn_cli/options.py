"""Options shared by several commands, and the parsing of their values. Defined once."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Annotated

import typer

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store URL: sqlite:///PATH or mongodb://… (default: TACN_STORE, the app's MONGODB_*, "
        "else the embedded SQLite file under TACN_HOME).",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database", help="MongoDB database (default: the URI's, else 'tradingagents').", show_default=False),
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
    str | None, typer.Option("--data-source", help="Only this data_source (akshare, tushare, baostock).")
]
PeriodOption = Annotated[str | None, typer.Option("--period", help="Only this period (daily, weekly, monthly).")]
SymbolsOption = Annotated[
    str | None, typer.Option("--symbols", help="Comma-separated 6-digit codes, e.g. 000001,600000.")
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Records updated since: a duration (24h, 7d, 30m) or a date.")
]
# Files (sync's file: source and validate's TARGET): one reader, one pair of options.
LayoutOption = Annotated[
    str | None,
    typer.Option("--layout", "--format", help="Files: force the column layout: akshare, tushare or document "
                 "(default: from the columns).", show_default=False),
]
FileTypeOption = Annotated[
    str | None,
    typer.Option("--file-type", help="Files: force csv, jsonl or parquet (default: the extension; for a pipe "
                 "or FIFO, its first bytes tell JSON Lines and Parquet).", show_default=False),
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
    typer.Option("--min-records", min=0, help="Fail (exit 1) when fewer records than this were checked: a gate "
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
    typer.Option("--api-url", help="The application's backend, http(s)://HOST:PORT (default: TACN_API_URL, "
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
