"""Trading sessions of the Shanghai exchange (exchange-calendars, calendar XSHG).

The calendar ends at a known last session; dates after it are "unknown", never
"not a trading day".

Importing exchange-calendars costs about half a second, so the session list is
cached as a small text file under TACN_HOME (one per version of the library,
written atomically): a validate or a sync reads it instead of importing the
calendar. A cache that cannot be written or read is simply not used.
"""

from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from functools import lru_cache
from pathlib import Path

from tacn.validators.dates import FIRST_TRADE_DATE_ISO

CALENDAR = "XSHG"


@lru_cache(maxsize=1)
def _calendar():
    import exchange_calendars as xc

    return xc.get_calendar(CALENDAR, start=FIRST_TRADE_DATE_ISO)


def _cache_file() -> Path | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        library = version("exchange-calendars")
    except PackageNotFoundError:
        return None
    # TACN_HOME as tacn.cli.settings.tacn_home resolves it (validators cannot import the CLI layer)
    home = Path(os.path.expanduser(os.environ.get("TACN_HOME") or "~/.local/share/tacn"))
    return home / "cache" / f"{CALENDAR.lower()}-sessions-{library}-from-{FIRST_TRADE_DATE_ISO}.txt"


@lru_cache(maxsize=1)
def sessions() -> tuple[str, ...]:
    """Every XSHG session as YYYY-MM-DD, sorted: from the TACN_HOME cache, else the calendar (then cached)."""
    path = _cache_file()
    if path is not None:
        try:
            cached = tuple(path.read_text(encoding="ascii").split())
            if cached and list(cached) == sorted(cached):
                return cached
        except (OSError, UnicodeDecodeError):
            pass
    computed = tuple(_calendar().sessions.strftime("%Y-%m-%d"))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text("\n".join(computed) + "\n", encoding="ascii")
            os.replace(partial, path)
        except OSError:
            pass  # a read-only home: no cache, same answer
    return computed


@lru_cache(maxsize=1)
def session_set() -> frozenset[str]:
    """Every XSHG session as YYYY-MM-DD."""
    return frozenset(sessions())


def last_known_session() -> str:
    return sessions()[-1]


def sessions_between(start: str, end: str) -> list[str]:
    """Sessions from start to end inclusive (YYYY-MM-DD), clipped to the calendar's span."""
    known = sessions()
    return list(known[bisect_left(known, start):bisect_right(known, end)])


def calendar_end_advice() -> str:
    """What to say when a date lies past the calendar's end: which version ends when, and what to do."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("exchange-calendars")
    except PackageNotFoundError:  # pragma: no cover - a dependency of tacn
        installed = "?"
    return (
        f"the XSHG calendar of exchange-calendars {installed} ends on {last_known_session()}; "
        "upgrade it (pip install -U exchange-calendars) to judge later dates"
    )
