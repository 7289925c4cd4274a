"""tacn sync: pull daily quotes from AKShare, Tushare or a file into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tacn.cli import exit_codes
from tacn.cli.help_text import examples
from tacn.cli.options import (
    DatabaseOption,
    FileTypeOption,
    JsonOption,
    LayoutOption,
    Period,
    QuietOption,
    StoreOption,
    SymbolsOption,
    VerboseOption,
    choice_value,
    choices,
    finite,
    parse_date_option,
    parse_symbols,
)
from tacn.cli.progress import ProgressDisplay
from tacn.cli.render import Output, error_fields
from tacn.cli.runner import handle_errors, open_store_for

PriceBasis = choices("PriceBasis", "qfq", "none", "hfq")  # tacn.pipelines.price_basis.BASES


def sync_command(
    source: Annotated[str | None, typer.Option("--source", metavar="SOURCE", help="akshare, tushare (token: TUSHARE_TOKEN) or "
                                               "file:PATH (CSV, JSON Lines, Parquet).", show_default=False)] = None,
    symbols: SymbolsOption = None,
    symbols_file: Annotated[str | None, typer.Option("--symbols-file", metavar="PATH", help="A file of codes, one per line or comma-separated.")] = None,
    all_symbols: Annotated[bool, typer.Option("--all", help="Every symbol: the store's stock_basic_info, else the source's stock list.")] = False,
    start: Annotated[str | None, typer.Option("--start", metavar="DATE", help="First date, YYYY-MM-DD or YYYYMMDD (default: the day after each symbol's latest valid stored date).")] = None,
    end: Annotated[str | None, typer.Option("--end", metavar="DATE", help="Last date (default: today in Asia/Shanghai).")] = None,
    default_start: Annotated[str | None, typer.Option("--default-start", metavar="DATE", help="Where a symbol with nothing stored starts (default: 1990-12-19).")] = None,
    period: Annotated[Period, typer.Option("--period", callback=choice_value, help="Bars to fetch.")] = Period.daily,
    adjust: Annotated[PriceBasis | None, typer.Option("--adjust", callback=choice_value,
                                                      help="Price basis (default: qfq, what the application stores).",
                                                      show_default=False)] = None,
    rebase: Annotated[bool, typer.Option("--rebase", help="Convert stored spans recorded on another basis to this one (the replaced documents are backed up first).")] = False,
    backup_dir: Annotated[str | None, typer.Option("--backup-dir", metavar="DIR", help="Where re-base backups go (default: $TACN_HOME/backups).",
                                                   show_default=False)] = None,
    workers: Annotated[int, typer.Option("--workers", metavar="N", min=1, help="Symbols fetched in parallel (rate limits are shared).")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Fetch and validate, write nothing.")] = False,
    rejects: Annotated[str | None, typer.Option("--rejects", metavar="PATH", help="Rejected rows go here, JSON Lines (default: TACN_HOME/rejects/<run>.jsonl).")] = None,
    layout: LayoutOption = None,
    file_type: FileTypeOption = None,
    request_timeout: Annotated[float, typer.Option("--request-timeout", metavar="SECONDS", min=0.001, callback=finite,
                                                   help="Seconds for each HTTP call to the source.")] = 30.0,
    retries: Annotated[int, typer.Option("--retries", metavar="N", min=0, help="Retries of a transient error (connection, timeout, HTTP 5xx, rate limit).")] = 3,
    akshare_interval: Annotated[float, typer.Option("--akshare-interval", metavar="SECONDS", min=0, callback=finite, help="Minimum seconds between AKShare calls.")] = 0.5,
    tushare_rate: Annotated[int, typer.Option("--tushare-rate", metavar="N", min=1, help="Tushare calls per minute (your account's limit).")] = 100,
    status: Annotated[bool, typer.Option("--status", help="Show the last sync runs recorded in the store and exit.")] = False,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, help="With --status: how many runs.")] = 10,
    store: StoreOption = None,
    database: DatabaseOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Pull daily quotes into the store.

    From AKShare, Tushare or a file; incremental, idempotent and resumable. Rows that break the
    record contract (a bad trade_date first of all) are never written: they go to a rejects file.

    Exit codes: 0 all synced; 1 rows rejected or symbols failed (see the summary
    and the rejects file); 2 usage error; 3 could not run (lock held by another
    run, store or source unreachable, token refused).
    """
    out = Output(json_, quiet=quiet, verbose=verbose)
    with handle_errors(out):
        if status:
            _show_status(out, store, database, limit, json_)
            raise typer.Exit(exit_codes.OK)
        request, env = _request(source, symbols, symbols_file, all_symbols, start, end, default_start, period, adjust, workers,
                                dry_run, rejects, layout, file_type, request_timeout, retries, akshare_interval,
                                tushare_rate)
        request.rebase = rebase
        if request.source_kind != "file":
            from tacn.cli.commands.clean_invalid_trade_date import default_backup_dir

            request.backup_dir = Path(backup_dir).expanduser() if backup_dir else default_backup_dir(env)
        if adjust in ("none", "hfq"):
            out.warn(f"--adjust {adjust}: the application stores qfq prices and reads these documents as qfq; "
                     f"{adjust} prices under the same keys break its series at every ex-date")
        from tacn.pipelines.sync import run_sync

        with _open_sync_store(out, store, database, env, dry_run) as opened:
            with ProgressDisplay(out, "sync") as display:
                result = run_sync(opened, request, progress=display.report,
                                  on_http_call=_http_line(display) if out.verbose else None)
        _render(out, result, json_)
    raise typer.Exit(_exit_code(result))


def _http_line(display: ProgressDisplay):
    """-v: one stderr line per HTTP request to the source (Output scrubs the URL's token, key, password)."""

    def show(call) -> None:
        answer = f"HTTP {call.status}" if call.status is not None else f"no answer ({call.error})"
        retry = f", attempt {call.attempt}" if call.attempt > 1 else ""
        display.debug(f"{call.method} {call.url}: {answer} in {call.elapsed_s:.2f} s ({call.what}{retry})")

    return show


def _open_sync_store(out, store, database, env, dry_run: bool):
    """A real run creates a missing store; a dry run never writes, so it reads an existing store and
    compares a missing SQLite file with an empty in-memory store."""
    if not dry_run:
        return open_store_for(out, store, database, env=env, mode="create")
    from tacn.pipelines.errors import StoreMissing

    try:
        return open_store_for(out, store, database, env=env, mode="read")
    except StoreMissing as exc:
        from tacn.pipelines.stores.sqlite import SQLiteStore

        out.info(f"store {exc.display_url} does not exist: the dry run compares with an empty store and creates nothing")
        empty = SQLiteStore(":memory:")
        empty.display_url = f"{exc.display_url} (does not exist yet)"
        return empty


def _request(source, symbols, symbols_file, all_symbols, start, end, default_start, period, adjust, workers, dry_run, rejects,
             layout, file_type, timeout, retries, akshare_interval, tushare_rate):
    from pathlib import Path

    from tacn.cli.settings import load_env, tacn_home
    from tacn.pipelines.errors import UsageError
    from tacn.pipelines.sync import SyncRequest, read_symbols_file

    if not source:
        raise UsageError("--source is required: akshare, tushare or file:PATH (or --status)")
    chosen = [name for name, given in (("--symbols", symbols), ("--symbols-file", symbols_file), ("--all", all_symbols)) if given]
    if len(chosen) > 1:
        raise UsageError(f"use one of --symbols, --symbols-file and --all, not {' and '.join(chosen)}")
    try:
        codes = parse_symbols(symbols)
        start_iso, end_iso = parse_date_option(start, "--start"), parse_date_option(end, "--end")
        first_iso = parse_date_option(default_start, "--default-start")
    except typer.BadParameter as exc:
        raise UsageError(str(exc)) from None
    if symbols_file:
        codes = read_symbols_file(symbols_file)
    if timeout <= 0:
        raise UsageError("--request-timeout must be positive")
    if retries < 0:
        raise UsageError("--retries cannot be negative")
    env = load_env()
    kind = "file" if source.startswith("file:") else source
    if rejects:
        rejects_path = Path(rejects).expanduser()
    elif dry_run:
        rejects_path = None  # a dry run writes nothing unless asked to
    else:
        from tacn.validators.records import utc_now

        rejects_path = tacn_home(env) / "rejects" / f"sync-{kind}-{utc_now():%Y%m%dT%H%M%S}.jsonl"
    request = SyncRequest(
        source=source, symbols=codes, all_symbols=all_symbols, start=start_iso, end=end_iso, period=period,
        adjust=adjust, workers=workers, dry_run=dry_run, rejects_path=rejects_path, layout=layout,
        file_type=file_type, tushare_token=env.get("TUSHARE_TOKEN") if kind == "tushare" else None,
        tushare_url=env.get("TACN_TUSHARE_URL"), timeout=timeout, max_attempts=retries + 1,
        akshare_min_interval=akshare_interval, tushare_calls_per_minute=tushare_rate,
    )
    if first_iso:
        request.default_start = first_iso
    return request, env


def _exit_code(result) -> int:
    """0 clean; 1 rows rejected or symbols failed; 3 nothing could be synced."""
    if result.status == "failed":
        return exit_codes.CANNOT_RUN
    return exit_codes.PROBLEMS_FOUND if result.rejected or result.symbols_failed else exit_codes.OK


def _render(out: Output, result, json_: bool) -> None:
    if json_:
        code = _exit_code(result)
        payload = {**result.to_dict(), "exit_code": code}
        if code == exit_codes.CANNOT_RUN:  # the run report, plus the error object's fields
            first = result.errors[0]["error"] if result.errors else f"sync {result.status}"
            payload.update(error_fields("sync_failed", first, code))
        out.json(payload)
        return
    if result.basis_note:
        out.info(f"note: {result.basis_note}")
    for warning in result.warnings[:20]:
        out.warn(warning)
    if len(result.warnings) > 20:
        out.warn(f"… and {len(result.warnings) - 20} more warnings (see tacn sync --status)")
    for error in result.errors[:20]:
        out.error(f"{error['symbol'] or 'run'}: {error['error']}")
    mode = " (dry run: nothing written)" if result.dry_run else ""  # a short title: the details go in the caption
    rows = [
        ["symbols ok", result.symbols_ok], ["symbols up to date", result.symbols_up_to_date],
        ["symbols empty", result.symbols_empty], ["symbols failed", result.symbols_failed],
        ["rows fetched", result.rows_fetched], ["inserted", result.inserted], ["updated", result.updated],
        ["unchanged", result.unchanged], ["rejected", result.rejected],
    ]
    if result.skipped:
        rows.append(["skipped (outside --symbols/--start/--end)", result.skipped])
    if result.rebased:
        rows.append(["symbols re-based (documents)", f"{len(result.rebased)} ({sum(result.rebased.values())})"])
    rows.append(["duration (s)", round(result.duration_s, 1)])
    out.table(f"sync{mode}", ["", "count"], rows, caption=f"from {result.source} into {result.store}")
    for outcome in result.outcomes:
        if outcome.rebase_reason and (outcome.rebased or outcome.rebase_backup):
            undo = f"; undo: tacn restore {outcome.rebase_backup}" if outcome.rebase_backup else ""
            out.line(f"re-based {outcome.symbol}: {outcome.rebased} documents ({outcome.rebase_reason}){undo}",
                     style="yellow")
    if result.rejects_path:
        out.line(f"rejected rows: {result.rejects_path}", style="red")
    verdict = {0: ("synced", "green"), 1: ("synced with problems", "yellow"), 3: ("sync failed", "red")}
    code = _exit_code(result)
    text, style = verdict[code]
    first = result.errors[0] if result.errors else None
    out.verdict(f"{text}: status {result.status}, prices {result.adjust}, last trade_date {result.last_trade_date or '-'}",
                failed=code != exit_codes.OK, style=style,
                detail=f"{first['symbol'] or 'run'}: {first['error']}" if first else
                f"{result.rejected:,} rows rejected ({result.rejects_path})" if result.rejected else "")


def _show_status(out: Output, store, database, limit: int, json_: bool) -> None:
    from tacn.pipelines.sync import sync_status

    with open_store_for(out, store, database) as opened:
        report = sync_status(opened, limit=limit)
    if json_:
        out.json(report)
        return
    if not report.runs and not report.jobs:
        out.line("no sync run recorded in this store yet")
        return
    rows = [
        [_short_time(r.get("started_at")), r.get("job", "").removeprefix("tacn_sync_"), r.get("status"),
         r.get("total"), r.get("inserted"), r.get("updated"), r.get("rejected"), r.get("errors"),
         r.get("last_trade_date")]
        for r in report.runs
    ]
    styles = [{"failed": "red", "success_with_errors": "yellow", "running": "cyan"}.get(r.get("status")) for r in report.runs]
    out.table(f"last {len(rows)} sync runs",
              ["started UTC", "source", "status", "symbols", "ins", "upd", "rej", "failed", "last date"], rows,
              styles=styles, caption=f"in {report.store}")
    for job in report.jobs:
        out.line(f"{job.get('job')}: {job.get('status')} — {job.get('message')}")


def _short_time(value) -> str:
    return value.strftime("%m-%d %H:%M") if hasattr(value, "strftime") else str(value or "-")


ORDER = 10


def register(app: typer.Typer) -> None:
    app.command("sync", epilog=examples(
        ("Two symbols from AKShare, from where each one stopped", "tacn sync --source akshare --symbols 000001,600000"),
        ("A CSV in AKShare's layout; rejected rows to a file", "tacn sync --source file:quotes.csv --rejects rejects.jsonl"),
        ("Every symbol from Tushare since 2024 (TUSHARE_TOKEN)",
         "tacn sync --source tushare --all --start 2024-01-01 --workers 4"),
        ("The last 5 runs recorded in the store", "tacn sync --status --limit 5"),
    ))(sync_command)
