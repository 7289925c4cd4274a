"""Freshness: is each (symbol, data_source) stored up to the latest completed XSHG session?

A session counts as completed after a cut-off time in Asia/Shanghai (default
17:30, after both of the application's daily syncs). A series that lags is not
stale when the evidence says the symbol did not trade:

- a sync run record says the source returned no rows for it over a range that
  covers the missing sessions (sync warns "SYMBOL: no rows from SOURCE for
  START..END"); or
- another data_source holds the same symbol and lacks the same sessions too.

Otherwise it is stale. Past the end of the installed XSHG calendar the latest
session cannot be known: :class:`CalendarEnded` (exit 3), never a pass.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from tacn.pipelines.errors import CalendarEnded, UsageError
from tacn.validators.records import utc_now

DEFAULT_CUTOFF = "17:30"
SHOWN = 50  # stale series listed in reports (all are counted)
_EMPTY_WARNING = re.compile(r"^(\d{6}): no rows from (\w+) for (\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


def parse_cutoff(text: str) -> time:
    """``HH:MM`` (Asia/Shanghai)."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not match:
        raise UsageError(f"--cutoff: expected HH:MM (Asia/Shanghai), got {text!r}")
    return time(int(match[1]), int(match[2]))


def latest_completed_session(now_utc: datetime, cutoff: time) -> str:
    """The newest XSHG session whose day has reached ``cutoff`` in Asia/Shanghai at ``now_utc`` (naive UTC)."""
    from tacn.validators.calendar import last_known_session, sessions_between
    from tacn.validators.dates import SHANGHAI

    local = now_utc.replace(tzinfo=UTC).astimezone(SHANGHAI) if now_utc.tzinfo is None else now_utc.astimezone(SHANGHAI)
    today = local.date().isoformat()
    if today > last_known_session():
        raise CalendarEnded(f"today ({today}, Asia/Shanghai) is after the XSHG calendar's last session, "
                            "so the latest session cannot be known")
    recent = sessions_between((local.date() - timedelta(days=40)).isoformat(), today)
    if recent and recent[-1] == today and local.time().replace(tzinfo=None) < cutoff:
        recent = recent[:-1]
    if not recent:  # pragma: no cover - XSHG never closes for 40 days
        raise CalendarEnded("no XSHG session in the last 40 days")
    return recent[-1]


@dataclass
class FreshnessResult:
    now: str  # Asia/Shanghai, ISO
    cutoff: str
    latest_session: str
    max_lag: int
    series: int  # (symbol, data_source) pairs judged
    fresh: int
    stale_count: int  # lagging beyond max_lag with no evidence that the symbol did not trade
    not_trading: int  # lagging, but the evidence says the symbol did not trade
    stale: list[dict] = field(default_factory=list)  # the worst SHOWN: symbol, data_source, last, lag
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)  # fresh / stale / not trading

    @property
    def passed(self) -> bool:
        return self.stale_count == 0

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": "pass" if self.passed else "fail"}


def empty_ranges(run_docs: list[dict]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(symbol, source) -> ranges a sync asked for and got no rows, from sync's run records."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for run in run_docs:
        for warning in run.get("warnings") or []:
            match = _EMPTY_WARNING.match(str(warning))
            if match:
                out.setdefault((match[1], match[2]), []).append((match[3], match[4]))
    return out


def judge(last_dates: dict[tuple[str, str], str], *, now_utc: datetime | None = None, cutoff: time | None = None,
          max_lag: int = 0, empty: dict[tuple[str, str], list[tuple[str, str]]] | None = None) -> FreshnessResult:
    """Freshness of each (symbol, data_source) from its last stored valid trade_date."""
    import numpy as np

    from tacn.validators.calendar import session_set
    from tacn.validators.dates import SHANGHAI

    if max_lag < 0:
        raise UsageError("--max-lag must be 0 or more")
    now_utc = now_utc or utc_now()
    cutoff = cutoff or parse_cutoff(DEFAULT_CUTOFF)
    latest = latest_completed_session(now_utc, cutoff)
    sessions = np.array(sorted(session_set()))
    latest_index = int(np.searchsorted(sessions, latest, side="right"))
    empty = empty or {}
    by_symbol: dict[str, dict[str, str]] = {}
    for (symbol, source), last in last_dates.items():
        by_symbol.setdefault(symbol, {})[source] = last
    stale, fresh, excused = [], 0, 0
    per_source: dict[str, dict[str, int]] = {}
    for (symbol, source), last in sorted(last_dates.items()):
        counts = per_source.setdefault(source, {"fresh": 0, "stale": 0, "not trading": 0})
        lag = max(0, latest_index - int(np.searchsorted(sessions, last, side="right")))
        if lag <= max_lag:
            fresh += 1
            counts["fresh"] += 1
            continue
        first_missing = str(sessions[latest_index - lag])
        reason = _not_trading(symbol, source, last, first_missing, latest, by_symbol[symbol], empty)
        if reason:
            excused += 1
            counts["not trading"] += 1
            continue
        counts["stale"] += 1
        stale.append({"symbol": symbol, "data_source": source, "last_trade_date": last, "lag": lag,
                      "missing_from": first_missing})
    stale.sort(key=lambda s: (-s["lag"], s["symbol"], s["data_source"]))
    local = now_utc.replace(tzinfo=UTC).astimezone(SHANGHAI) if now_utc.tzinfo is None else now_utc.astimezone(SHANGHAI)
    return FreshnessResult(
        now=local.isoformat(timespec="seconds"), cutoff=cutoff.strftime("%H:%M"), latest_session=latest,
        max_lag=max_lag, series=len(last_dates), fresh=fresh, stale_count=len(stale), not_trading=excused,
        stale=stale[:SHOWN], per_source=per_source,
    )


def _not_trading(symbol, source, last, first_missing, latest, others: dict[str, str], empty) -> str | None:
    for start, end in empty.get((symbol, source), []):
        if start <= first_missing and end >= latest:
            return f"sync got no rows from {source} for {start}..{end}"
    for other, other_last in others.items():
        if other != source and other_last <= last:
            return f"{other} lacks the same sessions"
    return None


class LastDates:
    """validate --freshness: the last valid daily trade_date per (symbol, data_source), chunk by chunk."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], str] = {}

    def add(self, frame, masks: dict) -> None:
        from tacn.validators.dates import valid_iso_mask
        from tacn.validators.rules import column

        valid = ~masks["trade_date_iso"] if "trade_date_iso" in masks else valid_iso_mask(column(frame, "trade_date"))
        valid &= column(frame, "period").eq("daily").fillna(False).astype(bool)
        valid &= column(frame, "symbol").map(type).eq(str) & column(frame, "data_source").map(type).eq(str)
        if not valid.any():
            return
        part = frame.loc[valid, ["symbol", "data_source", "trade_date"]]
        for key, last in part.groupby(["symbol", "data_source"], sort=False)["trade_date"].max().items():
            if last > self.last.get(key, ""):
                self.last[key] = last


def store_last_dates(store) -> dict[tuple[str, str], str]:
    """The last valid daily trade_date per (symbol, data_source) of a store (one aggregate per source)."""
    sources = sorted({g.data_source for g in store.stats().groups if g.period == "daily" and isinstance(g.data_source, str)})
    return {(symbol, source): last for source in sources
            for symbol, last in store.latest_valid_trade_dates(source, "daily").items()}


def sync_empty_ranges(store, *, runs_read: int = 50) -> dict[tuple[str, str], list[tuple[str, str]]]:
    from tacn.pipelines import runs

    return empty_ranges(runs.recent_runs(store, limit=runs_read, job_prefix="tacn_sync"))


def store_freshness(store, **options: Any) -> FreshnessResult:
    return judge(store_last_dates(store), empty=sync_empty_ranges(store), **options)


def add_junit_case(xml_text: str, fresh: FreshnessResult) -> str:
    """A ``freshness`` testcase (a failure listing the stale series) added to a JUnit XML report."""
    import json
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml_text)
    suite = root.find("testsuite")
    case = ET.SubElement(suite, "testcase", classname="tacn.validate.freshness", name="freshness", time="0")
    summary = (f"{fresh.stale_count} of {fresh.series} series lag the latest completed session "
               f"{fresh.latest_session} by more than {fresh.max_lag} session(s)")
    if not fresh.passed:
        ET.SubElement(case, "failure", message=summary, type="error").text = "\n".join(
            json.dumps(s, ensure_ascii=False) for s in fresh.stale)
    for element in (root, suite):
        element.set("tests", str(int(element.get("tests", "0")) + 1))
        element.set("failures", str(int(element.get("failures", "0")) + (0 if fresh.passed else 1)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
