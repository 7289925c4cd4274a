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
