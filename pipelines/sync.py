"""The sync job: daily quotes from AKShare, Tushare or a file into the store.

Incremental (each symbol starts the day after its latest *valid* stored
trade_date unless ``start`` is given), idempotent (upserts keyed on symbol,
trade_date, data_source, period), resumable (an interrupted run leaves whole
symbols or a date-ordered prefix of one, so the next run continues where it
stopped) and unable to write a bad trade_date: every row passes the record
contract and the error-level rules of :mod:`tacn.validators.rules` before it is
written; the others go to a rejects file (JSON Lines) with their reasons.

Entry points: :func:`run_sync` (a :class:`SyncRequest` in, a :class:`SyncResult`
out) and :func:`sync_status`. Nothing here prints or exits; failures that stop
the run are the typed errors of :mod:`tacn.pipelines.errors`.
"""

from __future__ import annotations

import random as _random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tacn.pipelines import price_basis, runs
from tacn.pipelines.errors import (
    BasisMismatch,
    ConfigError,
    SourceError,
    StoreError,
    TacnError,
    UsageError,
)
from tacn.pipelines.rejects import RejectsFile
from tacn.pipelines.sources.calling import CallFailed, MinInterval, OnHttpCall, RetryingCaller, RetryPolicy
from tacn.validators.dates import FIRST_TRADE_DATE_ISO, shanghai_today
from tacn.validators.records import PERIODS, parse_code, utc_now
from tacn.validators.source_layouts import LAYOUTS, LayoutError, convert_frame, documents

if TYPE_CHECKING:
    from tacn.pipelines.stores.base import QuoteStore

API_SOURCES = ("akshare", "tushare")
ADJUSTS = price_basis.BASES
DEFAULT_ADJUST = price_basis.APP_BASIS  # the application stores qfq for both sources
# Stored and fetched prices of the same day that differ by more than this moved basis
# (an adjustment event): prices are stored to 2 decimals, so half a cent is rounding.
REBASE_TOLERANCE = 0.005 + 1e-9
DEFAULT_HISTORY_START = FIRST_TRADE_DATE_ISO
JOB_PREFIX = "tacn_sync"
FILE_BASIS_NOTE = ("a file has no price basis tacn can fetch or check: its prices are written as they are (the "
                   "application reads them as qfq), no basis is recorded, and no re-base is tried")
MAX_ERRORS_RECORDED = 100
_SYMBOL_RE = re.compile(r"^\d{6}$")


# -- request and result -------------------------------------------------------------


@dataclass
class SyncRequest:
    """What to sync. Dates are YYYY-MM-DD; ``start=None`` means incremental per symbol."""

    source: str  # "akshare", "tushare" or "file:PATH"
    symbols: tuple[str, ...] | None = None
    all_symbols: bool = False
    start: str | None = None
    end: str | None = None  # default: today in Asia/Shanghai
    period: str = "daily"
    adjust: str | None = None  # none | qfq | hfq; None: qfq, as the application stores
    rebase: bool = False  # convert stored spans recorded on another basis (backed up first)
    backup_dir: Path | None = None  # where re-base backups go (a re-base without one fails that symbol)
    workers: int = 1
    dry_run: bool = False
    rejects_path: Path | None = None  # where rejected rows go (created only when there is one)
    layout: str | None = None  # file: force akshare | tushare | document
    file_type: str | None = None  # file: force csv | jsonl | parquet
    tushare_token: str | None = None
    tushare_url: str | None = None  # redirects the Tushare client (tests, proxies)
    timeout: float = 30.0  # seconds, every HTTP call
    max_attempts: int = 4  # per call, transient errors only
    backoff_base: float = 1.0  # seconds; doubles each attempt, with jitter
    backoff_max: float = 30.0
    rate_limit_wait: float = 60.0  # after a Tushare "per minute" refusal
    akshare_min_interval: float = 0.5  # seconds between AKShare calls, all workers together
    tushare_calls_per_minute: int = 100
    default_start: str = DEFAULT_HISTORY_START  # a symbol with nothing stored starts here
    use_lock: bool = True  # False only for a caller that already holds the store's sync lock
    record_run: bool = True

    @property
    def basis(self) -> str:
        return self.adjust or DEFAULT_ADJUST

    @property
    def source_kind(self) -> str:
        return "file" if self.source.startswith("file:") else self.source

    @property
    def file_path(self) -> Path | None:
        return Path(self.source[5:]).expanduser() if self.source.startswith("file:") else None


@dataclass
class SymbolOutcome:
    symbol: str
    status: str = "ok"  # ok | up_to_date | empty | failed
    start: str | None = None
    end: str | None = None
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    last_trade_date: str | None = None
    attempts: int = 0
    error: str | None = None
    rebased: int = 0  # documents whose prices a re-base replaced (0: no re-base)
    rebase_reason: str | None = None  # the day whose stored prices moved, or the basis converted
    rebase_backup: str | None = None  # the backup of what the re-base replaced (tacn restore undoes it)
    kept: list[str] = field(default_factory=list)  # stored days the re-base fetch no longer returned


@dataclass
class SyncResult:
    run_id: str
    job: str
    source: str
    period: str
    store: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float = 0.0
    status: str = "running"  # success | success_with_errors | failed (the app's sync_status values)
    symbols_total: int = 0
    symbols_ok: int = 0
    symbols_up_to_date: int = 0
    symbols_empty: int = 0
    symbols_failed: int = 0
    rows_fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    skipped: int = 0  # file rows outside --symbols / --start / --end
    rejects_path: str | None = None
    last_trade_date: str | None = None
    errors: list[dict] = field(default_factory=list)  # {"symbol", "error"}
    warnings: list[str] = field(default_factory=list)
    outcomes: list[SymbolOutcome] = field(default_factory=list)
    lock_note: str | None = None
    adjust: str = DEFAULT_ADJUST  # the price basis written (file sources: the file's own, not recorded)
    rebased: dict[str, int] = field(default_factory=dict)  # symbol → documents re-based
    rebase_backups: list[str] = field(default_factory=list)
    rebase_kept: dict[str, list[str]] = field(default_factory=dict)  # symbol → stored days kept
    basis_note: str | None = None  # what the run did (or could not do) about the price basis

    def to_dict(self, *, with_outcomes: bool = True) -> dict:
        out = asdict(self)
        if not with_outcomes:
            out.pop("outcomes")
        return out


@dataclass
class Progress:
    """What a progress display needs: sent after every symbol (API) or chunk (file)."""

    unit: str  # "symbols" (API), "bytes" (a CSV or JSON Lines file) or "rows" (Parquet)
    done: int
    total: int | None  # None when it cannot be known: a pipe or FIFO has no size
    rows_written: int
    rejected: int
    failed: int
    note: str = ""


# -- the gate ---------------------------------------------------------------------


def gate(converted, *, now: datetime | None = None):
    """(ok: bool ndarray, reasons: {label: [..]}) — the record contract plus every error-level rule.

    The rules run through the same pandera schema as tacn validate (tacn.validators.schemas).
    """
    import numpy as np

    from tacn.validators.rules import CheckContext
    from tacn.validators.schemas import failing_masks

    frame = converted.frame
    ok = np.ones(len(frame), dtype=bool)
    reasons: dict[Any, list[str]] = {label: list(problems) for label, problems in converted.problems.items()}
    if reasons:
        ok &= ~frame.index.isin(list(reasons))
    context = CheckContext(now_utc=now) if now is not None else None
    for name, mask in failing_masks(frame, severity="error", context=context).items():
        failing = mask.to_numpy(dtype=bool)
        if failing.any():
            ok &= ~failing
            prefix = f"{name}:"
            for label in frame.index[failing]:
                why = reasons.setdefault(label, [])
                if not any(reason.startswith(prefix) for reason in why):  # the contract already said why
                    why.append(name)
    return ok, reasons


# -- the job ----------------------------------------------------------------------


def _check_request(request: SyncRequest) -> None:
    kind = request.source_kind
    if kind not in (*API_SOURCES, "file"):
        raise UsageError(f"--source must be akshare, tushare or file:PATH, got {request.source!r}")
    if kind == "file" and not str(request.file_path):
        raise UsageError("--source file: needs a path, e.g. file:quotes.csv")
    if request.period not in PERIODS:
        raise UsageError(f"--period must be one of {', '.join(PERIODS)}, got {request.period!r}")
    if request.adjust is not None and request.adjust not in ADJUSTS:
        raise UsageError(f"--adjust must be one of {', '.join(ADJUSTS)}, got {request.adjust!r}")
    if request.layout is not None and request.layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, got {request.layout!r}")
    if request.workers < 1 or request.workers > 32:
        raise UsageError(f"--workers must be between 1 and 32, got {request.workers}")
    if request.max_attempts < 1:
        raise UsageError("the number of attempts must be at least 1")
    if request.tushare_calls_per_minute < 1:
        raise UsageError("--tushare-rate must be at least 1 call per minute")
    if request.akshare_min_interval < 0:
        raise UsageError("--akshare-interval cannot be negative")
    for symbol in request.symbols or ():
        if not _SYMBOL_RE.match(symbol):
            raise UsageError(f"not a 6-digit code: {symbol!r}")
    if request.start and request.end and request.start > request.end:
        raise UsageError(f"--start {request.start} is after --end {request.end}")
    if kind in API_SOURCES and not request.symbols and not request.all_symbols:
        raise UsageError("say which symbols: --symbols 000001,600000, --symbols-file FILE or --all")
    if kind == "file" and request.all_symbols:
        raise UsageError("--all does not apply to a file source (every row of the file is read)")
    if kind == "file" and (request.adjust is not None or request.rebase):
        raise UsageError("a file source has no price basis to fetch: --adjust and --rebase apply to akshare and "
                         "tushare only; a file's prices are written as they are and no basis is recorded for them")


def run_sync(
    store: QuoteStore,
    request: SyncRequest,
    *,
    progress: Callable[[Progress], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = _random.random,
    now: datetime | None = None,
    on_http_call: OnHttpCall | None = None,
) -> SyncResult:
    """Run one sync into ``store``. ``sleep``/``clock``/``rand`` are injectable so tests never wait.

    ``on_http_call``: told of every HTTP request an API source makes (method, URL, status, time).

    Raises UsageError (bad request), ConfigError (no Tushare token), LockHeld
    (another run holds the store), AuthRefused (token refused: the run stops);
    per-symbol failures are isolated and reported in the result.
    """
    _check_request(request)
    kind = request.source_kind
    file_source = None
    if kind == "file":
        from tacn.pipelines.sources.files import open_file_source

        file_source = open_file_source(request.file_path, file_type=request.file_type, layout=request.layout)
    if kind == "tushare" and not request.tushare_token:
        raise ConfigError("TUSHARE_TOKEN is not set (environment or .env): Tushare needs a token")

    job = f"{JOB_PREFIX}_{kind}"
    started = utc_now()
    result = SyncResult(
        run_id=runs.new_run_id(job), job=job, source=request.source, period=request.period,
        store=store.display_url, dry_run=request.dry_run, started_at=started,
        adjust=request.basis if kind != "file" else "as in the file",
    )
    rejects = RejectsFile(request.rejects_path, request.source)
    lock = None
    if request.use_lock and not request.dry_run:
        from tacn.pipelines.lock import store_lock

        lock = store_lock(store, "sync", f"tacn sync --source {kind}").acquire()
        if lock.previous is not None:
            result.lock_note = f"took over a stale lock left by {lock.previous.describe()}"
            result.warnings.append(result.lock_note)
    t0 = clock()
    record = request.record_run and not request.dry_run
    try:
        if record:
            if lock is not None:  # we hold the lock: a sync still "running" in the records died
                runs.mark_abandoned(store, job_prefix=JOB_PREFIX,
                                    message="interrupted: the process ended without finishing (killed?)")
            _write_records(store, result, request, "running")
        if kind == "file":
            _sync_file(store, request, file_source, result, rejects, progress, now)
        else:
            _sync_api(store, request, result, rejects, progress, sleep=sleep, clock=clock, rand=rand, now=now,
                      on_http_call=on_http_call)
        if result.symbols_failed and not (result.symbols_ok or result.symbols_up_to_date or result.symbols_empty):
            result.status = "failed"
        elif result.symbols_failed or result.rejected:
            result.status = "success_with_errors"
        else:
            result.status = "success"
    except BaseException as exc:
        result.status = "failed"
        message = str(exc) if isinstance(exc, TacnError) else (
            "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}")
        result.errors.append({"symbol": None, "error": message[:2000]})
        raise
    finally:
        rejects.close()
        result.rejects_path = str(rejects.path) if rejects.count and rejects.path else None
        result.finished_at = utc_now()
        result.duration_s = round(clock() - t0, 3)
        try:
            if record:
                with _signals_held():  # a second Ctrl-C/SIGTERM must not leave the run recorded "running"
                    _write_records(store, result, request, result.status)
        finally:
            if lock is not None:
                lock.release()
    return result


@contextmanager
def _signals_held():
    """SIGINT and SIGTERM ignored for the duration (main thread only): the run is ending anyway."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _status_message(result: SyncResult) -> str:
    parts = [
        f"{result.symbols_ok} symbols ok, {result.symbols_failed} failed, {result.symbols_empty} empty, "
        f"{result.symbols_up_to_date} up to date",
        f"{result.rows_fetched} rows fetched, {result.inserted} inserted, {result.updated} updated, "
        f"{result.rejected} rejected",
    ]
    if result.rebased:
        parts.append(f"{len(result.rebased)} symbols re-based ({sum(result.rebased.values())} documents, "
                     "backed up first)")
    if result.rejects_path:
        parts.append(f"rejects in {result.rejects_path}")
    if result.status == "failed" and result.errors:
        parts.append(str(result.errors[-1]["error"]))
    return "; ".join(parts)


def _write_records(store: QuoteStore, result: SyncResult, request: SyncRequest, status: str) -> None:
    import socket

    doc = {
        "status": status,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "total": result.symbols_total,
        "inserted": result.inserted,
        "updated": result.updated,
        "errors": result.symbols_failed,
        "last_trade_date": result.last_trade_date,
        "message": _status_message(result) if status != "running" else f"running since {result.started_at:%Y-%m-%d %H:%M:%S} UTC",
        "data_sources_used": [request.source_kind],
        "adjust": result.adjust,  # absent in records of tacn before qfq: how older stores are recognised
        "rebased": result.rebased,
        "rebase_backups": result.rebase_backups[:MAX_ERRORS_RECORDED],
        "rebase_kept": {s: days[:MAX_ERRORS_RECORDED] for s, days in result.rebase_kept.items()},
        # tacn's own fields
        "run_id": result.run_id,
        "source": result.source,
        "period": result.period,
        "rows_fetched": result.rows_fetched,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "rejects_path": result.rejects_path,
        "symbols_ok": result.symbols_ok,
        "symbols_failed": result.symbols_failed,
        "symbols_empty": result.symbols_empty,
        "duration_s": result.duration_s,
        "error_details": result.errors[:MAX_ERRORS_RECORDED],
        "warnings": result.warnings[:MAX_ERRORS_RECORDED],
        "host": socket.gethostname(),
    }
    try:
        runs.write_status(store, result.job, doc)
        runs.write_run(store, result.run_id, {"job": result.job, **doc})
    except TacnError:
        raise
    except Exception as exc:  # noqa: BLE001 - a store failure while recording must say so, not crash oddly
        raise StoreError(f"could not write the run record: {type(exc).__name__}: {str(exc)[:200]}") from None


def _progress(progress, result: SyncResult, unit: str, done: int, total: int | None, note: str = "") -> None:
    if progress is not None:
        progress(Progress(unit, done, total, result.inserted + result.updated, result.rejected,
                          result.symbols_failed, note))


def _add_write(result: SyncResult, outcome: SymbolOutcome | None, upserted) -> None:
    result.inserted += upserted.inserted
    result.updated += upserted.changed
    result.unchanged += upserted.unchanged
    if outcome is not None:
        outcome.inserted += upserted.inserted
        outcome.updated += upserted.changed
        outcome.unchanged += upserted.unchanged


def _later(a: str | None, b: str | None) -> str | None:
    return max(x for x in (a, b) if x) if (a or b) else None


# -- file sources -------------------------------------------------------------------


def _sync_file(store, request, source, result, rejects, progress, now) -> None:
    import numpy as np

    from tacn.pipelines.sources.files import UNPARSEABLE, ReadMeter, iter_frames

    wanted = set(request.symbols) if request.symbols else None
    fill_symbol = request.symbols[0] if request.symbols and len(request.symbols) == 1 else None
    seen_symbols: set[str] = set()
    meter = ReadMeter()
    # A large file into a small store: rebuild the secondary indexes once, at the end.
    with nullcontext() if request.dry_run else store.bulk_load():
        for raw in iter_frames(source, meter=meter):
            result.rows_fetched += len(raw)
            unparseable = {}
            if UNPARSEABLE in raw.columns:
                bad = raw[UNPARSEABLE].notna()
                unparseable = {label: [raw.at[label, UNPARSEABLE]] for label in raw.index[bad.to_numpy()]}
                raw = raw.drop(columns=[UNPARSEABLE])
                if not set(raw.columns) - {UNPARSEABLE}:
                    rejects.write(raw, unparseable)
                    result.rejected += len(unparseable)
                    continue
            try:
                converted = convert_frame(raw, source.layout, period=request.period, symbol=fill_symbol, now=now)
            except LayoutError as exc:
                raise UsageError(f"{source.path}: {exc}") from None
            for label, why in unparseable.items():
                converted.problems[label] = why
            frame = converted.frame
            keep = np.ones(len(frame), dtype=bool)
            if wanted is not None:
                keep &= frame["symbol"].isin(wanted).to_numpy(dtype=bool)
            dates = frame["trade_date"]
            if request.start:
                keep &= ~(dates < request.start).fillna(False).to_numpy(dtype=bool)
            if request.end:
                keep &= ~(dates > request.end).fillna(False).to_numpy(dtype=bool)
            if not keep.all():
                result.skipped += int((~keep).sum())
                converted.frame = frame = frame[keep]
                converted.problems = {k: v for k, v in converted.problems.items() if k in frame.index}
            ok, reasons = gate(converted, now=now)
            result.rejected += rejects.write(raw, reasons)
            good = frame[ok]
            if len(good):
                seen_symbols.update(good["symbol"].unique().tolist())
                result.last_trade_date = _later(result.last_trade_date, good["trade_date"].max())
                if not request.dry_run:
                    _add_write(result, None, store.upsert(documents(good, now=now), now=now))
            _progress(progress, result, meter.unit, meter.done, meter.total, str(source.path.name))
    result.symbols_total = result.symbols_ok = len(seen_symbols)
    result.basis_note = FILE_BASIS_NOTE
    if result.rows_fetched == 0:
        result.warnings.append(f"{source.path} holds no rows")


# -- AKShare and Tushare -----------------------------------------------------------


def _symbols_for(store, request: SyncRequest, caller: RetryingCaller, client) -> tuple[list[str], str]:
    """The symbols to sync and where the list came from."""
    if request.symbols:
        return list(dict.fromkeys(request.symbols)), "--symbols"
    codes = _stock_basic_codes(store)
    if codes:
        return codes, "stock_basic_info"
    try:
        if request.source_kind == "akshare":
            from tacn.pipelines.sources import akshare

            codes, _ = caller(akshare.stock_codes, "stock list")
        else:
            codes, _ = caller(client.stock_codes, "stock list")
    except CallFailed as exc:
        raise SourceError(f"cannot get the stock list from {request.source_kind}: {exc}") from None
    if not codes:
        raise SourceError(f"{request.source_kind} returned an empty stock list")
    return codes, f"{request.source_kind} stock list"


def _stock_basic_codes(store) -> list[str]:
    """Codes in the application's ``stock_basic_info`` (a MongoDB collection, or SQLite's aux table)."""
    try:
        values = [doc.get("code") for doc in store.aux_find("stock_basic_info")]
    except Exception:  # noqa: BLE001 - no such collection: fall back to the source's list
        return []
    return sorted({v for v in values if isinstance(v, str) and _SYMBOL_RE.match(v)})


def _fetch_symbol(request: SyncRequest, symbol: str, start: str, end: str, caller: RetryingCaller, client,
                  now) -> tuple[SymbolOutcome, Any]:
    """Fetch, convert and gate one symbol (runs in a worker thread)."""
    import pandas as pd

    outcome = SymbolOutcome(symbol, start=start, end=end)
    try:
        if request.source_kind == "akshare":
            from tacn.pipelines.sources import akshare

            raw, outcome.attempts = caller(lambda: akshare.fetch_quotes(
                symbol, start=start, end=end, period=request.period, adjust=request.basis,
                timeout=request.timeout), f"stock_zh_a_hist {symbol}")
            layout = "akshare"
        else:
            from tacn.pipelines.sources.tushare import apply_adjustment, windows

            parts = []
            for first, last in windows(start, end):
                part, attempts = caller(lambda a=first, b=last: client.quotes_window(symbol, a, b, request.period),
                                        f"{request.period} {symbol}")
                outcome.attempts += attempts
                if part is not None and not part.empty:
                    parts.append(part)
            raw = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
            if request.basis != "none" and not raw.empty:
                # Anchored on the latest factor, as the application's pro_bar call up to today is.
                anchor = max(end, shanghai_today(now).isoformat())
                factor_parts = []
                for first, last in windows(start, anchor):
                    part, attempts = caller(lambda a=first, b=last: client.adj_factors(symbol, a, b),
                                            f"adj_factor {symbol}")
                    outcome.attempts += attempts
                    if part is not None and not part.empty:
                        factor_parts.append(part)
                factors = pd.concat(factor_parts, ignore_index=True) if factor_parts else pd.DataFrame()
                try:
                    raw = apply_adjustment(raw, factors, request.basis)
                except ValueError as exc:
                    outcome.status, outcome.error = "failed", f"adj_factor {symbol}: {exc}"
                    return outcome, None
            layout = "tushare"
    except CallFailed as exc:
        outcome.status, outcome.error, outcome.attempts = "failed", str(exc), max(outcome.attempts, exc.attempts)
        return outcome, None
    if raw is None or raw.empty or len(raw.columns) == 0:
        outcome.status = "empty"
        return outcome, None
    raw = raw.reset_index(drop=True)  # positions for the rejects file; the date always comes from its column
    outcome.fetched = len(raw)
    try:
        converted = convert_frame(raw, layout, period=request.period, symbol=symbol, now=now)
    except LayoutError as exc:
        outcome.status, outcome.error = "failed", f"malformed reply: {exc}"
        return outcome, None
    other = converted.frame["symbol"].ne(symbol).fillna(True)
    for label in converted.frame.index[other.to_numpy(dtype=bool)]:
        converted.add_problem(label, f"symbol is not the requested {symbol}")
    ok, reasons = gate(converted, now=now)
    good = converted.frame[ok].sort_values("trade_date", kind="stable")  # a cut-short write is a prefix
    return outcome, (raw, good, reasons)


def _sync_api(store, request: SyncRequest, result: SyncResult, rejects: RejectsFile, progress, *,
              sleep, clock, rand, now, on_http_call: OnHttpCall | None = None) -> None:
    from tacn.validators.calendar import last_known_session, sessions_between

    policy = RetryPolicy(request.max_attempts, request.backoff_base, request.backoff_max, request.rate_limit_wait)
    if request.source_kind == "akshare":
        limiter = MinInterval(request.akshare_min_interval, clock=clock, sleep=sleep)
        client = None
    else:
        from tacn.pipelines.sources.tushare import TushareClient

        limiter = MinInterval(60.0 / request.tushare_calls_per_minute, clock=clock, sleep=sleep)
        client = TushareClient(request.tushare_token, timeout=request.timeout, http_url=request.tushare_url)
    caller = RetryingCaller(limiter, policy, sleep, rand, request.source_kind, on_http_call)
    symbols, origin = _symbols_for(store, request, caller, client)
    result.symbols_total = len(symbols)
    end = request.end or shanghai_today().isoformat()
    kind, period = request.source_kind, request.period
    book = price_basis.load(store, kind, period)
    if not book.legacy_checked:
        price_basis.adopt_legacy(store, book, result.job, sorted(store.latest_valid_trade_dates(kind, period)),
                                 write=not request.dry_run, now=now)
    latest = store.latest_valid_trade_dates(kind, period, symbols)
    converting = _check_basis(request, book, symbols, latest)
    before_start = store.latest_valid_trade_dates(kind, period, symbols, end=_day_before(request.start)) \
        if request.start else {}
    plan: list[tuple[str, str | None]] = []
    overlap: dict[str, str] = {}
    for symbol in symbols:
        if symbol in converting:
            start = None  # the whole stored span, worked out when its turn comes
        elif request.start:
            start = before_start.get(symbol, request.start)  # one stored session earlier: the overlap
            if symbol in before_start:
                overlap[symbol] = start
        elif symbol in latest and latest[symbol] >= end:
            start = _day_after(latest[symbol])
        elif symbol in latest:
            start = overlap[symbol] = latest[symbol]  # the latest stored session again: the overlap
        else:
            start = request.default_start
        if start is not None and start > end:
            outcome = SymbolOutcome(symbol, status="up_to_date", start=start, end=end, last_trade_date=latest.get(symbol))
            result.outcomes.append(outcome)
            result.symbols_up_to_date += 1
            continue
        plan.append((symbol, start))
    done = len(result.outcomes)
    _progress(progress, result, "symbols", done, len(symbols), f"{len(plan)} to fetch ({origin})")
    context = _ApplyContext(store, request, result, rejects, book, caller, client, end, sessions_between,
                            last_known_session(), overlap, now)

    executor = ThreadPoolExecutor(max_workers=request.workers, thread_name_prefix="tacn-sync")
    try:
        pending: set[Future] = set()
        queue = iter(plan)

        def submit_next() -> bool:
            item = next(queue, None)
            if item is None:
                return False
            symbol, start = item
            if start is None:
                start = min(_stored_span(store, request, symbol)[0] or end, end)
            pending.add(executor.submit(_fetch_symbol, request, symbol, start, end, caller, client, now))
            return True

        for _ in range(request.workers):  # one symbol in flight per worker: memory stays per symbol
            if not submit_next():
                break
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                pending.discard(future)
                outcome, payload = future.result()  # AuthRefused propagates and stops the run
                _apply_outcome(context, outcome, payload, converting=outcome.symbol in converting)
                done += 1
                _progress(progress, result, "symbols", done, len(symbols), outcome.symbol)
                submit_next()
    finally:
        caller.stopped.set()  # workers still retrying (after an interrupt or a refused token) give up
        executor.shutdown(wait=False, cancel_futures=True)


def _day_after(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def _check_basis(request: SyncRequest, book, symbols: list[str], latest: dict[str, str]) -> set[str]:
    """Symbols whose stored span is on another basis: converted with --rebase, else the run is refused."""
    other = [s for s in symbols if s in latest and book.basis(s) != request.basis]
    if not other or request.rebase:
        return set(other)
    by_basis: dict[str, list[str]] = {}
    for symbol in other:
        by_basis.setdefault(book.basis(symbol), []).append(symbol)
    found = ", ".join(f"{len(v)} on {k} ({', '.join(v[:5])}{' …' if len(v) > 5 else ''})" for k, v in by_basis.items())
    command = [f"tacn sync --source {request.source_kind} --symbols {','.join(other)}"]
    if request.adjust is not None:
        command.append(f"--adjust {request.adjust}")
    if request.period != "daily":
        command.append(f"--period {request.period}")
    command.append("--rebase")
    inferred = [s for s in other if book.note(s) == price_basis.LEGACY_NOTE]
    why = (f" {len(inferred)} of them were synced by an earlier tacn, whose default was --adjust none (its run "
           "records carry no adjust field); tacn now writes qfq like the application." if inferred else "")
    raise BasisMismatch(
        f"this sync writes {request.basis} prices but the stored {request.source_kind} {request.period} quotes of "
        f"{len(other)} symbol(s) are on another basis ({found}); nothing was fetched. To replace each stored span "
        f"on the {request.basis} basis (backed up first; tacn restore undoes it), run: {' '.join(command)} .{why} "
        "Mixing bases under one key breaks the series at every ex-date.")


def _stored_span(store, request: SyncRequest, symbol: str) -> tuple[str | None, str | None, list[dict]]:
    """(first, last, documents) of the symbol's stored quotes with a valid trade_date."""
    from tacn.pipelines.stores.base import RecordFilter
    from tacn.validators.dates import is_valid_iso_trade_date

    docs = [doc for doc in store.iter_documents(RecordFilter(
        data_source=request.source_kind, period=request.period, symbols=(symbol,)))
        if is_valid_iso_trade_date(doc.get("trade_date"))]
    if not docs:
        return None, None, []
    days = [doc["trade_date"] for doc in docs]
    return min(days), max(days), docs


def moved_days(stored: list[dict], fresh) -> list[str]:
    """Days whose stored prices differ from the fresh ones beyond rounding (an adjustment event)."""
    from tacn.validators.records import PRICE_FIELDS

    by_day = {doc["trade_date"]: doc for doc in stored}
    if not by_day:
        return []
    moved = []
    for row in fresh[fresh["trade_date"].isin(list(by_day))].itertuples(index=False):
        doc = by_day.get(row.trade_date)
        if doc is None:
            continue
        for name in PRICE_FIELDS:
            old, new = doc.get(name), getattr(row, name, None)
            if isinstance(old, int | float) and isinstance(new, int | float) and old == old and new == new \
                    and abs(old - new) > REBASE_TOLERANCE:
                moved.append(row.trade_date)
                break
    return moved


@dataclass
class _ApplyContext:
    store: Any
    request: SyncRequest
    result: SyncResult
    rejects: RejectsFile
    book: Any
    caller: RetryingCaller
    client: Any
    end: str
    sessions_between: Callable
    last_session: str
    overlap: dict[str, str]  # symbol → the stored session fetched again to check the basis
    now: datetime | None


def _apply_outcome(ctx: _ApplyContext, outcome: SymbolOutcome, payload, *, converting: bool = False) -> None:
    from tacn.pipelines.stores.base import RecordFilter

    request, result, store = ctx.request, ctx.result, ctx.store
    result.outcomes.append(outcome)
    if outcome.status == "failed":
        _fail(result, outcome)
        return
    if outcome.status == "empty":
        span_end = min(outcome.end, ctx.last_session)
        first = outcome.start
        if ctx.overlap.get(outcome.symbol) == first:
            first = _day_after(first)  # the overlap session is stored already: only new days count
        sessions = len(ctx.sessions_between(first, span_end)) if first <= span_end else 0
        if sessions:
            result.symbols_empty += 1
            result.warnings.append(
                f"{outcome.symbol}: no rows from {request.source_kind} for {outcome.start}..{outcome.end}, "
                f"a range with {sessions} trading days (suspended, delisted, or a silent server error)")
        else:
            outcome.status = "up_to_date"
            result.symbols_up_to_date += 1
        return
    raw, good, reasons = payload
    if converting:
        outcome.rebase_reason = f"stored on {ctx.book.basis(outcome.symbol)}, converted to {request.basis} (--rebase)"
    elif len(good):
        stored = list(store.iter_documents(RecordFilter(
            data_source=request.source_kind, period=request.period, symbols=(outcome.symbol,),
            start=good["trade_date"].iloc[0], end=good["trade_date"].iloc[-1])))
        moved = moved_days(stored, good)
        if moved:
            outcome.rebase_reason = f"stored prices of {moved[0]} moved (an adjustment event)"
    if outcome.rebase_reason is not None:
        payload = _rebase(ctx, outcome, payload, converting=converting)
        if payload is None:
            return
        raw, good, reasons = payload
    result.rows_fetched += outcome.fetched
    outcome.rejected = ctx.rejects.write(raw, reasons, symbol=outcome.symbol)
    result.rejected += outcome.rejected
    if len(good):
        outcome.last_trade_date = good["trade_date"].iloc[-1]
        result.last_trade_date = _later(result.last_trade_date, outcome.last_trade_date)
        if not request.dry_run:
            upserted = store.upsert(documents(good, now=ctx.now), now=ctx.now)
            _add_write(result, outcome, upserted)
            if outcome.rebase_reason is not None:
                outcome.rebased = upserted.changed
            price_basis.record(store, ctx.book, outcome.symbol, request.basis, run_id=result.run_id, now=ctx.now)
    if outcome.rebase_reason is not None and outcome.rebased:
        result.rebased[outcome.symbol] = outcome.rebased
    result.symbols_ok += 1


def _fail(result: SyncResult, outcome: SymbolOutcome) -> None:
    outcome.status = "failed"
    result.symbols_failed += 1
    result.errors.append({"symbol": outcome.symbol, "error": outcome.error})


def _rebase(ctx: _ApplyContext, outcome: SymbolOutcome, payload, *, converting: bool):
    """The symbol's whole stored span fetched again and backed up: (raw, good, reasons), or None when it failed.

    Stored days the fetch no longer returns are kept and reported, never deleted.
    """
    from tacn.pipelines.recovery.backup import write_backup

    request, store = ctx.request, ctx.store
    first, last, stored = _stored_span(store, request, outcome.symbol)
    span_start = min(first or outcome.start, outcome.start)
    span_end = max(last or ctx.end, ctx.end)
    if not converting or span_start < outcome.start or span_end > outcome.end:
        refetched, payload = _fetch_symbol(request, outcome.symbol, span_start, span_end, ctx.caller, ctx.client,
                                           ctx.now)
        outcome.attempts += refetched.attempts
        if refetched.status != "ok" or payload is None:
            outcome.error = (f"re-base needed ({outcome.rebase_reason}) but fetching {span_start}..{span_end} "
                             f"failed: {refetched.error or 'no rows'}; nothing written for this symbol")
            _fail(ctx.result, outcome)
            return None
        outcome.start, outcome.end, outcome.fetched = span_start, span_end, refetched.fetched
    from tacn.pipelines.stores.base import comparable, same_document

    raw, good, reasons = payload
    fresh = {doc["trade_date"]: comparable(doc) for doc in documents(good, now=ctx.now)}
    fresh_days = set(fresh)
    # What the upsert will replace: stored documents whose values differ from the fresh ones.
    replaced = [doc for doc in stored if doc["trade_date"] in fresh
                and not same_document(comparable(doc), fresh[doc["trade_date"]])]
    outcome.kept = sorted(doc["trade_date"] for doc in stored if doc["trade_date"] not in fresh_days)
    if outcome.kept:
        ctx.result.rebase_kept[outcome.symbol] = outcome.kept
        ctx.result.warnings.append(
            f"{outcome.symbol}: re-based, but {len(outcome.kept)} stored day(s) are no longer returned by "
            f"{request.source_kind} ({', '.join(outcome.kept[:5])}{' …' if len(outcome.kept) > 5 else ''}): "
            "kept as stored, on the old basis")
    if request.dry_run:
        outcome.rebased = len(replaced)
        return raw, good, reasons
    if request.backup_dir is None:
        outcome.error = f"re-base needed ({outcome.rebase_reason}) but no backup directory was given; nothing written"
        _fail(ctx.result, outcome)
        return None
    if replaced:
        backup = write_backup(replaced, request.backup_dir, label=f"sync-rebase-{request.source_kind}-{outcome.symbol}",
                              store=store.display_url, selection={
                                  "data_source": request.source_kind, "period": request.period,
                                  "symbols": [outcome.symbol], "start": span_start, "end": span_end,
                                  "reason": outcome.rebase_reason, "run_id": ctx.result.run_id})
        backup.manifest["restore_mode"] = "replace"  # tacn restore puts the replaced values back
        backup.save_manifest()
        outcome.rebase_backup = str(backup.manifest_path)
        ctx.result.rebase_backups.append(outcome.rebase_backup)
    return raw, good, reasons


# -- status ---------------------------------------------------------------------------


@dataclass
class SyncStatusReport:
    store: str
    jobs: list[dict]  # the sync_status documents of tacn's sync jobs
    runs: list[dict]  # the newest runs, newest first


def sync_status(store: QuoteStore, *, limit: int = 10) -> SyncStatusReport:
    """The application-shaped status of each sync job and the last ``limit`` runs."""
    return SyncStatusReport(
        store=store.display_url,
        jobs=runs.statuses(store, job_prefix=JOB_PREFIX),
        runs=runs.recent_runs(store, limit=limit, job_prefix=JOB_PREFIX),
    )


def read_symbols_file(path: str | Path) -> tuple[str, ...]:
    """Codes from a file: one per line or separated by commas/spaces; # starts a comment."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read --symbols-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--symbols-file {path} is not UTF-8 text") from None
    codes: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        for token in re.split(r"[,\s]+", line.split("#", 1)[0].strip()):
            if not token:
                continue
            try:
                codes.append(parse_code(token))
            except ValueError as exc:
                raise UsageError(f"--symbols-file {path}, line {number}: {exc}") from None
    if not codes:
        raise UsageError(f"--symbols-file {path} lists no codes")
    return tuple(dict.fromkeys(codes))

