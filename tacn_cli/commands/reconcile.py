"""tacn reconcile: do two sources agree on the same (symbol, trade_date)? A CI gate like validate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import (
    DatabaseOption,
    JsonOption,
    PeriodOption,
    QuietOption,
    StoreOption,
    SymbolsOption,
    VerboseOption,
    parse_choice,
    parse_symbols,
)
from tacn.cli.progress import ProgressDisplay
from tacn.cli.quality import (
    HtmlOption,
    parse_since_date,
    parse_source_pair,
    parse_volume_units,
    render_volume_units,
    write_text,
)
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors, open_store_for

WORST_IN_TABLE = 10


def reconcile_command(
    files: Annotated[
        list[Path] | None,
        typer.Argument(metavar="FILES", help="Two files to compare instead of the store (CSV, Parquet or JSON Lines of documents): "
                       "the first holds source A, the second source B.", show_default=False),
    ] = None,
    data_source: Annotated[
        str | None, typer.Option("--data-source", metavar="A,B", help="The two sources compared, A,B (default: akshare,tushare).")
    ] = None,
    symbols: SymbolsOption = None,
    start: Annotated[
        str | None, typer.Option("--start", metavar="WHEN", help="Compare trade dates from this date on: YYYY-MM-DD, or a "
                                 "duration back from today (30d, 8w).")
    ] = None,
    period: PeriodOption = None,
    price_tolerance: Annotated[
        float, typer.Option("--price-tolerance", metavar="RATIO", help="Relative tolerance of prices and returns (0.005 = 0.5%).")
    ] = 0.005,
    price_tolerance_yuan: Annotated[
        float, typer.Option("--price-tolerance-yuan", metavar="YUAN", help="Absolute tolerance of prices in yuan; the larger applies.")
    ] = 0.01,
    volume_tolerance: Annotated[
        float, typer.Option("--volume-tolerance", metavar="RATIO", help="Relative tolerance of volume in shares (at least one lot).")
    ] = 0.005,
    amount_tolerance: Annotated[
        float, typer.Option("--amount-tolerance", metavar="RATIO", help="Relative tolerance of amount (at least one yuan).")
    ] = 0.005,
    volume_units: Annotated[
        str | None, typer.Option("--volume-units", metavar="UNITS", help="Unit assumed for a series that proves none, per "
                                 "data_source, e.g. akshare=lots (default: as the application stores them).")
    ] = None,
    max_samples: Annotated[int, typer.Option("--max-samples", metavar="N", help="Disagreements kept per check in reports.")] = 5,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="PATH", help="Write a JUnit XML report here (one testcase per check).")] = None,
    failures_out: Annotated[
        Path | None, typer.Option("--failures-out", metavar="PATH", help="Write each disagreeing day here, JSON Lines, with both "
                                  "sources' documents.")
    ] = None,
    html: HtmlOption = None,
    store: StoreOption = None,
    database: DatabaseOption = None,
) -> None:
    """Compare two sources day by day.

    Prices, returns, volume and amount of the same (symbol, trade_date) from two data_sources, in the
    store or in two files. Exit 0 agree, 1 disagreements, 2 usage error, 3 could not run.
    """
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        from tacn.pipelines.reconcile import ReconcileOptions, reconcile_files, reconcile_store
        from tacn.validators.records import PERIODS

        for name, value in (("--price-tolerance", price_tolerance), ("--price-tolerance-yuan", price_tolerance_yuan),
                            ("--volume-tolerance", volume_tolerance), ("--amount-tolerance", amount_tolerance)):
            if not value >= 0:
                raise typer.BadParameter(f"{name} must be 0 or more, got {value}")
        if max_samples < 0:
            raise typer.BadParameter("--max-samples must be 0 or more")
        options = ReconcileOptions(
            sources=parse_source_pair(data_source),
            period=parse_choice(period, PERIODS, "--period") or "daily",
            symbols=parse_symbols(symbols),
            since=parse_since_date(start),
            price_tolerance=price_tolerance,
            price_tolerance_yuan=price_tolerance_yuan,
            volume_tolerance=volume_tolerance,
            amount_tolerance=amount_tolerance,
            volume_units=parse_volume_units(volume_units),
            max_samples=max_samples,
            failures_out=failures_out,
        )
        if files:
            if len(files) != 2:
                raise typer.BadParameter(f"give two files (source A, source B), got {len(files)}")
            if store is not None or database is not None:
                raise typer.BadParameter("--store/--database do not apply when comparing two files")
            with ProgressDisplay(out, "reconcile", plain=False) as display:  # symbols compared of the symbols held
                result = reconcile_files(files[0], files[1], options, progress=display if display.wanted else None)
        else:
            with open_store_for(out, store, database) as opened, \
                    ProgressDisplay(out, "reconcile", plain=False) as display:
                result = reconcile_store(opened, options, progress=display if display.wanted else None)
        if junit is not None:
            from tacn.pipelines.reconcile import junit_xml

            write_text(junit, junit_xml(result), "--junit")
        if html is not None:
            from tacn.pipelines.report_html import reconcile_report

            write_text(html, reconcile_report(result), "--html")
        _render(out, result, json_)
        if html is not None:
            out.info(f"HTML report written to {html}")
    raise typer.Exit(exit_codes.OK if result.passed else exit_codes.PROBLEMS_FOUND)


def _render(out: Output, result, json_: bool) -> None:
    if json_:
        out.json(result.to_dict())
        return
    a, b = result.sources
    rows, styles = [], []
    for check in result.checks:
        sample = check.samples[0] if check.samples else None
        where = f"{sample['key']['symbol']} {sample['key']['trade_date']}: {sample['reason']}" if sample else "-"
        rows.append([check.name, check.severity, check.failing, check.checked, where[:90]])
        styles.append("red" if check.fails_run else ("yellow" if check.failing else None))
    out.table(f"reconcile: {a} vs {b}", ["check", "severity", "disagree", "checked", "first sample"], rows,
              styles=styles, caption=f"{result.target['name']}: {result.symbols:,} symbols, "
              f"{result.common_days:,} common days")
    if result.worst:
        names = ["price_return", "price_level", "volume", "amount", "missing_day"]
        out.table("worst symbols", ["symbol", "days", "common days", *names],
                  [[w["symbol"], w["days"], w["common"], *(w[n] for n in names)] for w in result.worst[:WORST_IN_TABLE]],
                  caption="days with any disagreement, per check")
    units = {source: {"expected": None, "shares": 0, "lots": 0, "unknown": 0, "no evidence": 0, "changed": 0, **counts}
             for source, counts in result.units.items()}
    render_volume_units(out, units)
    for source, count in result.symbols_only_in.items():
        if count:
            out.info(f"{count:,} symbol(s) stored in {source} only (not compared)")
    if result.failures_out:
        out.info(f"{result.failures_out['records']:,} disagreeing days written to {result.failures_out['path']}")
    if not result.symbols:
        out.verdict(f"FAIL: nothing compared: no symbol is stored in both {a} and {b}", failed=True, style="bold red")
    elif result.passed:
        out.verdict(f"PASS: {a} and {b} agree on {result.common_days:,} common days in {result.duration_s:.1f}s",
                    failed=False, style="bold green")
    else:
        failed = [c.name for c in result.checks if c.fails_run]
        out.verdict(f"FAIL: {result.disagreeing_symbols:,} symbol(s) disagree ({', '.join(failed)}) "
                    f"in {result.duration_s:.1f}s", failed=True, style="bold red")


ORDER = 25


def register(app: typer.Typer) -> None:
    app.command("reconcile", epilog=examples(
        ("AKShare against Tushare in the store, last 30 days", "tacn reconcile --start 30d"),
        ("Two files: source A, then source B", "tacn reconcile akshare.csv tushare.csv --json"),
        ("One symbol, looser prices, a CI report",
         "tacn reconcile --symbols 000001 --price-tolerance 0.01 --junit rec.xml"),
    ))(reconcile_command)

