"""Volume units proven from the bars themselves: shares or lots (手, 100 shares).

A bar proves its own unit: the average traded price ``amount / volume`` lies
between ``low`` and ``high`` when volume is in shares, and ``amount / (volume *
100)`` does when it is in lots. Stored prices are forward-adjusted (qfq) while
volume and amount are as traded, so only bars on the traded basis prove
anything: the most recent ones of each (symbol, data_source, period), after the
last ex-date. Before an ex-date the adjusted range sits below the traded price
and a bar fits neither unit; the latest such bar marks where the proof stops.

The unit of a series is then checked over its whole history: a jump of about
100x in ``amount / (volume * close)`` between consecutive bars (the turnover in
yuan stays, the volume changes scale) is a change of unit.

Used by the ``volume_unit`` rule (validate) and by reconcile's volume
normalisation. numpy is imported inside the functions (fast CLI start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

LOT = 100  # shares in one lot (手)
SHARES, LOTS = "shares", "lots"
UNKNOWN = "unknown"  # bars with volume and amount, but the latest fits neither unit
NO_EVIDENCE = "no evidence"  # no bar has volume, amount, low and high
UNITS = (SHARES, LOTS)

# Codes shared by bars and series: a bar is ABSENT (no evidence), SHARES, LOTS or NEITHER;
# a series' unit uses the same numbers (NEITHER = unknown).
ABSENT, IN_SHARES, IN_LOTS, NEITHER = 0, 1, 2, 3
UNIT_NAMES = {ABSENT: NO_EVIDENCE, IN_SHARES: SHARES, IN_LOTS: LOTS, NEITHER: UNKNOWN}
UNIT_CODES = {SHARES: IN_SHARES, LOTS: IN_LOTS}

# What the application stores (tradingagents-cn): AKShare's 成交量 as returned (lots);
# Tushare's vol multiplied by 100 (shares); BaoStock's volume as returned (shares).
APP_UNITS: dict[str, str] = {"akshare": LOTS, "tushare": SHARES, "baostock": SHARES}

# Rounding: prices carry 2 decimals and AKShare's volume whole lots (odd-lot trades rounded).
VWAP_REL_TOLERANCE = 0.002
VWAP_ABS_TOLERANCE = 0.01  # one fen
RECENT_BARS = 20  # at most this many of the latest traded-basis bars vote for the unit
# A unit change moves amount / (volume * close) by 100x; an ex-date moves it by the
# adjustment factor only (rarely beyond 10x), so 30x..300x cannot be one.
CHANGE_LOW, CHANGE_HIGH = 30.0, 300.0


def parse_unit_map(text: str | None, known_sources) -> dict[str, str]:
    """``akshare=lots,tushare=shares`` over :data:`APP_UNITS`; ValueError on a bad entry."""
    units = dict(APP_UNITS)
    if not text:
        return units
    for part in text.split(","):
        if not part.strip():
            continue
        source, sep, unit = (s.strip() for s in part.partition("="))
        if not sep or source not in known_sources or unit not in UNITS:
            raise ValueError(
                f"expected SOURCE=UNIT pairs with SOURCE one of {', '.join(sorted(known_sources))} "
                f"and UNIT one of {', '.join(UNITS)}, got {part.strip()!r}"
            )
        units[source] = unit
    return units


def bar_classes(volume, amount, low, high) -> np.ndarray:
    """Per bar (float arrays): ABSENT, IN_SHARES, IN_LOTS or NEITHER, as int8."""
    import numpy as np

    volume, amount, low, high = (np.asarray(a, dtype="float64") for a in (volume, amount, low, high))
    with np.errstate(divide="ignore", invalid="ignore"):
        evidence = (volume > 0) & (amount > 0) & (low > 0) & (high >= low)
        vwap = np.where(evidence, amount / np.where(evidence, volume, 1.0), np.nan)
        floor = low * (1 - VWAP_REL_TOLERANCE) - VWAP_ABS_TOLERANCE
        ceiling = high * (1 + VWAP_REL_TOLERANCE) + VWAP_ABS_TOLERANCE
        shares = (vwap >= floor) & (vwap <= ceiling)
        lots = (vwap / LOT >= floor) & (vwap / LOT <= ceiling)
    out = np.full(len(volume), NEITHER, dtype=np.int8)
    out[lots] = IN_LOTS
    out[shares] = IN_SHARES
    out[~evidence] = ABSENT
    return out


def volume_scale(volume, amount, close) -> np.ndarray:
    """amount / (volume * close): about 1 in shares, about 100 in lots (NaN without evidence)."""
    import numpy as np

    volume, amount, close = (np.asarray(a, dtype="float64") for a in (volume, amount, close))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = amount / (volume * close)
    scale[~((volume > 0) & (amount > 0) & (close > 0))] = np.nan
    return scale


@dataclass
class UnitProof:
    """The result of :func:`prove_units`, in the sorted order ``order`` of the input bars.

    Per series (``series`` ids, ascending): ``unit`` code, ``votes`` (bars that proved it),
    ``evidence`` (bars with volume and amount), ``changes`` (unit changes in the history)
    and ``first_change`` (day number of the latest change, -1 if none).
    Per bar (sorted): ``bar_unit`` (the unit the bar is in, from the series' unit and the
    changes after it) and ``traded_basis`` (after the series' last bar that fits neither unit).
    """

    order: np.ndarray
    group: np.ndarray  # per sorted bar: index into the per-series arrays
    series: np.ndarray
    unit: np.ndarray
    votes: np.ndarray
    evidence: np.ndarray
    changes: np.ndarray
    last_change: np.ndarray
    bar_unit: np.ndarray
    traded_basis: np.ndarray


def prove_units(series, days, classes, scale) -> UnitProof:
    """Prove the unit of every series (ids in ``series``) from its bars (``days`` any sortable numbers)."""
    import numpy as np

    series = np.asarray(series)
    days = np.asarray(days)
    order = np.lexsort((days, series))
    s, c, sc = series[order], np.asarray(classes)[order], np.asarray(scale, dtype="float64")[order]
    d = days[order]
    n = len(s)
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return UnitProof(order, empty, empty, empty.astype(np.int8), empty, empty, empty, empty,
                         empty.astype(np.int8), np.empty(0, dtype=bool))
    first = np.r_[True, s[1:] != s[:-1]]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    groups = len(starts)
    pos = np.arange(n)

    # The traded-basis run: bars after the series' last bar that fits neither unit. Bars at the very
    # end that fit neither (one corrupt latest bar) do not cut it: only those before a bar that fits.
    classified = (c == IN_SHARES) | (c == IN_LOTS)
    last_classified = np.maximum.reduceat(np.where(classified, pos, -1), starts)
    last_neither = np.maximum.reduceat(np.where((c == NEITHER) & (pos < last_classified[group]), pos, -1), starts)
    traded = pos > last_neither[group]
    voting = traded & classified
    # keep the latest RECENT_BARS voting bars of each series: rank them from the end
    voting_count = np.bincount(group, weights=voting, minlength=groups).astype(np.int64)
    seen_so_far = np.cumsum(voting) - np.r_[0, np.cumsum(voting)[starts[1:] - 1]][group]
    voting &= seen_so_far > voting_count[group] - RECENT_BARS
    shares_votes = np.bincount(group[voting & (c == IN_SHARES)], minlength=groups)
    lots_votes = np.bincount(group[voting & (c == IN_LOTS)], minlength=groups)
    evidence = np.bincount(group[c != ABSENT], minlength=groups)
    unit = np.full(groups, NEITHER, dtype=np.int8)
    unit[shares_votes > lots_votes] = IN_SHARES
    unit[lots_votes > shares_votes] = IN_LOTS
    unit[evidence == 0] = ABSENT

    # Unit changes over the history: ~100x jumps of the scale between consecutive bars with evidence.
    change = np.zeros(n, dtype=bool)
    with_scale = np.flatnonzero(np.isfinite(sc))
    if len(with_scale) > 1:
        prev, cur = with_scale[:-1], with_scale[1:]
        ratio = sc[cur] / sc[prev]
        jump = ((ratio >= CHANGE_LOW) & (ratio <= CHANGE_HIGH)) | (
            (ratio >= 1 / CHANGE_HIGH) & (ratio <= 1 / CHANGE_LOW)
        )
        change[cur[jump & (group[cur] == group[prev])]] = True
    changes = np.bincount(group[change], minlength=groups)
    last_change = np.full(groups, -1, dtype=np.int64)
    np.maximum.at(last_change, group[change], d[change].astype(np.int64))
    # bars before a change are in the other unit: flip once per change after the bar
    cumulative = np.cumsum(change)
    before_group = np.r_[0, cumulative[starts[1:] - 1]][group]
    flips_after = changes[group] - (cumulative - before_group)
    bar_unit = unit[group].copy()
    flipped = (flips_after % 2 == 1) & ((bar_unit == IN_SHARES) | (bar_unit == IN_LOTS))
    bar_unit[flipped] = np.where(bar_unit[flipped] == IN_SHARES, IN_LOTS, IN_SHARES)
    return UnitProof(order, group, s[starts], unit, shares_votes + lots_votes, evidence, changes,
                     last_change, bar_unit, traded)
