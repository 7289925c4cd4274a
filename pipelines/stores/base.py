"""What every store does, and the small value types its operations return.

Two implementations: :mod:`tacn.pipelines.stores.sqlite` (embedded, the default)
and :mod:`tacn.pipelines.stores.mongo` (the application's own MongoDB). The same
contract test suite runs against both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

# How a command opens its store. Commands that only read never create one (a typo in a
# CI job's path must fail, not pass on an empty store) and read through a read-only
# connection; commands that change data need an existing store; only the commands that
# put data in (sync, restore, demo) create one.
READ, WRITE, CREATE = "read", "write", "create"
OPEN_MODES = (READ, WRITE, CREATE)


@dataclass(frozen=True)
class RecordFilter:
    """Which records an operation reads. Every field narrows; None means any."""

    data_source: str | None = None
    period: str | None = None
    symbols: tuple[str, ...] | None = None
    start: str | None = None  # trade_date >= start (valid ISO dates only)
    end: str | None = None  # trade_date <= end
    updated_since: datetime | None = None  # naive UTC

    def describe(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.updated_since is not None:
            out["updated_since"] = self.updated_since.isoformat(sep=" ")
        if self.symbols is not None:
            out["symbols"] = list(self.symbols)
        return out


@dataclass
class UpsertResult:
    inserted: int = 0
    changed: int = 0
    unchanged: int = 0

    def __iadd__(self, other: UpsertResult) -> UpsertResult:
        self.inserted += other.inserted
        self.changed += other.changed
        self.unchanged += other.unchanged
        return self

    @property
    def written(self) -> int:
        return self.inserted + self.changed


@dataclass
class PutResult:
    """Outcome of putting documents back by ``_id`` (restore)."""

    inserted: int = 0
    already_present: int = 0
    conflicts: list[dict] = field(default_factory=list)  # {"_id", "key", "reason"}


@dataclass
class GroupStats:
    data_source: Any
    period: Any
    records: int
    symbols: int
    first_trade_date: str | None
    last_trade_date: str | None
    invalid_trade_date: int


@dataclass
class StoreStats:
    store: str
    total_records: int
    total_symbols: int
    invalid_trade_date: int
    groups: list[GroupStats]

    def to_dict(self) -> dict:
        return asdict(self)


class QuoteStore(Protocol):
    kind: str  # "sqlite" or "mongodb"
    display_url: str  # password masked

    def upsert(self, docs: Iterable[dict], *, now: datetime | None = None) -> UpsertResult: ...
    def iter_frames(self, flt: RecordFilter | None = None, *, chunk_size: int = 100_000) -> Iterator[pd.DataFrame]: ...
    def iter_documents(self, flt: RecordFilter | None = None, *, batch_size: int = 5_000) -> Iterator[dict]: ...
    def count(self, flt: RecordFilter | None = None) -> int: ...
    def count_invalid_trade_date(self, flt: RecordFilter | None = None) -> int: ...
    def iter_invalid_trade_date(self, flt: RecordFilter | None = None, *, batch_size: int = 5_000) -> Iterator[dict]: ...
    def bulk_load(self) -> AbstractContextManager[None]: ...
    def delete_by_ids(self, ids: Iterable[Any]) -> int: ...
    def put_documents(self, docs: Iterable[dict]) -> PutResult: ...
    def latest_valid_trade_dates(self, data_source: str, period: str = "daily", symbols: Iterable[str] | None = None,
                                 *, end: str | None = None) -> dict[str, str]: ...
    def stats(self) -> StoreStats: ...
    # maintenance, for migrations
    def list_indexes(self) -> list[dict]: ...
    def create_unique_index(self, name: str, fields: Iterable[str]) -> None: ...
    def drop_index(self, name: str) -> None: ...
    def find_duplicate_keys(self, fields: Iterable[str], *, limit: int = 20) -> list[dict]: ...
    def iter_missing_field(self, name: str, *, batch_size: int = 5_000) -> Iterator[dict]: ...
    def close(self) -> None: ...


def mask_url(url: str) -> str:
    """The URL with its password and secret options replaced by ``***`` (user names stay visible)."""
    from tacn.pipelines.config.secrets import scrub_url

    return scrub_url(url)


def comparable(doc: dict) -> dict:
    """The content of a document that decides whether an upsert changes it."""
    return {k: v for k, v in doc.items() if k not in ("_id", "created_at", "updated_at")}


def same_document(a: Any, b: Any) -> bool:
    """Deep equality in which NaN equals NaN (a restored NaN is the same value, not a conflict)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_document(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_document(x, y) for x, y in zip(a, b, strict=True))
    return a == b
