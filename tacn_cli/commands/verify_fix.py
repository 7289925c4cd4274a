"""tacn verify-fix: exit 0 when no invalid record remains, 1 otherwise."""

from __future__ import annotations

from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import (
    DatabaseOption,
    DataSourceOption,
    JsonOption,
    MinRecordsOption,
    QuietOption,
    StoreOption,
    VerboseOption,
    records_gate,
)
from tacn.cli.progress import ProgressDisplay
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors, open_store_for


def verify_fix_command(
    since: Annotated[str, typer.Option("--since", metavar="WHEN", help="The recent window: a duration (24h, 7d) or a date.")] = "24h",
    data_source: DataSourceOption = None,
    symbol: Annotated[str | None, typer.Option("--symbol", metavar="CODE", help="Show this 6-digit code's newest records.")] = None,
    dates_only: Annotated[bool, typer.Option("--dates-only", help="Count invalid trade_dates only (skip the other error-level rules).")] = False,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    min_records: MinRecordsOption = 0,
    store: StoreOption = None,
    database: DatabaseOption = None,
) -> None:
    """Check that no invalid record remains.

    After a fix: how many records updated since --since, and in the whole store, still have an
    invalid trade_date (counted in the store with the real date rule, so "20251023" counts) or fail
    another error-level rule; plus the newest records of --symbol. Exit 0 when none, 1 otherwise
    (also when fewer records than --min-records were checked).
    """
    from tacn.cli.options import parse_choice, parse_since, parse_symbols
    from tacn.validators.records import DATA_SOURCES

    # parsed outside handle_errors: typer's BadParameter must reach typer (usage error, exit 2)
    parse_choice(data_source, DATA_SOURCES, "--data-source")
    if symbol is not None:
        parsed = parse_symbols(symbol)
        if len(parsed) != 1:
            raise typer.BadParameter(f"--symbol takes one 6-digit code, got {symbol!r}")
        symbol = parsed[0]
    window = parse_since(since)
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        from tacn.pipelines.recovery.verify import verify_fix

        with open_store_for(out, store, database) as opened, ProgressDisplay(out, "verify", plain=False) as display:
            result = verify_fix(opened, since=window, data_source=data_source, symbol=symbol,
                                check_rules=not dates_only, min_records=min_records,
                                progress=display if display.wanted else None)
        if json_:
            out.json({**result.__dict__, "ok": result.ok, "gate": records_gate(result.records_checked, min_records)})
        else:
            _render(out, result)
    raise typer.Exit(exit_codes.OK if result.ok else exit_codes.PROBLEMS_FOUND)


def _render(out: Output, result) -> None:
    since = f"updated since {result.since:%Y-%m-%d %H:%M} UTC" if result.since else "recent"
    rows = [["invalid trade_date", result.invalid_trade_date_since, result.invalid_trade_date_total]]
    if result.other_rules_checked:
        rows.append(["failing another error-level rule", result.failing_other_rules_since,
                     result.failing_other_rules_total])
        rows += [[f"  {r.rule}", r.since, r.total] for r in result.rules if r.total]
    styles = ["red" if row[2] else "green" for row in rows]
    out.table("verify-fix", ["check", since, "whole store"], rows, styles=styles,
              caption=f"in {result.store} {result.filter or ''}".rstrip())
    if result.symbol:
        out.table(
            f"newest records of {result.symbol}",
            ["trade_date", "data_source", "period", "close", "volume", "updated_at", "trade_date is"],
            [[repr(r["trade_date"]) if not isinstance(r["trade_date"], str) else r["trade_date"], r["data_source"],
              r["period"], r["close"], r["volume"], r["updated_at"], r["trade_date_kind"]] for r in result.newest],
            styles=[None if r["trade_date_kind"] == "valid" else "red" for r in result.newest],
            caption="trade_date as text, descending, as the application sorts",
        )
    note = records_gate(result.records_checked, result.min_records)["note"]
    if result.ok:
        out.verdict(f"OK: no invalid record remains{'; ' + note if note else ''}", failed=False,
                    style="yellow" if note else "green")
    elif result.too_few_records and result.invalid_trade_date_total == 0 and result.failing_other_rules_total == 0:
        out.verdict(f"FAIL: {note}", failed=True, style="red")
    else:
        out.verdict(f"NOT FIXED: invalid records remain (see above){'; ' + note if note else ''}", failed=True,
                    style="red", detail=f"{result.invalid_trade_date_total:,} invalid trade_date, "
                    f"{result.failing_other_rules_total:,} failing another error-level rule (whole store)")


ORDER = 32


def register(app: typer.Typer) -> None:
    app.command("verify-fix", epilog=examples(
        ("After a fix: the last day's records and the whole store", "tacn verify-fix"),
        ("A week back, and 000001's newest records", "tacn verify-fix --since 7d --symbol 000001"),
        ("Dates only; an empty store fails", "tacn verify-fix --dates-only --min-records 1 --json"),
    ))(verify_fix_command)
