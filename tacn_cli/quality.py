"""Options and tables shared by validate, reconcile and stats for tacn's data-quality sections
(volume units, freshness, reconcile): parsed and rendered once here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tacn.cli.render import Output

MaxLagOption = Annotated[
    int, typer.Option("--max-lag", metavar="N", help="Sessions a (symbol, data_source) may lag before it is stale (--freshness).")
]
CutoffOption = Annotated[
    str, typer.Option("--cutoff", metavar="HH:MM", help="Time (HH:MM, Asia/Shanghai) after which today's session counts as completed.")
]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", metavar="PATH", help="Write a self-contained HTML report with plots here (opens offline).")
]


def parse_volume_units(text: str | None) -> dict[str, str] | None:
    """``--volume-units akshare=lots,tushare=shares`` over the application's defaults."""
    if text is None:
        return None
    from tacn.validators.records import DATA_SOURCES
    from tacn.validators.units import parse_unit_map

    try:
        return parse_unit_map(text, DATA_SOURCES)
    except ValueError as exc:
        raise typer.BadParameter(f"--volume-units: {exc}") from None


def render_volume_units(out: Output, breakdown: dict | None) -> None:
    """Series (symbol, data_source, period) per proven volume unit, one row per data_source."""
    if not breakdown:
        return
    rows, styles = [], []
    for source, row in sorted(breakdown.items()):
        other = "lots" if row["expected"] == "shares" else "shares"
        rows.append([source, row["expected"] or "-", row["shares"], row["lots"], row["unknown"],
                     row["no evidence"], row["changed"]])
        styles.append("yellow" if row["expected"] and (row[other] or row["unknown"] or row["changed"]) else None)
    out.table("volume units (series per proven unit)",
              ["data_source", "expected", "shares", "lots", "unknown", "no evidence", "unit changes"],
              rows, styles=styles)


def parse_since_date(text: str | None, *, now=None) -> str | None:
    """reconcile's ``--start``, a first trade_date: a date (YYYY-MM-DD or YYYYMMDD) or a duration back from today (30d)."""
    if text is None:
        return None
    from tacn.cli.options import _DURATION_RE, parse_date_option, parse_since
    from tacn.validators.dates import shanghai_today

    if _DURATION_RE.match(text.strip().lower()):
        from datetime import UTC

        since = parse_since(text, now=now)
        return shanghai_today(since.replace(tzinfo=UTC)).isoformat()
    return parse_date_option(text, "--start")


def parse_source_pair(text: str | None) -> tuple[str, str]:
    """``--data-source A,B``: two different known data sources (default akshare,tushare)."""
    from tacn.pipelines.reconcile import DEFAULT_SOURCES
    from tacn.validators.records import DATA_SOURCES

    if text is None:
        return DEFAULT_SOURCES
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if len(names) != 2 or names[0] == names[1] or any(n not in DATA_SOURCES for n in names):
        raise typer.BadParameter(
            f"--data-source: expected two different sources of {', '.join(sorted(DATA_SOURCES))} "
            f"separated by a comma, got {text!r}"
        )
    return names  # type: ignore[return-value]


def parse_cutoff_option(text: str):
    from tacn.pipelines.errors import UsageError
    from tacn.pipelines.freshness import parse_cutoff

    try:
        return parse_cutoff(text)
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from None


class QualitySections:
    """validate's optional sections: --freshness and --html, fed by validate's per-chunk observers."""

    def __init__(self, out: Output, *, freshness: bool, max_lag: int, cutoff: str, html: Path | None):
        if max_lag < 0:
            raise typer.BadParameter("--max-lag must be 0 or more")
        self.out, self.max_lag, self.cutoff, self.html = out, max_lag, parse_cutoff_option(cutoff), html
        self.last = self.report = self.fresh = None
        self.empty: dict = {}
        if freshness:
            from tacn.pipelines.freshness import LastDates

            self.last = LastDates()
        if html is not None:
            from tacn.pipelines.report_html import ValidateReportData

            self.report = ValidateReportData()

    def observers(self) -> list:
        return [o for o in (self.last, self.report) if o is not None]

    def read_store(self, store) -> None:
        if self.last is not None:
            from tacn.pipelines.freshness import sync_empty_ranges

            self.empty = sync_empty_ranges(store)

    def finish(self, result) -> None:
        if self.last is not None:
            from tacn.pipelines.freshness import judge

            self.fresh = judge(self.last.last, cutoff=self.cutoff, max_lag=self.max_lag, empty=self.empty)
        if self.html is not None:
            from tacn.pipelines.report_html import validate_report

            write_text(self.html, validate_report(result, self.report, self.fresh), "--html")

    @property
    def passed(self) -> bool:
        return self.fresh is None or self.fresh.passed

    def junit(self, text: str) -> str:
        """validate's JUnit XML with a ``freshness`` testcase when --freshness ran."""
        if self.fresh is None:
            return text
        from tacn.pipelines.freshness import add_junit_case

        return add_junit_case(text, self.fresh)

    def payload(self) -> dict:
        return {} if self.fresh is None else {"freshness": self.fresh.to_dict()}

    def render(self) -> None:
        if self.fresh is not None and not self.out.json_mode:
            render_freshness(self.out, self.fresh, gates=True)
        if self.html is not None:
            self.out.info(f"HTML report written to {self.html}")


def write_text(path: Path, text: str, option: str) -> None:
    """A report file; an unwritable path is a usage error naming the option."""
    from tacn.pipelines.errors import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {option} {path}: {exc.strerror or exc}") from None


def render_freshness(out: Output, fresh, *, gates: bool = False) -> None:
    """The freshness tables and line; ``gates`` (validate --freshness): a stale store fails the run."""
    rows = [[source, c["fresh"], c["stale"], c["not trading"]] for source, c in sorted(fresh.per_source.items())]
    out.table(f"freshness at {fresh.latest_session}", ["data_source", "fresh", "stale", "not trading"], rows,
              styles=["red" if r[2] else None for r in rows],
              caption=f"latest completed XSHG session {fresh.latest_session} (cut-off {fresh.cutoff} Asia/Shanghai, "
              f"now {fresh.now})")
    if fresh.stale:
        out.table("stale series, worst first", ["symbol", "data_source", "last trade_date", "sessions behind"],
                  [[s["symbol"], s["data_source"], s["last_trade_date"], s["lag"]] for s in fresh.stale[:20]],
                  styles=["red"] * min(20, len(fresh.stale)),
                  caption=f"lagging more than {fresh.max_lag} session(s)")
    if fresh.passed:
        out.line(f"FRESH: {fresh.fresh:,} series up to date, {fresh.not_trading:,} not trading", style="bold green")
    else:
        out.verdict(f"STALE: {fresh.stale_count:,} of {fresh.series:,} series lag beyond {fresh.max_lag} session(s)",
                    failed=gates, style="bold red")
