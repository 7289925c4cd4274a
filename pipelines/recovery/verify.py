"""verify-fix: is anything invalid left, recently and in the whole store?

Invalid trade_dates are counted in the store (SQL in SQLite, a query in
MongoDB) with the same predicate clean uses, so "20251023" and "2025/10/23"
count as invalid, unlike the application's own length test. The other
error-level rules of tacn.validators.rules are evaluated on streamed chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tacn.pipelines.progress import ProgressReport
from tacn.pipelines.stores.base import QuoteStore, RecordFilter
from tacn.validators.dates import classify_stored_trade_date

TRADE_DATE_RULE = "trade_date_iso"
NEWEST_LIMIT = 10


@dataclass
class RuleCount:
    rule: str
    description: str
    since: int | None
    total: int


@dataclass
class VerifyResult:
    store: str
    since: datetime | None
    filter: dict
    invalid_trade_date_since: int | None
    invalid_trade_date_total: int
    other_rules_checked: bool
    records_checked: int = 0  # records the selection holds (0: the check judged nothing)
    min_records: int = 0  # fewer records checked than this fails the check
    failing_other_rules_since: int | None = None  # records failing at least one other error-level rule
    failing_other_rules_total: int = 0
    rules: list[RuleCount] = field(default_factory=list)
    symbol: str | None = None
    newest: list[dict] = field(default_factory=list)

    @property
    def too_few_records(self) -> bool:
        return self.records_checked < self.min_records

    @property
    def ok(self) -> bool:
        return self.invalid_trade_date_total == 0 and self.failing_other_rules_total == 0 and not self.too_few_records


def verify_fix(
    store: QuoteStore,
    *,
    since: datetime | None = None,
    data_source: str | None = None,
    symbol: str | None = None,
    check_rules: bool = True,
    min_records: int = 0,
    now: datetime | None = None,
    progress: ProgressReport | None = None,
) -> VerifyResult:
    """Counts of invalid records since ``since`` (naive UTC) and in the whole store, plus ``symbol``'s newest.

    ``progress``: the records judged by the other error-level rules so far, of the store's count."""
    whole = RecordFilter(data_source=data_source)
    recent = RecordFilter(data_source=data_source, updated_since=since) if since is not None else None
    result = VerifyResult(
        store=store.display_url,
        since=since,
        filter=whole.describe(),
        invalid_trade_date_since=store.count_invalid_trade_date(recent) if recent else None,
        invalid_trade_date_total=store.count_invalid_trade_date(whole),
        other_rules_checked=check_rules,
        records_checked=store.count(whole),
        min_records=min_records,
    )
    if check_rules:
        _count_other_rules(store, whole, since, result, now, progress)
    if symbol is not None:
        result.symbol = symbol
        result.newest = newest_records(store, symbol, data_source, now=now)
    return result


def _count_other_rules(store: QuoteStore, flt: RecordFilter, since: datetime | None, result: VerifyResult,
                       now: datetime | None, progress: ProgressReport | None = None) -> None:
    import pandas as pd

    from tacn.validators.records import utc_now
    from tacn.validators.rules import RULES_BY_NAME, CheckContext, error_rule_names, failing_masks

    names = [n for n in error_rule_names() if n != TRADE_DATE_RULE and RULES_BY_NAME[n].scope == "row"]
    context = CheckContext(now_utc=now or utc_now())
    totals = dict.fromkeys(names, 0)
    recent = dict.fromkeys(names, 0)
    any_total = any_recent = done = 0
    for frame in store.iter_frames(flt):
        masks = failing_masks(frame, rules=names, context=context)
        if since is not None:
            updated = pd.to_datetime(frame["updated_at"], errors="coerce") if "updated_at" in frame else None
            is_recent = (updated >= pd.Timestamp(since)).fillna(False).astype(bool) if updated is not None else None
        failing_any = None
        for name, mask in masks.items():
            totals[name] += int(mask.sum())
            failing_any = mask if failing_any is None else (failing_any | mask)
            if since is not None and is_recent is not None:
                recent[name] += int((mask & is_recent).sum())
        if failing_any is not None:
            any_total += int(failing_any.sum())
            if since is not None and is_recent is not None:
                any_recent += int((failing_any & is_recent).sum())
        done += len(frame)
        if progress is not None:
            progress(done, result.records_checked, "records")
    result.failing_other_rules_total = any_total
    result.failing_other_rules_since = any_recent if since is not None else None
    result.rules = [
        RuleCount(name, RULES_BY_NAME[name].description, recent[name] if since is not None else None, totals[name])
        for name in names
    ]


def newest_records(store: QuoteStore, symbol: str, data_source: str | None = None, *,
                   limit: int = NEWEST_LIMIT, now: datetime | None = None) -> list[dict]:
    """The symbol's records with the highest trade_date as text (how the app sorts), each judged."""
    docs = list(store.iter_documents(RecordFilter(symbols=(symbol,), data_source=data_source)))
    docs.sort(key=lambda d: (str(d.get("trade_date")), str(d.get("data_source"))), reverse=True)
    return [
        {
            "trade_date": d.get("trade_date"),
            "data_source": d.get("data_source"),
            "period": d.get("period"),
            "close": d.get("close"),
            "volume": d.get("volume"),
            "updated_at": d.get("updated_at"),
            "trade_date_kind": classify_stored_trade_date(d.get("trade_date"), now=now),
        }
        for d in docs[:limit]
    ]
