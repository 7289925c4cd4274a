"""tacn validate: check every record of the store or a file against the rule catalogue; a CI gate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import (
    DatabaseOption,
    DataSourceOption,
    FileTypeOption,
    JsonOption,
    LayoutOption,
    MinRecordsOption,
    PeriodOption,
    QuietOption,
    SinceOption,
    StoreOption,
    SymbolsOption,
    VerboseOption,
    choice_value,
    choices,
    parse_choice,
    parse_since,
    parse_symbols,
    records_gate,
)
from tacn.cli.progress import ProgressDisplay
from tacn.cli.quality import (
    CutoffOption,
    HtmlOption,
    MaxLagOption,
    QualitySections,
    parse_volume_units,
    render_volume_units,
)
from tacn.cli.render import Output
from tacn.cli.runner import handle_errors, open_store_for

SAMPLES_IN_TABLE = 2


Severity = choices("Severity", "error", "warning")  # tacn.pipelines.validate.THRESHOLDS


def validate_command(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="TARGET",
            help="What to check: a CSV, Parquet or JSON Lines file (mongoexport output too), or a store URL. "
            "Default: the store.",
            show_default=False,
        ),
    ] = None,
    data_source: DataSourceOption = None,
    symbols: SymbolsOption = None,
    period: PeriodOption = None,
    since: SinceOption = None,
    rules: Annotated[
        str | None, typer.Option("--rules", metavar="RULES", help="Comma-separated rule names (see `tacn schema`); default: all.")
    ] = None,
    severity_threshold: Annotated[
        Severity, typer.Option("--severity-threshold", callback=choice_value,
                               help="Lowest severity that fails the run.")
    ] = Severity.error,
    max_samples: Annotated[int, typer.Option("--max-samples", metavar="N", min=0, help="Failing records kept per rule in reports.")] = 5,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="PATH", help="Write a JUnit XML report here (one testcase per rule).")] = None,
    failures_out: Annotated[
        Path | None, typer.Option("--failures-out", metavar="PATH", help="Write every failing record here, JSON Lines, with its rule names.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", metavar="N", min=1, help="Records read and judged at a time.")] = 100_000,
    completeness: Annotated[
        bool, typer.Option("--completeness", help="Also report trading days missing inside each symbol's date span.")
    ] = False,
    min_records: MinRecordsOption = 0,
    volume_units: Annotated[
        str | None,
        typer.Option("--volume-units", metavar="UNITS", help="Expected volume unit per data_source for the volume_unit rule, "
                     "e.g. akshare=lots,tushare=shares (default: as the application stores them)."),
    ] = None,
    freshness: Annotated[
        bool, typer.Option("--freshness", help="Also check that each (symbol, data_source) reaches the latest "
                           "completed XSHG session.")
    ] = False,
    max_lag: MaxLagOption = 0,
    cutoff: CutoffOption = "17:30",
    html: HtmlOption = None,
    layout: LayoutOption = None,
    file_type: FileTypeOption = None,
    store: StoreOption = None,
    database: DatabaseOption = None,
) -> None:
    """Check records against the rule catalogue.

    TARGET is the store (default) or a file. Exit 0 clean, 1 failures at or above the threshold (or
    fewer records than --min-records), 3 unreadable (a store or file that does not exist included).
    """
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        from tacn.pipelines.stores.base import RecordFilter
        from tacn.pipelines.validate import THRESHOLDS, ValidateOptions, validate_file, validate_store
        from tacn.validators.records import DATA_SOURCES, PERIODS

        flt = RecordFilter(
            data_source=parse_choice(data_source, DATA_SOURCES, "--data-source"),
            period=parse_choice(period, PERIODS, "--period"),
            symbols=parse_symbols(symbols),
            updated_since=parse_since(since),
        )
        threshold = parse_choice(severity_threshold, THRESHOLDS, "--severity-threshold")
        if batch_size < 1:
            raise typer.BadParameter("--batch-size must be at least 1")
        if max_samples < 0:
            raise typer.BadParameter("--max-samples must be 0 or more")
        options = ValidateOptions(
            flt=flt,
            rules=_parse_rules(rules),
            threshold=threshold,
            max_samples=max_samples,
            chunk_size=batch_size,
            completeness=completeness,
            failures_out=failures_out,
            volume_units=parse_volume_units(volume_units),
            layout=layout,
            file_type=file_type,
            stream_wait_s=_connect_timeout(),
        )
        sections = QualitySections(out, freshness=freshness, max_lag=max_lag, cutoff=cutoff, html=html)
        options.observers.extend(sections.observers())
        if target is not None and "://" in target:
            if store is not None:
                raise typer.BadParameter("give the store either as TARGET or as --store, not both")
            store, target = target, None
        # No plain progress lines in cron: validate's output is a report; a bar on a terminal, -v lines per chunk.
        with ProgressDisplay(out, "validate", plain=False) as display:
            progress = display if display.wanted else None  # nobody looks: no count of the selection either
            if target is None:
                with open_store_for(out, store, database) as opened:
                    result = validate_store(opened, options, progress=progress)
                    sections.read_store(opened)
            else:
                if store is not None or database is not None:
                    raise typer.BadParameter("--store/--database do not apply when TARGET is a file")
                result = validate_file(Path(target), options, progress=progress)
        sections.finish(result)
        if junit is not None:
            _write_junit(junit, result, sections.junit)
        gate = records_gate(result.records, min_records)
        _render(out, result, json_, gate, sections.payload())
        sections.render()
    passed = result.passed and not gate["too_few_records"] and sections.passed
    raise typer.Exit(exit_codes.OK if passed else exit_codes.PROBLEMS_FOUND)


def _connect_timeout() -> float:
    """TACN_CONNECT_TIMEOUT: also how long a FIFO given as TARGET may stay without a writer."""
    from tacn.cli.settings import load_env

    text = load_env().get("TACN_CONNECT_TIMEOUT", "5")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 600:  # nan fails both comparisons
        raise typer.BadParameter(f"TACN_CONNECT_TIMEOUT must be seconds between 0 and 600, got {text!r}")
    return seconds


def _parse_rules(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    from tacn.validators.rules import RULES_BY_NAME

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in RULES_BY_NAME]
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown rule(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(RULES_BY_NAME)}"
        )
    return names


def _write_junit(path: Path, result, extend=lambda text: text) -> None:
    from tacn.pipelines.errors import UsageError
    from tacn.pipelines.validate import junit_xml

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(extend(junit_xml(result)), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write --junit {path}: {exc.strerror or exc}") from None


def _render(out: Output, result, json_: bool, gate: dict, extra: dict | None = None) -> None:
    if json_:
        payload = {**result.to_dict(), "gate": gate, **(extra or {})}
        if gate["too_few_records"] or (extra or {}).get("freshness", {}).get("verdict") == "fail":
            payload["verdict"] = "fail"
        out.json(payload)
        return
    rows, styles = [], []
    for rule in result.rules:
        samples = ", ".join(_short(s["value"]) for s in rule.samples[:SAMPLES_IN_TABLE])
        rows.append([rule.name, rule.severity, rule.failing, f"{rule.share:.2%}", samples or "-"])
        styles.append("red" if rule.fails_run else ("yellow" if rule.failing else None))
    out.table(
        f"validate: {result.records:,} records",
        ["rule", "severity", "failing", "share", "samples"],
        rows,
        styles=styles,
        caption=f"{result.target['name']} ({result.target['format']})",
    )
    render_volume_units(out, result.volume_units)
    if result.skipped_rules:
        out.info(f"not run: {', '.join(result.skipped_rules)}")
    if result.failures_out:
        out.info(f"{result.failures_out['records']:,} failing records written to {result.failures_out['path']}")
    failed = [r.name for r in result.rules if r.fails_run]
    warned = [r.name for r in result.rules if r.failing and not r.fails_run]
    checked = f"; {gate['note']}" if gate["note"] else ""
    if failed:
        verdict = (
            f"FAIL: {len(failed)} rule(s) at or above '{result.threshold}' failed "
            f"({result.failing_records['error']:,} records fail an error rule){checked} in {result.duration_s:.1f}s"
        )
        out.verdict(verdict, failed=True, style="bold red", detail=f"failed: {', '.join(failed)}")
    elif gate["too_few_records"]:
        out.verdict(f"FAIL: {gate['note']} in {result.duration_s:.1f}s", failed=True, style="bold red")
    else:
        note = f"; warnings: {', '.join(warned)}" if warned else ""
        out.verdict(f"PASS: no failures at or above '{result.threshold}'{note}{checked} in {result.duration_s:.1f}s",
                    failed=False, style="bold yellow" if gate["note"] else "bold green")


def _short(value, limit: int = 24) -> str:
    if isinstance(value, dict):
        text = " ".join(f"{k}={_short(v, 12)}" for k, v in value.items())
    elif isinstance(value, list):
        text = ",".join(map(str, value))
    else:
        text = repr(value) if isinstance(value, str) or value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def schema_command(
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    pandera: Annotated[
        bool,
        typer.Option("--pandera", help="Print the pandera schema (pandera's own YAML; JSON with --json) "
                     "and name the checks it cannot serialise."),
    ] = False,
) -> None:
    """List the rules that tacn validate runs.

    Name, severity, scope and what each rule checks; --pandera prints the pandera schema instead.
    """
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        from tacn.validators.rules import catalogue

        if pandera:
            _print_pandera(out, json_)
            raise typer.Exit(exit_codes.OK)
        rules = catalogue()
        if json_:
            out.json({"rules": rules})
        else:
            out.table(
                "tacn validate rules",
                ["rule", "severity", "scope", "checks"],
                [[r["name"], r["severity"], r["scope"] + (" (opt-in)" if r["opt_in"] else ""), r["description"]] for r in rules],
                styles=["red" if r["severity"] == "error" else "yellow" for r in rules],
            )
    raise typer.Exit(exit_codes.OK)


def _print_pandera(out: Output, json_: bool) -> None:
    """pandera's own serialisation of the portable schema; the custom checks listed by name beside it."""
    import json

    from tacn.validators.schemas import portable_text, unportable_checks

    custom = unportable_checks()
    if json_:
        out.json({"pandera_schema": json.loads(portable_text("json")), "not_serialised": custom})
        return
    if out.quiet:
        return
    lines = [portable_text("yaml").rstrip("\n"), "# Checks tacn runs that pandera cannot serialise (custom functions):"]
    lines += [f"#   {c['name']} ({c['severity']}): {c['why']} - {c['description']}" for c in custom]
    sys.stdout.write("\n".join(lines) + "\n")


ORDER = 20


def register(app: typer.Typer) -> None:
    app.command("validate", epilog=examples(
        ("CI gate on the store: exit 1 on an error-level failure", "tacn validate --junit reports/validate.xml"),
        ("A file (mongoexport output too); warnings fail as well",
         "tacn validate quotes.jsonl --severity-threshold warning"),
        ("The last day's AKShare records, as JSON", "tacn validate --data-source akshare --since 24h --json"),
        ("Fail an empty selection; check freshness too", "tacn validate --min-records 1 --freshness --max-lag 1"),
    ))(validate_command)
    app.command("schema", epilog=examples(
        ("The rules as a table", "tacn schema"),
        ("The same for a script", "tacn schema --json"),
        ("The pandera schema, as pandera's YAML", "tacn schema --pandera"),
    ))(schema_command)
