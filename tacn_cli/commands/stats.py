"""tacn stats: what the store holds, per data_source and period, invalid trade_dates included."""

from __future__ import annotations

import typer

from tacn_cli import exit_codes
from tacn_cli.options import DatabaseOption, JsonOption, StoreOption
from tacn_cli.render import Output
from tacn_cli.runner import handle_errors, open_store_for


def stats_command(store: StoreOption = None, database: DatabaseOption = None, json_: JsonOption = False) -> None:
    """Records per data_source and period, symbols, first/last valid date, invalid trade_dates."""
    out = Output(json_)
    with handle_errors(out):
        with open_store_for(out, store, database) as opened:
            result = opened.stats()
        if json_:
            out.json(result.to_dict())
            return
        rows = [
            [g.data_source, g.period, g.records, g.symbols, g.first_trade_date, g.last_trade_date, g.invalid_trade_date]
            for g in result.groups
        ]
        styles = ["red" if g.invalid_trade_date else None for g in result.groups]
        out.table(
            f"{result.store}",
            ["data_source", "period", "records", "symbols", "first date", "last date", "invalid trade_date"],
            rows,
            styles=styles,
        )
        verdict = (
            f"{result.total_records:,} records, {result.total_symbols:,} symbols, "
            f"{result.invalid_trade_date:,} with an invalid trade_date"
        )
        out.line(verdict, style="red" if result.invalid_trade_date else "green")
    raise typer.Exit(exit_codes.OK)


ORDER = 90


def register(app: typer.Typer) -> None:
    app.command("stats")(stats_command)
