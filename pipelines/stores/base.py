"""What every store does, and the small value types its operations return.

Two implementations: :mod:`tacn.pipelines.stores.sqlite` (embedded, the default)
and :mod:`tacn.pipelines.stores.mongo` (the application's own MongoDB). The same
contract test suite runs against both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from tacn.pipelines.lock import RunLock

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
    """Every method and attribute that jobs, migrations and commands use on a store.

    ``tests/test_layering.py`` checks that both stores have each member with a compatible
    signature. A store may have more (SQLite's rendered backup lines for clean, MongoDB's
    ``ensure_indexes``); callers that use those check for them first.
    """

    kind: str  # "sqlite" or "mongodb"
    display_url: str  # password masked
    created: bool  # opening it created the store (a new SQLite file, a new quotes collection)
    # Set by the store's lock while held (tacn.pipelines.lock.store_lock): called before every write batch.
    write_guard: Callable[[], None] | None

    # -- quotes: writing
    def upsert(self, docs: Iterable[dict], *, now: datetime | None = None) -> UpsertResult:
        """Insert or update by key (symbol, trade_date, data_source, period); unchanged documents are not rewritten."""
        ...

    def bulk_load(self) -> AbstractContextManager[None]:
        """A context for a large load: secondary indexes may be rebuilt once at its end."""
        ...

    def delete_by_ids(self, ids: Iterable[Any]) -> int:
        """Delete these ``_id`` s; the number deleted."""
        ...

    def put_documents(self, docs: Iterable[dict]) -> PutResult:
        """Put documents back by ``_id`` (restore): identical ones already there are counted, others are conflicts."""
        ...

    def replace_documents(self, docs: Iterable[dict]) -> int:
        """Replace stored documents by ``_id`` with these full documents (migrations); the number replaced."""
        ...

    # -- quotes: reading
    def iter_frames(self, flt: RecordFilter | None = None, *, chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
        """The selected quotes as DataFrames of at most ``chunk_size`` rows."""
        ...

    def iter_documents(self, flt: RecordFilter | None = None, *, batch_size: int = 5_000) -> Iterator[dict]:
        """The selected quotes as documents, as stored."""
        ...

    def count(self, flt: RecordFilter | None = None) -> int:
        """How many quotes the filter selects."""
        ...

    def count_invalid_trade_date(self, flt: RecordFilter | None = None) -> int:
        """How many selected quotes have a trade_date that is not a valid ISO date."""
        ...

    def iter_invalid_trade_date(self, flt: RecordFilter | None = None, *, batch_size: int = 5_000) -> Iterator[dict]:
        """The selected quotes whose trade_date is not a valid ISO date, as documents."""
        ...

    def latest_valid_trade_dates(self, data_source: str, period: str = "daily", symbols: Iterable[str] | None = None,
                                 *, end: str | None = None) -> dict[str, str]:
        """symbol → its latest valid trade_date (on or before ``end``), for one source and period."""
        ...

    def stats(self) -> StoreStats:
        """Counts per (data_source, period) group, invalid trade_dates included."""
        ...

    # -- maintenance, for migrations
    def list_indexes(self) -> list[dict]:
        """The quotes' indexes: ``{"name", "fields", "unique"}``."""
        ...

    def create_unique_index(self, name: str, fields: Iterable[str]) -> None:
        """Create a unique index on ``fields`` (a missing field and null are one value, as in MongoDB)."""
        ...

    def drop_index(self, name: str) -> None:
        """Drop the named index (absent: nothing to do)."""
        ...

    def find_duplicate_keys(self, fields: Iterable[str], *, limit: int = 20) -> list[dict]:
        """Up to ``limit`` groups of quotes that share ``fields``: ``{"key", "count", "ids"}``."""
        ...

    def iter_missing_field(self, name: str, *, batch_size: int = 5_000) -> Iterator[dict]:
        """Quotes without field ``name`` (or with it null)."""
        ...

    # -- auxiliary collections: run records, sync status, price bases, migrations, stock_basic_info
    def aux_upsert(self, collection: str, key: str, doc: dict) -> None:
        """Write ``doc`` under ``key`` in an auxiliary collection (replacing what was there)."""
        ...

    def aux_find(self, collection: str) -> list[dict]:
        """Every document of an auxiliary collection, ordered by key, without ``_id``."""
        ...

    def aux_delete(self, collection: str, key: str) -> None:
        """Delete ``key`` from an auxiliary collection (absent: nothing to do)."""
        ...

    # -- one run at a time, and the connection
    def run_lock(self, name: str = "sync", purpose: str = "") -> RunLock:
        """This store's lock, not yet acquired; :func:`tacn.pipelines.lock.store_lock` guards writes with it."""
        ...

    def close(self) -> None: ...
    def __enter__(self) -> QuoteStore: ...
    def __exit__(self, *exc: object) -> None: ...


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
