"""Trading sessions of the Shanghai exchange (exchange-calendars, calendar XSHG).

The calendar ends at a known last session; dates after it are "unknown", never
"not a trading day".
"""

from __future__ import annotations

from functools import lru_cache

from validators.dates import FIRST_TRADE_DATE_ISO


@lru_cache(maxsize=1)
def _calendar():
    import exchange_calendars as xc

    return xc.get_calendar("XSHG", start=FIRST_TRADE_DATE_ISO)


@lru_cache(maxsize=1)
def session_set() -> frozenset[str]:
    """Every XSHG session as YYYY-MM-DD."""
    return frozenset(_calendar().sessions.strftime("%Y-%m-%d"))


def last_known_session() -> str:
    return _calendar().last_session.strftime("%Y-%m-%d")


def sessions_between(start: str, end: str) -> list[str]:
    """Sessions from start to end inclusive (YYYY-MM-DD), clipped to the calendar's span."""
    cal = _calendar()
    first, last = cal.first_session.strftime("%Y-%m-%d"), cal.last_session.strftime("%Y-%m-%d")
    start, end = max(start, first), min(end, last)
    if start > end:
        return []
    return list(cal.sessions_in_range(start, end).strftime("%Y-%m-%d"))


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
