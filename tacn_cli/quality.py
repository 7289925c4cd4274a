"""Options and tables shared by validate, reconcile and stats for tacn's data-quality sections
(volume units, freshness, reconcile): parsed and rendered once here."""

from __future__ import annotations

import typer

from tacn_cli.render import Output


def parse_volume_units(text: str | None) -> dict[str, str] | None:
    """``--volume-units akshare=lots,tushare=shares`` over the application's defaults."""
    if text is None:
        return None
    from validators.records import DATA_SOURCES
    from validators.units import parse_unit_map

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
    """``--since`` as a first trade_date: a date (YYYY-MM-DD or YYYYMMDD) or a duration back from today (30d)."""
    if text is None:
        return None
    from tacn_cli.options import _DURATION_RE, parse_date_option, parse_since
    from validators.dates import shanghai_today

    if _DURATION_RE.match(text.strip().lower()):
        from datetime import UTC

        since = parse_since(text, now=now)
        return shanghai_today(since.replace(tzinfo=UTC)).isoformat()
    return parse_date_option(text, "--since")


def parse_source_pair(text: str | None) -> tuple[str, str]:
    """``--data-source A,B``: two different known data sources (default akshare,tushare)."""
    from pipelines.reconcile import DEFAULT_SOURCES
    from validators.records import DATA_SOURCES

    if text is None:
        return DEFAULT_SOURCES
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if len(names) != 2 or names[0] == names[1] or any(n not in DATA_SOURCES for n in names):
        raise typer.BadParameter(
            f"--data-source: expected two different sources of {', '.join(sorted(DATA_SOURCES))} "
            f"separated by a comma, got {text!r}"
        )
    return names  # type: ignore[return-value]
