"""--html: one self-contained HTML file with plots, for validate and reconcile.

Plots are drawn with matplotlib and inlined as SVG (text kept as text, heatmaps
as one embedded PNG): no JavaScript, nothing loaded from the network, it opens
offline in any browser and mail client, and prints well. matplotlib is the
best-kept Python plotting library; a JS library embedded whole would add 1-4 MB
to every file, while the SVG of these plots stays in the tens of kilobytes
whatever the size of the market (series are aggregated by month, symbols to the
worst 100 plus a distribution).
"""

from __future__ import annotations

import html
import io
import re
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

WORST_SYMBOLS = 100
MAX_POINTS = 400  # a time series with more dates is summed by month
COLORS = {"shares": "#4c78a8", "lots": "#f58518", "unknown": "#e45756", "no evidence": "#bab0ac"}


# -- data collected while validate streams -----------------------------------------------------


class ValidateReportData:
    """A validate observer: failing records per (rule, trade_date); stored sessions per (symbol, month)."""

    def __init__(self) -> None:
        self.failing_by_date: dict[str, Counter] = {}
        self.invalid_dates: Counter = Counter()  # records failing a rule whose trade_date is not a date
        self._months: list[pd.Series] = []
        self._spans: list[pd.DataFrame] = []

    def add(self, frame: pd.DataFrame, masks: dict) -> None:
        from tacn.validators.calendar import session_set
        from tacn.validators.dates import valid_iso_mask
        from tacn.validators.rules import column

        valid = ~masks["trade_date_iso"] if "trade_date_iso" in masks else valid_iso_mask(column(frame, "trade_date"))
        dates = column(frame, "trade_date")
        for name, mask in masks.items():
            if not mask.any():
                continue
            self.failing_by_date.setdefault(name, Counter()).update(dates[mask & valid].value_counts().to_dict())
            self.invalid_dates[name] += int((mask & ~valid).sum())
        daily = valid & column(frame, "period").eq("daily").fillna(False).astype(bool)
        daily &= dates.isin(session_set()) & column(frame, "symbol").map(type).eq(str)
        if daily.any():
            part = frame.loc[daily, ["symbol", "trade_date"]].drop_duplicates()
            month = part["trade_date"].str.slice(0, 7)
            self._months.append(part.groupby([part["symbol"], month]).size())
            self._spans.append(part.groupby("symbol")["trade_date"].agg(["min", "max"]))

    def completeness(self) -> pd.DataFrame | None:
        """symbol x month: share of the month's sessions (inside the symbol's span) that are stored."""
        import pandas as pd

        from tacn.validators.calendar import session_set

        if not self._months:
            return None
        counts = pd.concat(self._months).groupby(level=[0, 1]).sum()
        spans = pd.concat(self._spans).groupby(level=0).agg({"min": "min", "max": "max"})
        import numpy as np

        sessions = np.array(sorted(session_set()))
        frame = counts.rename("present").reset_index()
        frame.columns = ["symbol", "month", "present"]
        frame = frame.join(spans, on="symbol")
        # the month's sessions inside the symbol's span, by binary search on the sorted sessions
        first = (frame["month"] + "-01").to_numpy(dtype=object)
        last = (frame["month"] + "-31").to_numpy(dtype=object)
        span_lo, span_hi = frame["min"].to_numpy(dtype=object), frame["max"].to_numpy(dtype=object)
        lo = np.searchsorted(sessions, np.where(span_lo > first, span_lo, first).astype(str), side="left")
        hi = np.searchsorted(sessions, np.where(span_hi < last, span_hi, last).astype(str), side="right")
        frame["expected"] = (hi - lo).clip(min=1)
        frame["share"] = (frame["present"] / frame["expected"]).clip(upper=1.0)
        return frame.pivot(index="symbol", columns="month", values="share")


# -- plots ---------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("svg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "figure.dpi": 72})
    return plt


def _svg(fig) -> str:
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight",
                metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)


def _series_by_date(counters: dict[str, Counter]):
    import pandas as pd

    frame = pd.DataFrame({name: pd.Series(counter) for name, counter in counters.items() if counter}).fillna(0)
    if frame.empty:
        return frame, "trade_date"
    frame.index = pd.to_datetime(frame.index)
    frame = frame.sort_index()
    if len(frame) > MAX_POINTS:
        return frame.resample("MS").sum(), "month"
    return frame, "trade_date"


def plot_over_time(counters: dict[str, Counter], title: str, ylabel: str) -> str | None:
    frame, unit = _series_by_date(counters)
    if frame.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.4))
    for name in frame.columns:
        ax.plot(frame.index, frame[name], label=name, linewidth=1.2, marker="o" if len(frame) < 40 else None,
                markersize=3)
    ax.set_title(f"{title} (per {unit})", loc="left")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8, ncol=3)
    fig.autofmt_xdate()
    return _svg(fig)


def plot_completeness(shares: pd.DataFrame | None) -> str | None:
    import numpy as np

    if shares is None or shares.empty:
        return None
    plt = _pyplot()
    overall = shares.mean(axis=1).sort_values(kind="stable")
    worst = shares.loc[overall.index[:WORST_SYMBOLS]]
    rows = len(worst)
    fig, (heat, hist) = plt.subplots(1, 2, figsize=(11, max(2.6, 0.12 * rows + 1.4)),
                                     gridspec_kw={"width_ratios": [3, 1], "wspace": 0.35})
    image = heat.imshow(np.ma.masked_invalid(worst.to_numpy(dtype=float)), aspect="auto", cmap="RdYlGn",
                        vmin=0, vmax=1, interpolation="nearest")
    heat.set_title(f"sessions stored per month, the {rows} least complete of {len(shares):,} symbols", loc="left")
    heat.set_yticks(range(rows))
    heat.set_yticklabels(worst.index, fontsize=6 if rows > 30 else 8)
    months = list(worst.columns)
    step = max(1, len(months) // 12)
    heat.set_xticks(range(0, len(months), step))
    heat.set_xticklabels(months[::step], rotation=45, ha="right", fontsize=7)
    fig.colorbar(image, ax=heat, fraction=0.03, label="share of sessions")
    hist.hist(overall.to_numpy(), bins=20, range=(0, 1), color="#4c78a8")
    hist.set_title("all symbols: share of sessions stored", loc="left")
    hist.set_xlabel("share")
    hist.set_ylabel("symbols")
    return _svg(fig)


def plot_units(units: dict[str, dict[str, Any]] | None) -> str | None:
    if not units:
        return None
    plt = _pyplot()
    sources = sorted(units)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(sources) + 1.2))
    left = [0.0] * len(sources)
    for unit in ("shares", "lots", "unknown", "no evidence"):
        values = [float(units[s].get(unit, 0) or 0) for s in sources]
        ax.barh(sources, values, left=left, color=COLORS[unit], label=unit)
        left = [a + b for a, b in zip(left, values, strict=True)]
    labels = [f"{s} (expected {units[s].get('expected') or '-'})" for s in sources]
    ax.set_yticks(range(len(sources)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("series (symbol, data_source)")
    ax.set_title("volume unit proven per series", loc="left")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _svg(fig)


def plot_disagreement(per_symbol: dict[str, dict[str, int]], checks: tuple[str, ...]) -> str | None:
    import numpy as np

    with_days = {s: c for s, c in per_symbol.items() if c.get("common")}
    if not with_days:
        return None
    plt = _pyplot()
    worst = sorted(with_days.items(), key=lambda kv: (-kv[1]["days"], kv[0]))[:50]
    worst = [w for w in worst if w[1]["days"]]
    fig, (bars, hist) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 1]})
    if worst:
        names = [w[0] for w in worst]
        bottom = np.zeros(len(worst))
        for check in checks:
            values = np.array([w[1].get(check, 0) for w in worst], dtype=float)
            if values.any():
                bars.bar(names, values, bottom=bottom, label=check)
                bottom += values
        bars.tick_params(axis="x", labelrotation=90, labelsize=7)
        bars.legend(frameon=False, fontsize=8, loc="upper right")
    else:
        bars.text(0.5, 0.5, "no disagreement", ha="center", va="center", transform=bars.transAxes)
    bars.set_title(f"disagreements per symbol, the {len(worst)} worst", loc="left")
    bars.set_ylabel("findings")
    share = [c["days"] / c["common"] for c in with_days.values()]
    hist.hist(share, bins=20, range=(0, max(share) or 1), color="#e45756")
    hist.set_title(f"all {len(with_days):,} symbols: share of days disagreeing", loc="left", fontsize=8)
    hist.set_ylabel("symbols")
    return _svg(fig)


# -- the page --------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px;margin-bottom:4px} h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:12px} .pass{color:#1a7f37;font-weight:600} .fail{color:#c62828;font-weight:600}
table{border-collapse:collapse;font-size:12px;margin:8px 0} th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f6f6f6} td.n{text-align:right;font-variant-numeric:tabular-nums} tr.bad td{background:#fdecea}
tr.warn td{background:#fff8e1} figure{margin:12px 0} figure svg{max-width:100%;height:auto}
"""


def _table(columns: list[str], rows: list[list[Any]], classes: list[str | None] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="n">{v:,}</td>' if isinstance(v, int) and not isinstance(v, bool)
            else f"<td>{html.escape('-' if v is None else str(v))}</td>" for v in row)
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(svg: str | None, empty: str) -> str:
    return f"<figure>{svg}</figure>" if svg else f'<p class="meta">{html.escape(empty)}</p>'


def _page(title: str, subtitle: str, passed: bool, sections: list[str]) -> str:
    verdict = '<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>'
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body><h1>{html.escape(title)} {verdict}</h1><p class=\"meta\">{html.escape(subtitle)} · written "
            f"{stamp} by tacn</p>{''.join(sections)}</body></html>\n")


def _units_table(units: dict | None) -> str:
    if not units:
        return ""
    rows = [[s, u.get("expected"), u.get("shares", 0), u.get("lots", 0), u.get("unknown", 0), u.get("no evidence", 0)]
            for s, u in sorted(units.items())]
    return _table(["data_source", "expected", "shares", "lots", "unknown", "no evidence"], rows)


def validate_report(result, data: ValidateReportData, fresh=None) -> str:
    """The HTML page of a validate run."""
    rules = [[r.name, r.severity, r.failing, f"{r.share:.2%}", "; ".join(s.get("reason", "") for s in r.samples[:2])]
             for r in result.rules]
    classes = ["bad" if r.fails_run else ("warn" if r.failing else None) for r in result.rules]
    sections = [
        "<h2>Rules</h2>", _table(["rule", "severity", "failing", "share", "samples"], rules, classes),
        "<h2>Failing records over time</h2>",
        _figure(plot_over_time(data.failing_by_date, "failing records per rule", "records"),
                "no failing record with a valid trade_date"),
    ]
    invalid = {k: v for k, v in data.invalid_dates.items() if v}
    if invalid:
        sections.append(f'<p class="meta">not on the time axis (trade_date is not a date): '
                        f'{html.escape(", ".join(f"{k} {v:,}" for k, v in invalid.items()))}</p>')
    sections += ["<h2>Completeness</h2>",
                 _figure(plot_completeness(data.completeness()), "no daily records on XSHG sessions")]
    if result.volume_units:
        sections += ["<h2>Volume units</h2>", _figure(plot_units(result.volume_units), ""),
                     _units_table(result.volume_units)]
    if fresh is not None:
        sections += [f"<h2>Freshness (latest completed session {html.escape(fresh.latest_session)})</h2>",
                     _table(["data_source", "fresh", "stale", "not trading"],
                            [[s, c["fresh"], c["stale"], c["not trading"]] for s, c in sorted(fresh.per_source.items())]),
                     _table(["symbol", "data_source", "last trade_date", "sessions behind"],
                            [[s["symbol"], s["data_source"], s["last_trade_date"], s["lag"]] for s in fresh.stale])]
    subtitle = f"{result.target['name']} ({result.target['format']}): {result.records:,} records, threshold {result.threshold}"
    return _page("tacn validate", subtitle, result.passed and (fresh is None or fresh.passed), sections)


def reconcile_report(result) -> str:
    """The HTML page of a reconcile run."""
    from tacn.pipelines.reconcile import COMPARED

    a, b = result.sources
    checks = [[c.name, c.severity, c.failing, c.checked,
               "; ".join(f"{s['key']['symbol']} {s['key']['trade_date']}: {s['reason']}" for s in c.samples[:2])]
              for c in result.checks]
    classes = ["bad" if c.fails_run else ("warn" if c.failing else None) for c in result.checks]
    worst = [[w["symbol"], w["days"], w["common"], *(w[n] for n in COMPARED)] for w in result.worst]
    sections = [
        "<h2>Checks</h2>", _table(["check", "severity", "disagree", "checked", "samples"], checks, classes),
        "<h2>Disagreement per symbol</h2>", _figure(plot_disagreement(result.per_symbol, COMPARED), "no symbol compared"),
        _table(["symbol", "days", "common days", *COMPARED], worst) if worst else "",
        "<h2>Disagreements over time</h2>",
        _figure(plot_over_time({"any check": Counter(result.per_date)}, "days with a disagreement", "symbols"),
                "no disagreement"),
        "<h2>Volume units</h2>", _figure(plot_units(result.units), ""), _units_table(result.units),
    ]
    only = ", ".join(f"{n:,} only in {s}" for s, n in result.symbols_only_in.items() if n)
    subtitle = (f"{result.target['name']}: {a} vs {b}, {result.symbols:,} symbols, {result.common_days:,} common days"
                + (f" ({only})" if only else ""))
    return _page("tacn reconcile", subtitle, result.passed, sections)
