"""repair: the closed loop — clean (with backup), re-sync what was lost, verify.

1. clean: every record with an invalid trade_date (narrowed by data_source) is
   backed up and deleted (:mod:`tacn.pipelines.recovery.clean`);
2. plan: for each (symbol, data_source, period) that lost records, the date span
   those records covered (:func:`lost_span`);
3. re-sync exactly those pairs over those spans (:func:`tacn.pipelines.sync.run_sync`),
   each from its own data_source, or all from ``source`` when given;
4. verify-fix over the store (:mod:`tacn.pipelines.recovery.verify`).

A dry run does the clean dry run and the planning only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from tacn.pipelines.errors import TacnError, UsageError
from tacn.pipelines.progress import ProgressReport, StepProgress, step
from tacn.pipelines.recovery.clean import CleanResult, PairLoss, clean_invalid_trade_date
from tacn.pipelines.recovery.verify import VerifyResult, verify_fix
from tacn.pipelines.stores.base import QuoteStore, RecordFilter
from tacn.validators.dates import FIRST_TRADE_DATE_ISO, shanghai_today

RESYNC_SOURCES = ("akshare", "tushare")


@dataclass
class RepairTarget:
    """One re-sync: a pair that lost records and the span to fetch again."""

    symbol: str
    data_source: str
    period: str
    records_lost: int
    start: str | None
    end: str | None
    basis: str  # how the span was found
    source: str | None  # what to sync from; None when it cannot be re-synced
    note: str | None = None


@dataclass
class ResyncOutcome:
    source: str
    period: str
    symbols: list[str]
    start: str
    end: str
    status: str  # the sync's status, or "error"
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    error: str | None = None
    rebased: dict[str, int] = field(default_factory=dict)  # symbol → documents re-based (an adjustment event)
    rebase_backups: list[str] = field(default_factory=list)


@dataclass
class RepairResult:
    store: str
    dry_run: bool
    clean: CleanResult
    targets: list[RepairTarget] = field(default_factory=list)
    resyncs: list[ResyncOutcome] = field(default_factory=list)
    verify: VerifyResult | None = None

    @property
    def ok(self) -> bool:
        if self.dry_run:
            return True
        unsynced = any(t.source is None for t in self.targets)
        failed = any(r.status not in ("success",) for r in self.resyncs)
        return not unsynced and not failed and self.verify is not None and self.verify.ok


def _sessions_up_to(end_day: str) -> list[str]:
    from tacn.validators.calendar import sessions_between

    return sessions_between(FIRST_TRADE_DATE_ISO, end_day)


def lost_span(pair: PairLoss, latest_valid: str | None, *, now: datetime | None = None) -> tuple[str | None, str | None, str]:
    """(start, end, basis) of the days a pair's invalid records stood for.

    - values that still name a date ("20251023", "2025/10/23") give it directly;
    - row numbers "0".."N" (the 2025-10-23 bug: AKShare's RangeIndex) stand for N+1
      consecutive XSHG sessions ending at the last session on or before the day the
      records were written (their updated_at, in Asia/Shanghai);
    - otherwise: from the day after the pair's latest valid date to the day written.
    """
    written = shanghai_today(pair.updated_last) if pair.updated_last else shanghai_today(now)
    written_iso = written.isoformat()
    starts, ends, basis = [], [], []
    if pair.recoverable_first:
        starts.append(pair.recoverable_first)
        ends.append(pair.recoverable_last)
        basis.append("dates in the values")
    if pair.max_row_number is not None:
        sessions = _sessions_up_to(written_iso)
        if sessions:
            count = pair.max_row_number + 1
            starts.append(sessions[-count] if count <= len(sessions) else sessions[0])
            ends.append(sessions[-1])
            basis.append(f"rows 0..{pair.max_row_number}")
    if not starts:
        after = (datetime.fromisoformat(latest_valid) + timedelta(days=1)).date().isoformat() if latest_valid else None
        start = after if after and after <= written_iso else None
        return start, written_iso, "after latest valid"
    return min(starts), max(ends), "; ".join(basis)


def plan_targets(store: QuoteStore, clean: CleanResult, source: str | None, *, now: datetime | None = None) -> list[RepairTarget]:
    targets = []
    latest_cache: dict[tuple, dict[str, str]] = {}
    for pair in clean.pairs:
        symbol, data_source, period = pair.symbol, pair.data_source, pair.period or "daily"
        if not isinstance(symbol, str) or not isinstance(data_source, str) or not isinstance(period, str):
            targets.append(RepairTarget(str(symbol), str(data_source), str(period), pair.records, None, None,
                                        "-", None, "symbol, data_source or period unusable: not re-synced"))
            continue
        key = (data_source, period)
        if key not in latest_cache:
            latest_cache[key] = store.latest_valid_trade_dates(data_source, period)
        start, end, basis = lost_span(pair, latest_cache[key].get(symbol), now=now)
        chosen = source or (data_source if data_source in RESYNC_SOURCES else None)
        note = None if chosen else f"no re-sync source for data_source {data_source!r} (pass --source)"
        targets.append(RepairTarget(symbol, data_source, period, pair.records, start, end, basis, chosen, note))
    return targets


SyncFunction = Callable[..., object]


def repair(
    store: QuoteStore,
    *,
    source: str | None = None,
    data_source: str | None = None,
    apply: bool = False,
    backup_dir: Path | None = None,
    batch_size: int = 50_000,
    sync_options: dict | None = None,
    sync: SyncFunction | None = None,
    now: datetime | None = None,
    steps: StepProgress | None = None,
) -> RepairResult:
    """Clean (backup first), re-sync the lost pairs over their spans, verify. Dry run unless ``apply``.

    ``steps``: one progress report per step of an applied repair ("clean": the backup's records deleted,
    "re-sync": the symbols synced of all groups', "verify-fix": the records counted of the store's).
    """
    if source is not None and source not in RESYNC_SOURCES and not source.startswith("file:"):
        raise UsageError(f"--source must be akshare, tushare or file:PATH, got {source!r}")
    if data_source is None and source in RESYNC_SOURCES:
        data_source = source  # --source akshare repairs what AKShare wrote
    flt = RecordFilter(data_source=data_source)
    with step(steps if apply else None, "clean") as progress:
        clean = clean_invalid_trade_date(store, flt, apply=apply, backup_dir=backup_dir, batch_size=batch_size,
                                         label="repair", now=now, progress=progress)
    result = RepairResult(store.display_url, not apply, clean, plan_targets(store, clean, source, now=now))
    if not apply:
        return result
    if sync is None:
        from tacn.pipelines.sync import run_sync as sync
    groups: dict[tuple, list[str]] = {}
    for t in result.targets:
        if t.source is not None and t.end is not None:
            groups.setdefault((t.source, t.period, t.start, t.end), []).append(t.symbol)
    planned = {key: sorted(set(symbols)) for key, symbols in groups.items()}
    with step(steps if planned else None, "re-sync") as progress:
        symbols_done = _SymbolsOfAllGroups(progress, sum(len(symbols) for symbols in planned.values()))
        for (src, period, start, end), symbols in planned.items():
            # The sync's re-base rule holds here too: its backups go where clean's did.
            options = {"backup_dir": backup_dir, **(sync_options or {})}
            report = symbols_done.sync_report() if progress is not None else None
            result.resyncs.append(_resync(store, sync, src, period, start, end, symbols, options, now, report))
            symbols_done.group_done(len(symbols))
    with step(steps, "verify-fix") as progress:
        result.verify = verify_fix(store, data_source=data_source, now=now, progress=progress)
    return result


class _SymbolsOfAllGroups:
    """The re-sync step's progress: symbols done of every group's, from each sync's own reports. A file
    re-sync counts bytes, not symbols, and a failed one may report nothing: a group counts whole when it ends."""

    def __init__(self, progress: ProgressReport | None, total: int):
        self.progress, self.total = progress, total
        self.before, self.shown = 0, -1  # symbols of the groups already done; the count last reported

    def _show(self, done: int) -> None:
        if self.progress is not None and done != self.shown:
            self.shown = done
            self.progress(done, self.total, "symbols")

    def sync_report(self):
        def report(sync_progress) -> None:
            if sync_progress.unit == "symbols":
                self._show(self.before + min(sync_progress.done, sync_progress.total or 0))
        return report

    def group_done(self, symbols: int) -> None:
        self.before += symbols
        self._show(self.before)


def _resync(store, sync, source, period, start, end, symbols, options, now, progress=None) -> ResyncOutcome:
    from tacn.pipelines.sync import SyncRequest

    outcome = ResyncOutcome(source, period, symbols, start or "(incremental)", end, "error")
    request = SyncRequest(source=source, symbols=tuple(symbols), start=start, end=end, period=period, **options)
    try:
        synced = sync(store, request, now=now, **({"progress": progress} if progress is not None else {}))
    except TacnError as exc:  # one failed group does not stop the others; it is reported
        outcome.error = str(exc)
        return outcome
    outcome.status = synced.status
    outcome.inserted, outcome.updated, outcome.rejected = synced.inserted, synced.updated, synced.rejected
    outcome.rebased = dict(getattr(synced, "rebased", {}) or {})
    outcome.rebase_backups = list(getattr(synced, "rebase_backups", []) or [])
    if synced.errors:
        outcome.error = "; ".join(str(e.get("error")) for e in synced.errors[:3])
    return outcome
