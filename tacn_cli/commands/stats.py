"""tacn stats: what the store holds, per data_source and period, invalid trade_dates included."""

from __future__ import annotations

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import DatabaseOption, JsonOption, QuietOption, StoreOption, VerboseOption
from tacn.cli.quality import CutoffOption, MaxLagOption, parse_cutoff_option, render_freshness
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors, open_store_for


def stats_command(store: StoreOption = None, database: DatabaseOption = None, json_: JsonOption = False,
                  max_lag: MaxLagOption = 0, cutoff: CutoffOption = "17:30", quiet: QuietOption = False,
                  verbose: VerboseOption = False) -> None:
    """Count what the store holds, with freshness.

    Records per data_source and period, symbols, first/last valid date, invalid trade_dates, and how
    fresh each series is. Informs, never gates: exit 0 unless it cannot run (3).
    """
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        cutoff_time = parse_cutoff_option(cutoff)
        if max_lag < 0:
            raise typer.BadParameter("--max-lag must be 0 or more")
        with open_store_for(out, store, database) as opened:
            result = opened.stats()
            fresh, fresh_error = _freshness(opened, cutoff_time, max_lag)
        if json_:
            out.json({**result.to_dict(), "freshness": fresh.to_dict() if fresh else {"error": fresh_error}})
            return
        rows = [
            [g.data_source, g.period, g.records, g.symbols, g.first_trade_date, g.last_trade_date, g.invalid_trade_date]
            for g in result.groups
        ]
        styles = ["red" if g.invalid_trade_date else None for g in result.groups]
        out.table(
            "records per data_source and period",
            ["data_source", "period", "records", "symbols", "first date", "last date", "invalid trade_date"],
            rows,
            styles=styles,
            caption=f"in {result.store}",
        )
        verdict = (
            f"{result.total_records:,} records, {result.total_symbols:,} symbols, "
            f"{result.invalid_trade_date:,} with an invalid trade_date"
        )
        out.line(verdict, style="red" if result.invalid_trade_date else "green")
        if fresh is not None:
            render_freshness(out, fresh)
        else:
            out.line(f"freshness: unknown: {fresh_error}", style="red")
    raise typer.Exit(exit_codes.OK)


def _freshness(store, cutoff, max_lag):
    """stats informs, it does not gate: a calendar past its end is shown as the freshness line, exit stays 0."""
    from tacn.pipelines.errors import CalendarEnded
    from tacn.pipelines.freshness import store_freshness

    try:
        return store_freshness(store, cutoff=cutoff, max_lag=max_lag), None
    except CalendarEnded as exc:
        return None, str(exc)


ORDER = 90


def register(app: typer.Typer) -> None:
    app.command("stats", epilog=examples(
        ("What the configured store holds", "tacn stats"),
        ("Another store, as JSON for a script", "tacn stats --store sqlite:///data/tacn.db --json"),
        ("Stale when a series lags 2 sessions", "tacn stats --max-lag 2 --cutoff 18:00"),
    ))(stats_command)
