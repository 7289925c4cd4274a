"""The price basis of what is stored, recorded rather than guessed.

qfq (forward-adjusted) and unadjusted prices are identical after a symbol's last
ex-date, so no comparison of stored and fetched prices can tell which basis a
stored series is on. tacn therefore records the basis it wrote for each
(data_source, period, symbol) in the store's own bookkeeping: the
``tacn_price_basis`` collection (MongoDB) or the same rows in SQLite's aux table.

- No record: the documents were written by the application, which stores qfq
  for both sources, so they count as qfq.
- Stores written by earlier tacn versions (their default was ``--adjust none``)
  are recognised by their run records, which carry no ``adjust`` field: the
  stored symbols of that source are recorded as ``none`` once, with where the
  inference came from, and the operator is told the command that converts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tacn.pipelines import runs
from tacn.validators.records import utc_now

BASIS_COLLECTION = "tacn_price_basis"
BASES = ("none", "qfq", "hfq")
APP_BASIS = "qfq"  # what the application stores, for AKShare and Tushare alike
LEGACY_DEFAULT = "none"  # the --adjust default of tacn before it wrote qfq
LEGACY_NOTE = "inferred: stored by an earlier tacn whose --adjust default was none (its run records have no adjust field)"


def _key(data_source: str, period: str, symbol: str) -> str:
    return f"{data_source}/{period}/{symbol}"


def _legacy_key(data_source: str, period: str) -> str:
    return f"legacy-check/{data_source}/{period}"


@dataclass
class BasisBook:
    """The recorded bases of one (data_source, period): symbol → record."""

    data_source: str
    period: str
    records: dict[str, dict]
    legacy_checked: bool

    def basis(self, symbol: str) -> str:
        record = self.records.get(symbol)
        return record["basis"] if record else APP_BASIS

    def note(self, symbol: str) -> str | None:
        record = self.records.get(symbol)
        return record.get("note") if record else None


def load(store: Any, data_source: str, period: str) -> BasisBook:
    records: dict[str, dict] = {}
    checked = False
    for doc in store.aux_find(BASIS_COLLECTION):
        if doc.get("key") == _legacy_key(data_source, period):
            checked = True
        elif doc.get("data_source") == data_source and doc.get("period") == period and doc.get("basis") in BASES:
            records[str(doc.get("symbol"))] = doc
    return BasisBook(data_source, period, records, checked)


def record(store: Any, book: BasisBook, symbol: str, basis: str, *, run_id: str | None,
           note: str | None = None, now: datetime | None = None) -> None:
    """Record ``basis`` for ``symbol`` (written only when it changes)."""
    current = book.records.get(symbol)
    if current is not None and current.get("basis") == basis and current.get("note") == note:
        return
    doc = {"key": _key(book.data_source, book.period, symbol), "data_source": book.data_source,
           "period": book.period, "symbol": symbol, "basis": basis, "recorded_at": now or utc_now(),
           "run_id": run_id}
    if note:
        doc["note"] = note
    store.aux_upsert(BASIS_COLLECTION, doc["key"], doc)
    book.records[symbol] = doc


def legacy_runs(store: Any, job: str, period: str) -> list[dict]:
    """Runs of ``job`` for ``period`` recorded by a tacn that did not record ``adjust`` (its default was none)."""
    return [r for r in store.aux_find(runs.HISTORY_COLLECTION)
            if r.get("job") == job and r.get("period", "daily") == period and "adjust" not in r]


def adopt_legacy(store: Any, book: BasisBook, job: str, stored_symbols: list[str], *, write: bool,
                 now: datetime | None = None) -> list[dict]:
    """Once per (data_source, period): symbols an earlier tacn synced get the basis ``none``.

    Returns the legacy runs found (empty when there were none or the check was
    done before). With ``write`` False (a dry run) the inference stays in memory.
    """
    if book.legacy_checked:
        return []
    found = legacy_runs(store, job, book.period)
    for symbol in stored_symbols:
        if found and symbol not in book.records:
            if write:
                record(store, book, symbol, LEGACY_DEFAULT, run_id=None, note=LEGACY_NOTE, now=now)
            else:
                book.records[symbol] = {"basis": LEGACY_DEFAULT, "note": LEGACY_NOTE}
    if write:
        store.aux_upsert(BASIS_COLLECTION, _legacy_key(book.data_source, book.period), {
            "key": _legacy_key(book.data_source, book.period), "checked_at": now or utc_now(),
            "legacy_runs": len(found),
            "first_run": found[0].get("run_id") if found else None,
            "last_run": found[-1].get("run_id") if found else None,
        })
        book.legacy_checked = True
    return found
