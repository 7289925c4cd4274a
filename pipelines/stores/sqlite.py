"""The embedded store: one SQLite file, no server.

Each document is one row. The known fields of the application's document are
columns without a declared type, so SQLite keeps whatever was written (an int
stays an int, "0" stays "0"). Values SQLite cannot hold as they are (dates,
bools, ObjectIds, NaN, timezone-aware datetimes, unknown fields, a field that
is absent where the app always writes it, or null where it writes it only when
present) go to the ``extra`` column as MongoDB Extended JSON and win over the
column on read. So what goes in comes back out unchanged, bad data included.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

from tacn.pipelines.errors import StoreError, StoreMissing, StoreUnavailable, UsageError
from tacn.pipelines.read_ahead import ReadAhead
from tacn.pipelines.stores.base import (
    CREATE,
    OPEN_MODES,
    READ,
    GroupStats,
    PutResult,
    RecordFilter,
    StoreStats,
    UpsertResult,
    same_document,
)
from tacn.validators.dates import FIRST_TRADE_DATE_ISO, ISO_DATE_LENGTH, latest_allowed_trade_date
from tacn.validators.records import COLLECTION, FIELDS, KEY_FIELDS, UNIQUE_INDEX_NAME, utc_now

TABLE = COLLECTION
AUX_TABLE = "tacn_aux"
BUSY_TIMEOUT_S = 60.0  # overlapping cron jobs queue this long rather than fail
# Indexes a bulk load may drop and rebuild (building one by sorting beats 1M random
# inserts); opening the store recreates any that a killed load left missing.
SECONDARY_INDEXES = {
    f"{TABLE}_id": f"CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_id ON {TABLE} (_id)",
    f"{TABLE}_updated_at": f"CREATE INDEX IF NOT EXISTS {TABLE}_updated_at ON {TABLE} (updated_at)",
    f"{TABLE}_trade_date": f"CREATE INDEX IF NOT EXISTS {TABLE}_trade_date ON {TABLE} (trade_date)",
}
UPSERT_BATCH = 50_000  # fewer commits: each commit rewrites the dirty index pages

_COLUMNS = tuple(f.name for f in FIELDS)
_KIND = {f.name: f.kind for f in FIELDS}
_ALWAYS = {f.name for f in FIELDS if f.always_written}
_PLAIN_TYPES = (str, int, float, type(None))
_DATETIME_FMT = "%Y-%m-%d %H:%M:%S.%f"  # what _datetime_text writes
_ABSENT = "$absent"

# tacn.validators.dates' definition in SQL: a text of exactly ten bytes (GLOB and date()
# read a text only up to an embedded NUL, so the byte length anchors the end), shaped
# YYYY-MM-DD in ASCII digits (GLOB's [0-9] is ASCII), a real calendar date (julianday
# normalises 2024-02-30 to 2024-03-01, so the round trip differs) and in range.
VALID_DATE_SQL = (
    "ifnull(typeof(trade_date) = 'text'"
    f" AND length(CAST(trade_date AS BLOB)) = {ISO_DATE_LENGTH}"
    " AND trade_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'"
    " AND date(julianday(trade_date)) = trade_date"
    f" AND trade_date >= '{FIRST_TRADE_DATE_ISO}' AND trade_date <= :latest, 0)"
)
INVALID_DATE_SQL = f"NOT {VALID_DATE_SQL}"

# MongoDB's unique index treats a null and a missing field as one value (null); SQLite's
# treats NULLs as distinct. So every unique index on fields gets a companion, a partial
# unique index over the rows where one of its columns is NULL, on the value MongoDB compares:
# null or absent -> X'' (an empty BLOB), a value escaped to ``extra`` -> its Extended JSON as
# a BLOB. No column ever holds a BLOB (bytes are escaped), so these never equal a column's
# text or number. Rows without a NULL key column stay under the plain index alone (cheap).
NULL_COMPANION_SUFFIX = "__nulls"


def _null_aware_sql(name: str) -> str:
    return (f"(CASE WHEN \"{name}\" IS NOT NULL THEN \"{name}\" "
            f"ELSE CAST(ifnull(nullif(extra -> '$.{name}', 'null'), '') AS BLOB) END)")


def _null_companion(fields: tuple[str, ...]) -> tuple[str, str]:
    """(the expressions, the WHERE) of the companion of a unique index on ``fields``."""
    return (", ".join(_null_aware_sql(f) for f in fields),
            " OR ".join(f'"{f}" IS NULL' for f in fields))


def _decode_null_aware(value: Any) -> Any:
    """A key value as :func:`_null_aware_sql` gives it back: a BLOB is null or an escaped value."""
    if isinstance(value, bytes):
        return _loads(value.decode("utf-8")) if value else None
    return value


def _dumps(value: Any) -> str:
    """Values SQLite cannot hold as they are, as tacn's Extended JSON (the backups' codec)."""
    from tacn.pipelines.extjson import encode_document  # bson: only needed for escaped values

    return encode_document(value)


def _loads(text: str) -> Any:
    from tacn.pipelines.extjson import decode_line

    return decode_line(text)


def _new_object_id_hexes(count: int) -> list[str]:
    """Fresh ObjectIds for a batch: timestamp, a random 5 bytes per batch, a counter.

    The layout of bson.ObjectId, made in one go: creating 10,000 ObjectId objects
    one by one costs more than inserting the rows.
    """
    prefix = f"{int(time.time()) & 0xFFFFFFFF:08x}{os.urandom(5).hex()}"
    start = int.from_bytes(os.urandom(3), "big")
    return [f"{prefix}{(start + i) & 0xFFFFFF:06x}" for i in range(count)]


def _encode_id(value: Any) -> str:
    if type(value).__name__ == "ObjectId" and type(value).__module__ == "bson.objectid":
        return str(value)  # the common case, without an import statement per id (deletes take 80k at a time)
    from bson import ObjectId

    if isinstance(value, ObjectId):
        return str(value)
    # Non-ObjectId ids keep their type through Extended JSON; the prefix keeps them apart.
    return "json:" + _dumps(value)


def _decode_id(text: str) -> Any:
    from bson import ObjectId

    if text.startswith("json:"):
        return _loads(text[5:])
    return ObjectId(text)


_FAST_KEYS = frozenset(_COLUMNS) | {"_id"}
_KEY_POSITIONS = tuple(1 + _COLUMNS.index(name) for name in KEY_FIELDS)  # in an encoded row
_REQUIRED_KEYS = frozenset(_ALWAYS)


@lru_cache(maxsize=256)  # a batch shares a handful of timestamps
def _datetime_text(value: datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")


_FAST_TYPES = frozenset((str, int, float, type(None), datetime))
_DATETIME_POSITIONS = tuple(i for i, name in enumerate(_COLUMNS) if _KIND[name] == "datetime")
_ALWAYS_COUNT = len(_ALWAYS)
# Encoding plans by the tuple of value types of a document: (float getter, expected key count).
_PLANS: dict[tuple, tuple | None] = {}


def _plan_for(signature: tuple) -> tuple | None:
    """How to encode documents whose values have these types; None when they need escaping."""
    if not frozenset(signature) <= _FAST_TYPES:
        return None
    for i, kind in enumerate(signature):
        is_datetime_column = i in _DATETIME_POSITIONS
        if (kind is datetime) != is_datetime_column and not (is_datetime_column and kind is type(None)):
            return None
    floats = [i for i, kind in enumerate(signature) if kind is float]
    optional_present = sum(
        1 for i, kind in enumerate(signature) if _COLUMNS[i] not in _ALWAYS and kind is not type(None)
    )
    getter = itemgetter(*floats) if len(floats) > 1 else (lambda values, i=floats[0]: (values[i],)) if floats else None
    return getter, _ALWAYS_COUNT + optional_present


def _encode_row(doc: dict, id_text: str) -> tuple:
    """The row for a document: (_id, known columns…, extra).

    Fast path for documents in the application's shape, decided once per
    combination of value types: every column plain, datetimes naive, no NaN
    (SQLite would store NULL), no optional field present as null, nothing
    unknown, nothing absent. Anything else goes to :func:`_encode_row_escaping`.
    """
    values = list(map(doc.get, _COLUMNS))
    signature = tuple(map(type, values))
    plan = _PLANS.get(signature, False)
    if plan is False:
        plan = _PLANS[signature] = _plan_for(signature)
    if plan is not None:
        float_getter, key_count = plan
        keys = doc.keys()
        if (
            len(doc) - ("_id" in doc) == key_count
            and keys <= _FAST_KEYS
            and _REQUIRED_KEYS <= keys
            and (float_getter is None or sum(float_getter(values)) == sum(float_getter(values)))
        ):
            for i in _DATETIME_POSITIONS:
                value = values[i]
                if value is not None:
                    if value.tzinfo is not None:
                        return _encode_row_escaping(doc, id_text)
                    values[i] = _datetime_text(value)
            values.insert(0, id_text)
            values.append(None)
            return tuple(values)
    return _encode_row_escaping(doc, id_text)


def _encode_row_escaping(doc: dict, id_text: str) -> tuple:
    values: list[Any] = [id_text]
    extra: dict[str, Any] | None = None
    absent: list[str] | None = None
    for name in _COLUMNS:
        if name not in doc:
            values.append(None)
            if name in _ALWAYS:
                absent = absent or []
                absent.append(name)
            continue
        value = doc[name]
        kind = _KIND[name]
        if kind == "datetime":
            if type(value) is datetime and value.tzinfo is None:
                values.append(_datetime_text(value))
                continue
            if value is None:
                values.append(None)
                continue
        elif type(value) in _PLAIN_TYPES and value == value and (value is not None or name in _ALWAYS):
            values.append(value)
            continue
        elif type(value).__name__ == "Int64" and type(value).__module__ == "bson.int64":
            # The number in the column, as MongoDB compares it (Int64(1) == 1 == 1.0 in its
            # indexes and queries); the type in extra, which wins on read.
            values.append(int(value))
            extra = extra or {}
            extra[name] = value
            continue
        values.append(None)
        extra = extra or {}
        extra[name] = value
    for name in doc:
        if name not in _KIND and name != "_id":
            extra = extra or {}
            extra[name] = doc[name]
    if absent:
        extra = extra or {}
        extra[_ABSENT] = absent
    values.append(None if extra is None else _dumps(extra))
    return tuple(values)


_OPTIONAL_COLUMNS = tuple(name for name in _COLUMNS if name not in _ALWAYS)
_DATETIME_COLUMNS = tuple(name for name in _COLUMNS if _KIND[name] == "datetime")


@lru_cache(maxsize=256)  # rows written by one upsert share their timestamps
def _parse_datetime_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


def parse_stored_datetime(text: str) -> datetime:
    """A datetime column's text (naive UTC, as the store writes it) back to a datetime."""
    return _parse_datetime_text(text)


def _decode_row(row: tuple) -> dict:
    """The document of a row (``_id``, columns…, extra): the inverse of :func:`_encode_row`."""
    doc: dict[str, Any] = {"_id": _decode_id(row[0])}
    doc.update(zip(_COLUMNS, row[1:-1], strict=True))
    for name in _OPTIONAL_COLUMNS:  # NULL in an optional column means the field is absent
        if doc[name] is None:
            del doc[name]
    for name in _DATETIME_COLUMNS:
        if doc[name] is not None:
            doc[name] = _parse_datetime_text(doc[name])
    if row[-1] is not None:
        extra = _loads(row[-1])
        for name in extra.pop(_ABSENT, ()):
            doc.pop(name, None)
        doc.update(extra)
    return doc


def _missing_store_message(path: Path, mode: str) -> str:
    folder = "" if path.parent.exists() else f" (nor does its folder {path.parent})"
    why = ("commands that only read never create a store" if mode == READ
           else "this command changes an existing store and never creates one")
    return f"SQLite store {path} does not exist{folder}: {why}; check the path (tacn sync creates a store)"


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection that also works in a read-only folder.

    ``mode=ro`` first (it sees a live writer's WAL). In a folder where SQLite cannot
    create the WAL index files, ``immutable=1``: nobody can be writing there either.
    """
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") not in ("SQLITE_CANTOPEN", "SQLITE_READONLY") or os.access(
            path.parent, os.W_OK
        ):
            raise
        conn.close()
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)


def sqlite_path_from_url(url: str) -> Path:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///~/x.db``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise UsageError(f"bad SQLite store URL {url!r}: expected sqlite:///PATH (sqlite:////abs/path for absolute)")
    return Path(os.path.expanduser(url[len(prefix):]))


class SQLiteStore:
    kind = "sqlite"
    # Set by the store lock while held (tacn.pipelines.lock): called before every write batch.
    write_guard: Callable[[], None] | None = None

    def _check_guard(self) -> None:
        if self.write_guard is not None:
            self.write_guard()

    @contextmanager
    def _write_transaction(self, what: str):
        """One write batch: the lock checked, BEGIN IMMEDIATE … COMMIT; any failure (Ctrl-C and
        SIGTERM included) rolls the whole batch back and leaves the connection usable."""
        self._check_guard()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            yield
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise StoreError(f"SQLite {what} failed in {self.path}: {exc}") from exc
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def __init__(self, path: Path | str, *, mode: str = CREATE):
        """Open the store at ``path``; ``mode`` is READ, WRITE (both need an existing file) or CREATE."""
        if mode not in OPEN_MODES:
            raise ValueError(f"unknown open mode {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.created = False  # this call created the file
        self._bulk_loading = False
        self.display_url = f"sqlite:///{self.path}"
        if self.path.exists() and self.path.is_dir():
            raise StoreUnavailable(f"cannot open SQLite store {self.path}: it is a directory")
        if mode != CREATE and not self.path.exists():
            raise StoreMissing(_missing_store_message(self.path, mode), self.display_url)
        try:
            if mode == READ:
                self.conn = _connect_read_only(self.path)
                self._check_tacn_store(require_table=True)
                self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                self.conn.execute("PRAGMA cache_size = -65536")  # as the writers: scans of large stores stay fast
                return
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.created = True
            self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._check_tacn_store(require_table=False)
            # Larger pages: fewer B-tree splits in the five B-trees every insert touches
            # (measured ~8% faster on 1M-row upserts). Only takes effect on a new file.
            self.conn.execute("PRAGMA page_size = 16384")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: index updates of large upserts stay in memory
            self.conn.execute("PRAGMA wal_autocheckpoint = 20000")  # fewer copies of hot index pages
            self._create_schema()
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
                raise StoreUnavailable(f"{self.path} is not a tacn store / corrupted: {exc}") from None
            raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc.strerror or exc}") from None

    def _check_tacn_store(self, *, require_table: bool) -> None:
        """Refuse a foreign SQLite file (tables, none of them ours) rather than read or add to it."""
        tables = [row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if TABLE in tables or (not tables and not require_table):
            return
        held = f"it has the tables {', '.join(sorted(tables))}" if tables else "it is empty"
        raise StoreUnavailable(f"{self.path} is not a tacn store / corrupted: no {TABLE} table ({held})")

    @classmethod
    def from_url(cls, url: str, *, mode: str = CREATE) -> SQLiteStore:
        return cls(sqlite_path_from_url(url), mode=mode)

    # -- schema ---------------------------------------------------------------
    def _create_schema(self) -> None:
        columns = ", ".join(f'"{name}"' for name in _COLUMNS)
        key = ", ".join(KEY_FIELDS)
        self.conn.executescript(
            f"""
            CREATE TABLE IF NOT EXISTS {TABLE} (
                rid INTEGER PRIMARY KEY,
                _id TEXT NOT NULL,
                {columns},
                extra TEXT
            );
            CREATE UNIQUE INDEX IF NOT EXISTS {UNIQUE_INDEX_NAME} ON {TABLE} ({key});
            {"; ".join(SECONDARY_INDEXES.values())};
            CREATE TABLE IF NOT EXISTS {AUX_TABLE} (
                collection TEXT NOT NULL,
                key TEXT NOT NULL,
                doc TEXT NOT NULL,
                PRIMARY KEY (collection, key)
            );
            """
        )
        try:
            self._create_null_companion(UNIQUE_INDEX_NAME, KEY_FIELDS)
        except sqlite3.IntegrityError:
            pass  # records written before tacn knew share a null key: find_duplicate_keys lists them
        except sqlite3.OperationalError:
            pass  # a read-only store (or busy): created by the next run that can write

    def _create_null_companion(self, name: str, fields: Iterable[str]) -> None:
        expressions, where = _null_companion(tuple(fields))
        self.conn.execute(
            f'CREATE UNIQUE INDEX IF NOT EXISTS "{name}{NULL_COMPANION_SUFFIX}" ON {TABLE} ({expressions}) WHERE {where}'
        )

    def _has_index(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone() is not None

    # -- helpers ----------------------------------------------------------------
    def _where(self, flt: RecordFilter | None, extra_sql: str | None = None) -> tuple[str, dict]:
        clauses: list[str] = []
        params: dict[str, Any] = {"latest": latest_allowed_trade_date().isoformat()}
        flt = flt or RecordFilter()
        if flt.data_source is not None:
            clauses.append("data_source = :data_source")
            params["data_source"] = flt.data_source
        if flt.period is not None:
            clauses.append("period = :period")
            params["period"] = flt.period
        if flt.symbols is not None:
            names = []
            for i, symbol in enumerate(flt.symbols):
                params[f"s{i}"] = symbol
                names.append(f":s{i}")
            clauses.append(f"symbol IN ({', '.join(names) or 'NULL'})")
        if flt.start is not None:
            clauses.append("typeof(trade_date) = 'text' AND trade_date >= :start")
            params["start"] = flt.start
        if flt.end is not None:
            clauses.append("typeof(trade_date) = 'text' AND trade_date <= :end")
            params["end"] = flt.end
        if flt.updated_since is not None:
            clauses.append("updated_at >= :updated_since")
            params["updated_since"] = _datetime_text(flt.updated_since)
        if extra_sql:
            clauses.append(extra_sql)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _select_sql(self) -> str:
        columns = ", ".join(f'"{name}"' for name in _COLUMNS)
        return f"SELECT rid, _id, {columns}, extra FROM {TABLE}"

    def _iter_rows(self, where: str, params: dict, batch_size: int) -> Iterator[list[tuple]]:
        """Keyset pagination on rid: no read transaction stays open between batches."""
        last = 0
        while True:
            rows = self._rows_between(where, params, last, None, batch_size)
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    # -- writes -----------------------------------------------------------------
    def upsert(self, docs: Iterable[dict], *, now: datetime | None = None) -> UpsertResult:
        """Insert or replace by the 4-field key; keep created_at; touch nothing unchanged."""
        stamp = now or utc_now()
        columns = ("_id",) + _COLUMNS + ("extra",)
        placeholders = ", ".join("?" for _ in columns)
        compared = [c for c in _COLUMNS if c not in KEY_FIELDS and c not in ("created_at", "updated_at")]
        compared.append("extra")
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in compared) + ", updated_at = excluded.updated_at"
        same = " AND ".join(f'{TABLE}."{c}" IS excluded."{c}"' for c in compared)
        on_conflict = f"DO UPDATE SET {updates} WHERE NOT ({same})"
        sql = (
            f"INSERT INTO {TABLE} ({', '.join(chr(34) + c + chr(34) for c in columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(KEY_FIELDS)}) {on_conflict}"
        )
        if self._has_index(UNIQUE_INDEX_NAME + NULL_COMPANION_SUFFIX):  # a null key field: MongoDB's key
            expressions, where = _null_companion(KEY_FIELDS)
            sql += f" ON CONFLICT ({expressions}) WHERE {where} {on_conflict}"
        result = UpsertResult()
        batch: list[dict] = []

        plain_insert = f"INSERT INTO {TABLE} ({', '.join(chr(34) + c + chr(34) for c in columns)}) VALUES ({placeholders})"

        def flush() -> None:
            self._check_guard()
            rows = [
                _encode_row(doc, id_text)
                for doc, id_text in zip(batch, _new_object_id_hexes(len(batch)), strict=True)
            ]
            before_changes = self.conn.total_changes
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                if self._keys_all_new(rows):
                    # New keys only (the usual incremental sync): a plain insert skips
                    # the conflict handling; a duplicate inside the batch sends us back.
                    try:
                        self.conn.execute("SAVEPOINT plain_insert")
                        self.conn.executemany(plain_insert, rows)
                        self.conn.execute("RELEASE plain_insert")
                        self.conn.execute("COMMIT")
                        result.inserted += len(rows)
                        batch.clear()
                        return
                    except sqlite3.IntegrityError:
                        self.conn.execute("ROLLBACK TO plain_insert")
                        self.conn.execute("RELEASE plain_insert")
                        before_changes = self.conn.total_changes
                before_max = self.conn.execute(f"SELECT ifnull(max(rid), 0) FROM {TABLE}").fetchone()[0]
                self.conn.executemany(sql, rows)
                after_max = self.conn.execute(f"SELECT ifnull(max(rid), 0) FROM {TABLE}").fetchone()[0]
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise StoreError(f"SQLite upsert failed in {self.path}: {exc}") from exc
            except BaseException:  # Ctrl-C/SIGTERM mid-batch: the batch is undone and the connection usable
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            inserted = after_max - before_max  # new rows take max(rid)+1
            written = self.conn.total_changes - before_changes
            result.inserted += inserted
            result.changed += written - inserted
            result.unchanged += len(batch) - written
            batch.clear()

        bulk_load = False
        try:
            for doc in docs:
                stamped = {**doc, "updated_at": stamp}
                stamped.setdefault("created_at", stamp)
                batch.append(stamped)
                if len(batch) >= UPSERT_BATCH:
                    if not bulk_load and not self._bulk_loading and self._max_rid() < UPSERT_BATCH:
                        # A load bigger than the table: rebuild the secondary indexes afterwards.
                        bulk_load = True
                        self._drop_secondary_indexes()
                    flush()
            if batch:
                flush()
        finally:
            if bulk_load:
                self._create_secondary_indexes()
        return result

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Around many upserts into a small table (a big file sync): secondary indexes are
        dropped for the duration and rebuilt once at the end, as one large upsert does."""
        if self._bulk_loading or self._max_rid() >= UPSERT_BATCH:
            yield
            return
        self._bulk_loading = True
        self._drop_secondary_indexes()
        try:
            yield
        finally:
            self._bulk_loading = False
            self._create_secondary_indexes()

    def _max_rid(self) -> int:
        return self.conn.execute(f"SELECT ifnull(max(rid), 0) FROM {TABLE}").fetchone()[0]

    def _drop_secondary_indexes(self) -> None:
        for name in SECONDARY_INDEXES:
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    def _create_secondary_indexes(self) -> None:
        try:
            for sql in SECONDARY_INDEXES.values():
                self.conn.execute(sql)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite could not rebuild an index in {self.path}: {exc}") from exc

    def _keys_all_new(self, rows: list[tuple]) -> bool:
        """True when no key of the batch is stored yet: one index range probe per symbol group."""
        spans: dict[tuple, list[str]] = {}
        for row in rows:
            symbol, trade_date, source, period = (row[i] for i in _KEY_POSITIONS)
            if type(symbol) is not str or type(trade_date) is not str or type(source) is not str or type(period) is not str:
                return False
            span = spans.get((symbol, source, period))
            if span is None:
                spans[(symbol, source, period)] = [trade_date, trade_date]
            elif trade_date < span[0]:
                span[0] = trade_date
            elif trade_date > span[1]:
                span[1] = trade_date
        probe = (
            f"SELECT 1 FROM {TABLE} WHERE symbol = ? AND trade_date BETWEEN ? AND ? "
            "AND data_source = ? AND period = ? LIMIT 1"
        )
        for (symbol, source, period), (low, high) in spans.items():
            if self.conn.execute(probe, (symbol, low, high, source, period)).fetchone():
                return False
        return True

    def delete_by_ids(self, ids: Iterable[Any]) -> int:
        encoded = [_encode_id(i) for i in ids]
        deleted = 0
        with self._write_transaction("delete"):
            for start in range(0, len(encoded), 500):
                chunk = encoded[start : start + 500]
                cur = self.conn.execute(
                    f"DELETE FROM {TABLE} WHERE _id IN ({', '.join('?' for _ in chunk)})", chunk
                )
                deleted += cur.rowcount
        return deleted

    def delete_rows(self, keys: Iterable[tuple[int, str]]) -> int:
        """Delete rows by (rid, stored ``_id`` text), as :class:`RenderedBatch` keys them: each row is found by
        its rowid (no lookup in the ``_id`` index) and deleted only if it still holds that ``_id``."""
        with self._write_transaction("delete"):
            deleted = self.conn.executemany(f"DELETE FROM {TABLE} WHERE rid = ? AND _id = ?", keys).rowcount
        return deleted

    def put_documents(self, docs: Iterable[dict]) -> PutResult:
        """Put documents back exactly, ``_id`` included; present ones are left alone."""
        result = PutResult()
        with self._write_transaction("restore"):
            for doc in docs:
                if "_id" not in doc:
                    raise UsageError("a document to restore has no _id")
                id_text = _encode_id(doc["_id"])
                row = self.conn.execute(f"{self._select_sql()} WHERE _id = ?", (id_text,)).fetchone()
                if row is not None:
                    if same_document(_decode_row(row[1:]), doc):
                        result.already_present += 1
                    else:
                        result.conflicts.append(
                            {"_id": str(doc["_id"]), "reason": "a different document has this _id"}
                        )
                    continue
                try:
                    self.conn.execute(
                        f"INSERT INTO {TABLE} VALUES (NULL, {', '.join('?' for _ in range(len(_COLUMNS) + 2))})",
                        _encode_row(doc, id_text),
                    )
                    result.inserted += 1
                except sqlite3.IntegrityError:
                    result.conflicts.append(
                        {"_id": str(doc["_id"]), "reason": "another document has the same key"}
                    )
        return result

    def replace_documents(self, docs: Iterable[dict]) -> int:
        """Replace documents by ``_id`` with the given full documents (migrations)."""
        replaced = 0
        columns = ", ".join(f'"{c}" = ?' for c in _COLUMNS)
        with self._write_transaction("update"):
            for doc in docs:
                row = _encode_row(doc, _encode_id(doc["_id"]))
                cur = self.conn.execute(f"UPDATE {TABLE} SET {columns}, extra = ? WHERE _id = ?", row[1:] + row[:1])
                replaced += cur.rowcount
        return replaced

    # -- reads ------------------------------------------------------------------
    def iter_documents(self, flt: RecordFilter | None = None, *, batch_size: int = 5_000) -> Iterator[dict]:
        where, params = self._where(flt)
        for rows in self._iter_rows(where, params, batch_size):
            for row in rows:
                yield _decode_row(row[1:])

    @property
    def renders_backup_lines(self) -> bool:
        """Whether ``iter_invalid_trade_date(as_lines=True)`` renders backup lines in C (ADBC installed)."""
        from importlib.util import find_spec

        return find_spec("adbc_driver_sqlite") is not None

    def iter_invalid_trade_date(
        self, flt: RecordFilter | None = None, *, batch_size: int = 5_000, as_lines: bool = False
    ) -> Iterator[dict]:
        """The records with an invalid trade_date, as documents; or, ``as_lines``, as
        :class:`RenderedBatch`es of backup lines (:meth:`iter_invalid_trade_date_lines`)."""
        if as_lines:
            batches = self.iter_invalid_trade_date_lines(flt)
            if batches is not None:
                yield from batches
                return
        where, params = self._where(flt, INVALID_DATE_SQL)
        for rows in self._iter_rows(where, params, batch_size):
            for row in rows:
                yield _decode_row(row[1:])

    def iter_invalid_trade_date_lines(
        self, flt: RecordFilter | None = None, *, batch_size: int = 100_000
    ) -> Iterator[RenderedBatch] | None:
        """The invalid-date records as backup lines, rendered without a Python dict per record.

        Rows holding only plain values are rendered by SQLite and Arrow, in C, to the
        lines :func:`tacn.pipelines.extjson.encode_document` would write for the same
        document, or to lines that decode to exactly the same values (a double is
        written with its shortest exact digits, as Arrow formats it); any other row
        (an ``extra``, a non-ObjectId ``_id``, a value needing escapes, an infinity, a
        datetime before 1970) goes through the decoder and the encoder. None when the
        columnar driver is not installed: the caller then encodes documents.

        The selection is streamed in Arrow batches of at most ``batch_size`` rows
        (:data:`STREAM_BATCH_ROWS`) by reader threads while the caller renders the batch before
        (:meth:`_streamed_batches`); batches in rid order.
        """
        columnar = _ColumnarReader.open(self.path)
        if columnar is None:
            return None
        where, params = self._where(flt, INVALID_DATE_SQL)
        return self._streamed_batches(columnar, self._stream_segments(flt), where, params, batch_size)

    def _stream_segments(self, flt: RecordFilter | None) -> list[tuple[int, int | None]]:
        """The rid ranges (after, up to) read by a thread each: the two halves of the table when the selection
        scans all of it (no filter that an index serves, whose plan a rid range could turn into a scan), so
        that the two halves of the predicate's scan run on two cores; else one."""
        flt = flt or RecordFilter()
        if any(value is not None for value in (flt.symbols, flt.start, flt.end, flt.updated_since)):
            return [(0, None)]
        # two subqueries: SQLite reads min and max off the rowid b-tree only when each is alone
        low, high = self.conn.execute(f"SELECT (SELECT min(rid) FROM {TABLE}), (SELECT max(rid) FROM {TABLE})").fetchone()
        if high is None or high - low < STREAM_SPLIT_MIN_ROWS:
            return [(0, None)]
        middle = low + (high - low) // 2
        return [(0, middle), (middle, None)]

    def _streamed_batches(self, columnar, segments, where, params, batch_size):
        """Render the selection's Arrow batches as reader threads stream them (:class:`ReadAhead`), one query
        per rid segment, the segments in order: the scan and the driver's reads in C overlap the rendering,
        in C too (each releases the GIL). ``columnar``: the first segment's connection; each thread uses and
        closes its own. On Ctrl-C the readers are not waited for (each ends after the batch it is reading:
        the driver cannot cancel a query in flight)."""
        rows = max(1, min(batch_size, STREAM_BATCH_ROWS))
        readers: list[tuple[int, str, ReadAhead]] = []
        with ExitStack() as running:
            for after, upto in segments:
                reader = columnar if not readers else _ColumnarReader.open(self.path)
                if reader is None:
                    raise StoreUnavailable("the columnar driver could not open the store again")
                part = where if upto is None else _and_where(where, f"rid <= {int(upto)}")
                batches = _Closing(reader.stream(_render_sql_streamed(), part, params, after, rows), reader.close)
                readers.append((after, part, running.enter_context(ReadAhead(batches))))
            import pyarrow  # noqa: F401 - imported, with the renderer's kernels, while the threads scan
            import pyarrow.compute  # noqa: F401

            for after, part, batches in readers:
                yield from self._rendered_segment(batches, after, part, params, batch_size)

    def _rendered_segment(self, batches, after, where, params, batch_size):
        """The batches of one streamed query, rendered.

        The driver fixes each column's Arrow type from its first batch, so the query starts with a
        sentinel row holding a value of the expected type in every column (:func:`_render_sql_streamed`):
        a later value of another type is then either converted in a row flagged ``odd`` (which the decoder
        renders) or refused; when refused (text in a number column), the rows after the last batch read go
        through :meth:`_rendered_batches`, which types each column by all of a chunk's values, as before.
        """
        import pyarrow as pa

        last, first, refused = after, True, False
        retyped = None  # a reader of this thread's own for re-reads of a batch by type
        try:
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception:  # noqa: BLE001 - the driver refused a later batch's types: read on by chunks
                    refused = True
                    break
                if first:  # the sentinel row (rid NULL sorts first): never a record
                    first = False
                    if batch.num_rows == 0 or batch.column(0)[0].is_valid:
                        refused = True
                        break
                    batch = batch.slice(1)
                if batch.num_rows == 0:
                    continue
                table = pa.Table.from_batches([batch])
                upto = table.column("rid")[-1].as_py()
                if not _raw_types_hold(table):  # never with the sentinel's types; kept exact if it happens
                    retyped = retyped or _ColumnarReader.open(self.path)
                    table = _read_by_type(retyped, table, where, params, last)
                last = upto
                yield _render_batch(table, self._decoded_rows)
        finally:
            if retyped is not None:
                retyped.close()
        if refused:
            batches.close()
            rest = _ColumnarReader.open(self.path)
            if rest is None:
                raise StoreUnavailable("the columnar driver stopped reading the selection")
            yield from self._rendered_batches(rest, where, params, batch_size, after=last)

    def _rendered_batches(self, columnar, where, params, batch_size, after: int = 0):
        try:
            last = after
            while True:
                table = columnar.query(_render_sql_raw(), where, params, last, batch_size)
                if table.num_rows == 0:
                    return
                # fewer rows than asked: the scan reached the end of the table, and asking again
                # after the last row found would scan the rest of the table a second time
                exhausted = table.num_rows < batch_size
                if not _raw_types_hold(table):  # the driver converted a column: the same rows, split by type
                    table = _read_by_type(columnar, table, where, params, last)
                last = table.column("rid")[-1].as_py()
                yield _render_batch(table, self._decoded_rows)
                if exhausted:
                    return
        finally:
            columnar.close()

    def _decoded_rows(self, rids: list[int]) -> dict[int, dict]:
        found = {}
        for start in range(0, len(rids), 500):
            part = rids[start:start + 500]
            sql = f"{self._select_sql()} WHERE rid IN ({', '.join('?' for _ in part)})"
            for row in self.conn.execute(sql, part):
                found[row[0]] = _decode_row(row[1:])
        return found

    def iter_frames(self, flt: RecordFilter | None = None, *, chunk_size: int = 100_000):
        """Chunks of documents as DataFrames (``_id`` as text); memory stays per chunk.

        Each chunk is read column by column into Arrow, in C (ADBC's SQLite driver),
        when every value of the chunk has its column's type. A chunk holding
        anything else (an int trade_date, text in a price, values in ``extra``) is
        read again row by row by the exact decoder, so bad data is seen as it is
        stored, never coerced; the two paths give identical frames.
        """
        where, params = self._where(flt)
        columnar = _ColumnarReader.open(self.path)
        if columnar is None:  # the driver is not installed: the row decoder for every chunk
            return (_frame_from_rows(rows) for rows in self._iter_rows(where, params, chunk_size))
        # the read starts now, in a worker thread (in C, without the GIL), while the caller prepares
        return self._columnar_frames(columnar, ReadAhead(columnar.tables(where, params, 0, chunk_size)),
                                     where, params, chunk_size)

    def _columnar_frames(self, columnar, tables, where: str, params: dict, size: int):
        """Frames of the tables read ahead; a chunk the driver refused or that holds odd values is read by
        the exact decoder here (this thread owns the store's connection)."""
        try:
            while True:
                for after, table in tables:
                    if table is None:  # refused: the decoder reads the next rows, and the read goes on after them
                        rows = self._rows_between(where, params, after, None, size)
                        if not rows:
                            return
                        yield _frame_from_rows(rows)
                        if len(rows) < size:
                            return
                        tables = ReadAhead(columnar.tables(where, params, rows[-1][0], size))
                        break
                    frame = _frame_from_columnar(table)
                    if frame is None:  # odd values in this chunk: the exact decoder for the same rows
                        rows = self._rows_between(where, params, after, table.column("rid")[-1].as_py(), size)
                        if not rows:
                            return
                        frame = _frame_from_rows(rows)
                    yield frame
                else:
                    return
        finally:
            tables.close()
            columnar.close()

    def _rows_between(self, where: str, params: dict, after: int, upto: int | None, limit: int) -> list[tuple]:
        """Rows after rid ``after``, up to rid ``upto`` (None: the next ``limit`` rows)."""
        upper = "" if upto is None else " AND rid <= :upto"
        sql = f"{self._select_sql()}{_and_where(where, 'rid > :after')}{upper} ORDER BY rid LIMIT :limit"
        return self.conn.execute(sql, {**params, "after": after, "upto": upto, "limit": limit}).fetchall()

    def count(self, flt: RecordFilter | None = None) -> int:
        where, params = self._where(flt)
        return self.conn.execute(f"SELECT count(*) FROM {TABLE}{where}", params).fetchone()[0]

    def count_invalid_trade_date(self, flt: RecordFilter | None = None) -> int:
        where, params = self._where(flt, INVALID_DATE_SQL)
        return self.conn.execute(f"SELECT count(*) FROM {TABLE}{where}", params).fetchone()[0]

    def latest_valid_trade_dates(
        self, data_source: str, period: str = "daily", symbols: Iterable[str] | None = None,
        *, end: str | None = None,
    ) -> dict[str, str]:
        flt = RecordFilter(
            data_source=data_source, period=period, symbols=tuple(symbols) if symbols is not None else None, end=end
        )
        where, params = self._where(flt, VALID_DATE_SQL)
        rows = self.conn.execute(
            f"SELECT symbol, max(trade_date) FROM {TABLE}{where} GROUP BY symbol", params
        ).fetchall()
        return {symbol: last for symbol, last in rows if isinstance(symbol, str)}

    def stats(self) -> StoreStats:
        params = {"latest": latest_allowed_trade_date().isoformat()}
        rows = self.conn.execute(
            f"""SELECT data_source, period, count(*), count(DISTINCT symbol),
                       min(CASE WHEN {VALID_DATE_SQL} THEN trade_date END),
                       max(CASE WHEN {VALID_DATE_SQL} THEN trade_date END),
                       sum(CASE WHEN {VALID_DATE_SQL} THEN 0 ELSE 1 END)
                FROM {TABLE} GROUP BY data_source, period ORDER BY data_source, period""",
            params,
        ).fetchall()
        groups = [GroupStats(*row) for row in rows]
        symbols = self.conn.execute(f"SELECT count(DISTINCT symbol) FROM {TABLE}").fetchone()[0]
        return StoreStats(
            store=self.display_url,
            total_records=sum(g.records for g in groups),
            total_symbols=symbols,
            invalid_trade_date=sum(g.invalid_trade_date for g in groups),
            groups=groups,
        )

    # -- maintenance (migrations) -------------------------------------------------
    def _column(self, name: str) -> str:
        if name not in _KIND:
            raise UsageError(f"unknown field {name!r}: SQLite indexes and queries use the document's known fields")
        return f'"{name}"'

    def list_indexes(self) -> list[dict]:
        """Indexes on the quotes table: name, fields (in order), unique."""
        out = []
        for _, name, unique, *_ in self.conn.execute(f"PRAGMA index_list({TABLE})").fetchall():
            if name.endswith(NULL_COMPANION_SUFFIX):  # part of the unique index it accompanies
                continue
            fields = [row[2] for row in self.conn.execute(f'PRAGMA index_info("{name}")').fetchall()]
            out.append({"name": name, "fields": fields, "unique": bool(unique)})
        return sorted(out, key=lambda i: i["name"])

    def create_unique_index(self, name: str, fields: Iterable[str]) -> None:
        """A unique index as MongoDB's would be: with its companion for null key fields."""
        fields = tuple(fields)
        columns = ", ".join(self._column(f) for f in fields)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{name}" ON {TABLE} ({columns})')
            self._create_null_companion(name, fields)
            self.conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            self.conn.execute("ROLLBACK")
            raise StoreError(f"cannot create unique index {name}: duplicates exist ({exc})") from None

    def drop_index(self, name: str) -> None:
        self.conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        self.conn.execute(f'DROP INDEX IF EXISTS "{name}{NULL_COMPANION_SUFFIX}"')

    def find_duplicate_keys(self, fields: Iterable[str], *, limit: int = 20) -> list[dict]:
        """Groups of records sharing ``fields`` that a unique index on them would reject.

        As in MongoDB, a null and a missing field are one value (null): such keys collide too.
        """
        fields = list(fields)
        for f in fields:
            self._column(f)
        keys = ", ".join(_null_aware_sql(f) for f in fields)
        rows = self.conn.execute(
            f"SELECT {keys}, count(*), group_concat(_id, ' ') FROM {TABLE} "
            f"GROUP BY {keys} HAVING count(*) > 1 ORDER BY {keys} LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {"key": {f: _decode_null_aware(v) for f, v in zip(fields, row[: len(fields)], strict=True)},
             "count": row[len(fields)], "ids": [_decode_id(text) for text in row[-1].split(" ")]}
            for row in rows
        ]

    def iter_missing_field(self, name: str, *, batch_size: int = 5_000) -> Iterator[dict]:
        """Documents in which ``name`` is absent or null (older deployments lacked ``period``)."""
        column = self._column(name)
        where = f" WHERE {column} IS NULL AND (extra IS NULL OR json_extract(extra, '$.{name}') IS NULL)"
        for rows in self._iter_rows(where, {}, batch_size):
            for row in rows:
                yield _decode_row(row[1:])

    # -- auxiliary collections (run records, migrations, …) ---------------------
    def aux_upsert(self, collection: str, key: str, doc: dict) -> None:
        self.conn.execute(
            f"INSERT INTO {AUX_TABLE} (collection, key, doc) VALUES (?, ?, ?) "
            "ON CONFLICT (collection, key) DO UPDATE SET doc = excluded.doc",
            (collection, str(key), _dumps(doc)),
        )

    def aux_find(self, collection: str) -> list[dict]:
        rows = self.conn.execute(
            f"SELECT doc FROM {AUX_TABLE} WHERE collection = ? ORDER BY key", (collection,)
        ).fetchall()
        return [_loads(row[0]) for row in rows]

    def aux_delete(self, collection: str, key: str) -> None:
        self.conn.execute(f"DELETE FROM {AUX_TABLE} WHERE collection = ? AND key = ?", (collection, str(key)))

    def run_lock(self, name: str = "sync", purpose: str = ""):
        """One run at a time: an flock on a file beside the database's real path (released when the holder dies)."""
        from tacn.pipelines.lock import FileLock, lock_path_for

        return FileLock(lock_path_for(self.path, name), name, purpose)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- reading documents as frames -----------------------------------------------------------


def _frame_from_rows(rows: list[tuple]):
    """The exact decoder: rows (rid, _id, columns…, extra) → a frame, bad values as they are stored."""
    import numpy as np
    import pandas as pd

    # Column by column: numeric columns go straight to float arrays (None -> NaN);
    # a column holding anything else (bad data) keeps its values as objects.
    columns = zip(*rows, strict=True)
    next(columns)  # rid
    data: dict[str, Any] = {"_id": pd.Series(next(columns), dtype="str")}
    for name in _COLUMNS:
        values = next(columns)
        kind = _KIND[name]
        if kind == "float":
            try:
                data[name] = np.array(values, dtype=float)
                continue
            except (TypeError, ValueError):
                pass
        elif kind == "datetime":
            data[name] = pd.to_datetime(pd.Series(values, dtype=object), format=_DATETIME_FMT, errors="coerce")
            continue
        data[name] = pd.Series(values)
    frame = pd.DataFrame(data)
    escaped = [(i, row) for i, row in enumerate(rows) if row[-1] is not None]
    if escaped:
        frame = frame.astype(object)
        for i, row in escaped:
            doc = _decode_row(row[1:])
            for name in frame.columns:
                if name != "_id":
                    frame.at[i, name] = doc.get(name)
            for name, value in doc.items():
                if name not in frame.columns:
                    frame[name] = None
                    frame[name] = frame[name].astype(object)
                if name not in _KIND and name != "_id":
                    frame.at[i, name] = value
    return frame


def _columnar_select() -> str:
    """The columns as stored, plus ``odd``: the row holds an ``extra``, or a text column holds a value
    that is not text (ADBC would turn an integer there into its digits, silently).

    "Text or null" is tested by SQLite's ordering of values of different types (numbers < text <
    blobs): ``coalesce(x, '') >= '' AND coalesce(x, '') < x''``, cheaper per row than ``typeof`` and
    the same answer (``coalesce`` has no affinity, so nothing is converted before comparing).
    Number columns need no test here: ADBC gives a column of integers and reals as doubles, as the row
    decoder does, and a column holding text comes back as text, which :func:`_frame_from_columnar`
    sends to the decoder.
    """
    columns = ", ".join(f'"{name}"' for name in _COLUMNS)
    return f"SELECT rid, _id, {columns}, (extra IS NOT NULL OR NOT ({_texts_or_null_sql()})) AS odd FROM {TABLE}"


def _texts_or_null_sql() -> str:
    """SQL true when every text column holds text or null (:func:`_columnar_select` says why it is written so)."""
    return " AND ".join(f"coalesce(\"{name}\", '') >= '' AND coalesce(\"{name}\", '') < x''"
                        for name in _COLUMNS if _KIND[name] in ("str", "datetime"))


class _Closing:
    """An iterator that calls ``finish()`` once it is closed, after closing ``items`` (:class:`ReadAhead` closes
    its items in its worker thread: the driver's connection is then closed by the thread that used it)."""

    def __init__(self, items: Iterator, finish: Callable[[], None]) -> None:
        self._items, self._finish = items, finish

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        return next(self._items)

    def close(self) -> None:
        try:
            self._items.close()
        finally:
            self._finish()


class _ColumnarReader:
    """A chunk of the table into Arrow through ADBC's SQLite driver (Apache Arrow project), in C.

    The driver's low-level API: its DB-API module imports pandas and pyarrow.dataset (a second on
    this machine), which a clean does not otherwise need.
    """

    def __init__(self, database, connection):
        self._database = database
        self._connection = connection

    @classmethod
    def open(cls, path: Path) -> _ColumnarReader | None:
        try:
            import adbc_driver_manager
            import adbc_driver_sqlite
        except ImportError:
            return None
        try:
            database = adbc_driver_sqlite.connect(f"file:{path}?mode=ro")
            return cls(database, adbc_driver_manager.AdbcConnection(database))
        except Exception:  # noqa: BLE001 - any driver trouble: the row decoder reads instead
            return None

    @staticmethod
    def _sql(select: str, where: str, params: dict, after: int, size: int | None) -> str:
        """The rows after rid ``after`` in rid order, at most ``size`` (parameters as SQL literals)."""
        import re

        named = f"{select}{_and_where(where, 'rid > :after')} ORDER BY rid" + ("" if size is None else " LIMIT :limit")
        values = {**params, "after": after, "limit": size}
        return re.sub(r":([A-Za-z_][A-Za-z0-9_]*)", lambda m: _sql_literal(values[m.group(1)]), named)

    def query(self, select: str, where: str, params: dict, after: int, size: int):
        """The next ``size`` rows after rid ``after`` as one Arrow table (parameters as SQL literals)."""
        import adbc_driver_manager
        import pyarrow as pa

        statement = adbc_driver_manager.AdbcStatement(self._connection)
        try:
            # one Arrow batch per chunk: the driver infers each column's type from all of its values
            statement.set_options(**{"adbc.sqlite.query.batch_rows": str(max(size, 1))})
            statement.set_sql_query(self._sql(select, where, params, after, size))
            stream, _ = statement.execute_query()
            return pa.RecordBatchReader._import_from_c(stream.address).read_all()
        finally:
            statement.close()

    def tables(self, where: str, params: dict, after: int, size: int):
        """(after, table) of each chunk of ``size`` rows, in rid order, from rid ``after`` on; (after, None)
        when the driver refused a chunk's types (then the reader stops: the caller reads those rows itself
        and starts again after them). A chunk with fewer rows than asked is the last: another query after
        its last row would scan the rest of the table again."""
        select = _columnar_select()
        while True:
            try:
                table = self.query(select, where, params, after, size)
            except Exception:  # noqa: BLE001 - the driver refused the chunk's types: the decoder reads it
                yield after, None
                return
            if table.num_rows == 0:
                return
            yield after, table
            if table.num_rows < size:
                return
            after = table.column("rid")[-1].as_py()

    def stream(self, select: str, where: str, params: dict, after: int, rows: int):
        """Every row after rid ``after``, one query, as Arrow record batches of ``rows`` rows. The driver
        fixes each column's type from the first batch and refuses (raises) a later value it cannot convert."""
        import adbc_driver_manager

        statement = adbc_driver_manager.AdbcStatement(self._connection)
        try:
            statement.set_options(**{"adbc.sqlite.query.batch_rows": str(max(rows, 1))})
            statement.set_sql_query(self._sql(select, where, params, after, None))
            stream, _ = statement.execute_query()  # in C, the GIL released: the scan up to the first batch
            import pyarrow as pa

            reader = pa.RecordBatchReader._import_from_c(stream.address)
            try:
                while True:
                    try:
                        batch = reader.read_next_batch()  # in C, the GIL released
                    except StopIteration:
                        return
                    yield batch
            finally:
                reader.close()
        finally:
            statement.close()

    def close(self) -> None:
        self._connection.close()
        self._database.close()


def _and_where(where: str, condition: str) -> str:
    """``where`` (``""`` or ``" WHERE …"``, as :meth:`SQLiteStore._where` gives it) with one more condition."""
    return f"{where}{' AND ' if where else ' WHERE '}{condition}"


def _sql_literal(value: Any) -> str:
    """A filter value as an SQL literal (the values come from tacn's own RecordFilter)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"unexpected SQL parameter {value!r}")
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _frame_from_columnar(table):
    """The frame of a chunk read by :class:`_ColumnarReader`, or None when the chunk needs the exact decoder:
    a row flagged odd, or a number column the driver did not read as numbers (text or bytes in it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    numeric = (pa.float64(), pa.int64(), pa.null())
    if pc.max(table.column("odd")).as_py() or any(
        table.column(name).type not in numeric for name in _COLUMNS if _KIND[name] in ("float", "int")
    ):
        return None
    return _frame_from_arrow(table)


def _frame_from_arrow(table):
    """The frame :func:`_frame_from_rows` gives for the same rows (dtypes included)."""
    import pandas as pd
    import pyarrow as pa

    data: dict[str, Any] = {"_id": pd.Series(table.column("_id").to_pandas(), dtype="str")}
    rows = table.num_rows
    for name in _COLUMNS:
        values = table.column(name)
        kind = _KIND[name]
        if values.null_count == rows and kind == "datetime":
            data[name] = pd.to_datetime(pd.Series([None] * rows, dtype=object), format=_DATETIME_FMT, errors="coerce")
        elif values.null_count == rows and kind != "float":
            data[name] = pd.Series([None] * rows, dtype=object)  # as pd.Series([None, …]) gives
        elif kind == "float":
            data[name] = values.to_numpy(zero_copy_only=False).astype("float64") if values.null_count == 0 \
                else values.cast(pa.float64()).to_pandas().to_numpy(dtype="float64", na_value=float("nan"))
        elif kind == "datetime":
            data[name] = pd.to_datetime(values.to_pandas(), format=_DATETIME_FMT, errors="coerce")
        else:
            data[name] = values.to_pandas()
    return pd.DataFrame(data)


# -- backup lines rendered in C ----------------------------------------------------------------


@dataclass
class RenderedBatch:
    """Backup lines of a batch of records (in rid order), and what clean's summary needs of them.

    ``data``: the lines, one bytes object (``count`` newline-terminated lines: JSON escapes every
    newline inside a value);
    ``summary``: an Arrow table of the records rendered in C, one row each: symbol, data_source, period
    (text or null), td_type (trade_date's SQLite type: text, integer or null), td (its text) and stamp
    (updated_at, else created_at, as stored), for a columnar summary;
    ``decoded``: (rid, document) of the others, decoded and encoded one by one;
    ``firsts``: (rid, sample document) of the first few records rendered in C;
    ``rids``, ``ids``: the rid and the stored ``_id`` text of every line, in line order (the keys of
    :meth:`SQLiteStore.delete_rows`), as two lists rather than a tuple per record.
    """

    data: bytes
    count: int
    summary: Any
    decoded: list[tuple[int, dict]]
    firsts: list[tuple[int, dict]]
    rids: list[int]
    ids: list[str]

    @property
    def lines(self) -> list[bytes]:
        return self.data.splitlines(keepends=True)


_TEXT_KEYS = ("symbol", "data_source", "period")  # summary keys: text or null on the C path
_SAMPLED = 10  # first records of a batch kept for samples (clean shows 10)


@lru_cache(maxsize=1)
def _render_sql() -> str:
    """Every column split by SQLite type (text, integer, real: each an Arrow column of one type), and
    ``odd``: a value of a type the C path does not render (the rest is checked on the Arrow side)."""
    parts = ["rid", "_id"]
    odd = ["extra IS NOT NULL"]
    for name in _COLUMNS:
        c = f'"{name}"'
        kind = _KIND[name]
        kinds = {"str": ("text", "integer"), "datetime": ("text",), "float": ("integer", "real"),
                 "int": ("integer", "real")}[kind]
        if name in _TEXT_KEYS:
            kinds = ("text",)  # summary keys: text or null on the C path
        for sqlite_type in kinds:
            parts.append(f"CASE WHEN typeof({c}) = '{sqlite_type}' THEN {c} END AS \"{name}__{sqlite_type[0]}\"")
        odd.append(f"typeof({c}) NOT IN ({', '.join(repr(t) for t in kinds)}, 'null')")
    parts.append("typeof(trade_date) AS td_type")
    parts.append(f"({' OR '.join(odd)}) AS odd")
    return f"SELECT {', '.join(parts)} FROM {TABLE}"


@lru_cache(maxsize=64)
def _text_scalar(text: str):
    """An Arrow string scalar made from buffers: pyarrow's pa.scalar/pa.array import pandas (0.4 s)."""
    import struct

    import pyarrow as pa

    data = text.encode("utf-8")
    array = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(struct.pack("<ii", 0, len(data))),
                                                   pa.py_buffer(data)])
    return array[0]


def _arrow_double_pieces(values):
    """Doubles as JSON numbers that read back as the same double: (Arrow's shortest text, the suffix that
    keeps an integral one a float: ``".0"`` after ``5``, else ``""``), two arrays for the line's join."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(values.cast(pa.float64()), pa.string())
    # plain substring scans, not a regex: Arrow writes "." and a lowercase "e" (never inf/nan here: odd)
    integral = pc.invert(pc.or_(pc.match_substring(text, "."), pc.match_substring(text, "e")))
    return text, pc.if_else(integral, _text_scalar(".0"), _text_scalar(""))


def _arrow_double_text(values):
    """Doubles as JSON numbers that read back as the same double (and as a float: ``5`` → ``5.0``)."""
    return _join(*_arrow_double_pieces(values))


@lru_cache(maxsize=1)
def _raw_parts() -> tuple[str, ...]:
    """The result columns of :func:`_render_sql_raw`, each ``expression AS "name"`` (or a bare column)."""
    parts = ["rid", "_id"]
    odd = ["extra IS NOT NULL", f"NOT ({_texts_or_null_sql()})"]
    for name in _COLUMNS:
        c = f'"{name}"'
        kind = _KIND[name]
        if kind in ("str", "datetime"):
            parts.append(f'{c} AS "{name}__t"')
        elif kind == "float":
            parts.append(f'{c} AS "{name}__r"')
            odd.append(f"typeof({c}) NOT IN ('real', 'null')")
        else:
            parts.append(f'{c} AS "{name}__i"')
            odd.append(f"typeof({c}) NOT IN ('integer', 'null')")
    parts.append('typeof(trade_date) AS "td_type"')
    parts.append(f"({' OR '.join(odd)}) AS \"odd\"")
    return tuple(parts)


@lru_cache(maxsize=1)
def _render_sql_raw() -> str:
    """The fast read for rendering: the columns as stored, under the names :func:`_render_sql` gives them
    for the type each column should hold, and ``odd`` for a row holding anything else. A batch whose
    Arrow types show that the driver converted a column (text in a number column) is read again with
    :func:`_render_sql`."""
    return f"SELECT {', '.join(_raw_parts())} FROM {TABLE}"


STREAM_BATCH_ROWS = 8_192  # rows per Arrow batch streamed: the first one is rendered sooner; 3 ms per batch more
STREAM_SPLIT_MIN_ROWS = 200_000  # a smaller table is read by one thread


@lru_cache(maxsize=1)
def _render_sql_streamed() -> str:
    """:func:`_render_sql_raw` behind a sentinel row (rid NULL, so first in rid order) that holds a value of
    the expected type in every column: the driver types each column from the first batch, and a column
    whose first rows are all NULL would otherwise be typed int64 and refuse every later real or text."""
    sentinel = {"rid": "NULL", "_id": "''", "td_type": "'text'", "odd": "1"}
    literal = {"t": "''", "r": "0.0", "i": "0"}
    names = [part.rsplit(" AS ", 1)[-1].strip('"') if " AS " in part else part for part in _raw_parts()]
    values = [sentinel.get(name) or literal[name.rsplit("__", 1)[1]] for name in names]
    first = ", ".join(f'{value} AS "{name}"' for value, name in zip(values, names, strict=True))
    return f"SELECT {first} UNION ALL {_render_sql_raw()}"


def _read_by_type(reader: _ColumnarReader, table, where: str, params: dict, after: int):
    """The rows of ``table`` (rids after ``after``) read again with every column split by SQLite type
    (:func:`_render_sql`): for a raw read whose types the driver did not keep (:func:`_raw_types_hold`)."""
    upto = table.column("rid")[-1].as_py()
    return reader.query(_render_sql(), _and_where(where, f"rid <= {upto}"), params, after, table.num_rows)


def _raw_types_hold(table) -> bool:
    """The driver kept every column of a raw read in its one expected Arrow type (else it converted one)."""
    import pyarrow as pa

    expected = {"t": (pa.string(), pa.large_string()), "r": (pa.float64(),), "i": (pa.int64(),)}
    for name in table.column_names:
        if "__" in name and name.rsplit("__", 1)[1] in expected:
            column = table.column(name)
            if column.null_count < table.num_rows and column.type not in expected[name.rsplit("__", 1)[1]]:
                return False
    return True


def _as_strings(table, name: str):
    """A text column of the query (all-null columns come back typed int64 from the driver)."""
    import pyarrow as pa

    values = table.column(name)
    return pa.nulls(table.num_rows, pa.string()) if values.null_count == table.num_rows else values.cast(pa.string())


def _null_as_true(flags):
    """Null flags as true, without ``pc.fill_null(x, True)``: a Python scalar there imports pandas (0.4 s)."""
    import pyarrow.compute as pc

    return pc.or_kleene(flags, pc.is_null(flags))


def _null_as_false(flags):
    import pyarrow.compute as pc

    return pc.and_kleene(flags, pc.is_valid(flags))


def _join(*pieces):
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*pieces, _text_scalar(""))


_OID_RE = "^[0-9a-f]{24}$"
_ESCAPED_RE = r'["\\\x00-\x1f]'  # what a JSON encoder escapes: a quote, a backslash, control characters
_STORED_DATETIME_RE = r"^(19[7-9][0-9]|[2-9][0-9]{3})-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{6}$"


def _datetime_json(text):
    """A stored datetime text as the encoder writes it: $date (milliseconds) or $tacnDatetime (microseconds)."""
    import pyarrow.compute as pc

    def part(start, stop):
        return pc.utf8_slice_codeunits(text, start, stop)

    day = _join(part(0, 10), _text_scalar("T"), part(11, 19))
    whole_second = pc.equal(part(20, 26), _text_scalar("000000"))
    millisecond = pc.equal(part(23, 26), _text_scalar("000"))
    return pc.if_else(
        whole_second, _join(_text_scalar('{"$date":"'), day, _text_scalar('Z"}')),
        pc.if_else(millisecond, _join(_text_scalar('{"$date":"'), day, _text_scalar("."), part(20, 23),
                                      _text_scalar('Z"}')),
                   _join(_text_scalar('{"$tacnDatetime":"'), day, _text_scalar("."), part(20, 26),
                         _text_scalar('"}'))))


def _by_distinct_value(text, render):
    """``render`` applied to the distinct values of ``text`` only, then spread back over the rows: a batch
    holds few distinct timestamps (one sync run writes one), so this skips most of the string work."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    encoded = pc.dictionary_encode(text)  # nulls stay null in the indices, so in the result
    return pc.take(render(encoded.dictionary), encoded.indices)


def _lines_data(lines) -> bytes:
    """The joined lines of an Arrow string array as one bytes object (no Python object per line)."""
    import numpy as np
    import pyarrow as pa

    joined = pa.concat_arrays(lines.chunks) if isinstance(lines, pa.ChunkedArray) else lines
    if joined.type not in (pa.string(), pa.large_string()):
        joined = joined.cast(pa.large_string())
    _, offset_buffer, data_buffer = joined.buffers()
    width = np.int32 if joined.type == pa.string() else np.int64
    offsets = np.frombuffer(offset_buffer, dtype=width)[joined.offset: joined.offset + len(joined) + 1]
    start, stop = int(offsets[0]), int(offsets[-1])
    return data_buffer.slice(start, stop - start).to_pybytes()  # one copy, of the lines only


@lru_cache(maxsize=1)
def _render_memory_pool():
    """jemalloc for the renderer's many short-lived arrays when pyarrow has it, else None (the default pool).

    Measured on a batch of 16,384 records: 0.25 CPU s per 82,631 records with jemalloc against 0.32-0.40 with
    pyarrow's default mimalloc, which hands the freed blocks of one batch back to the system and faults them
    in again for the next.
    """
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except (NotImplementedError, AttributeError):
        return None


def _render_batch(table, decode_rows) -> RenderedBatch:
    """:func:`_render_table` with the renderer's memory pool as pyarrow's default meanwhile."""
    import pyarrow as pa

    pool = _render_memory_pool()
    if pool is None:
        return _render_table(table, decode_rows)
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        return _render_table(table, decode_rows)
    finally:
        pa.set_memory_pool(previous)


def _render_table(table, decode_rows) -> RenderedBatch:
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = table.num_rows
    ids = table.column("_id").cast(pa.string())
    odd = pc.or_(pc.cast(table.column("odd"), pa.bool_()), pc.invert(pc.match_substring_regex(ids, pattern=_OID_RE)))
    pieces: list = ['{"_id":{"$oid":"', ids, '"}']  # constant text as str, merged into scalars below
    for name in _COLUMNS:
        kind = _KIND[name]
        key = f',"{name}":'
        text = _as_strings(table, f"{name}__t") if f"{name}__t" in table.column_names else None
        has_text = text is not None and text.null_count < rows
        doubles = table.column(f"{name}__r") if f"{name}__r" in table.column_names else None
        typed = [(c, table.column(c)) for c in (f"{name}__i", f"{name}__r")
                 if c in table.column_names and table.column(c).null_count < rows]
        if doubles is not None and doubles.type == pa.float64():  # ±Infinity: $numberDouble, by the encoder
            odd = pc.or_kleene(odd, _null_as_false(pc.invert(pc.is_finite(doubles))))
        if has_text and kind == "datetime":
            shaped = _by_distinct_value(text, lambda v: pc.match_substring_regex(v, pattern=_STORED_DATETIME_RE))
            odd = pc.or_kleene(odd, pc.invert(_null_as_true(shaped)))
        elif has_text:
            odd = pc.or_kleene(odd, _null_as_false(pc.match_substring_regex(text, pattern=_ESCAPED_RE)))
            if text.null_count == 0 and name in _ALWAYS:  # the common case: the quotes join the constant text
                pieces += [key + '"', text, '"']
                continue
        elif name in _ALWAYS and doubles is not None and doubles.null_count == 0:  # every value a double
            pieces += [key, *_arrow_double_pieces(doubles)]
            continue
        value = pa.nulls(rows, pa.string())
        if has_text:
            value = _by_distinct_value(text, _datetime_json) if kind == "datetime" else \
                _join(_text_scalar('"'), text, _text_scalar('"'))
        for column_name, column in typed:
            value = pc.coalesce(value, pc.cast(column, pa.string()) if column_name.endswith("__i")
                                else _arrow_double_text(column))
        if name in _ALWAYS:
            pieces += [key, pc.fill_null(value, _text_scalar("null"))]
        else:  # an optional field is written only when present
            pieces.append(pc.fill_null(_join(_text_scalar(key), value), _text_scalar("")))
    pieces.append("}\n")
    merged: list = []
    for piece in pieces:  # adjacent constant text as one scalar: fewer pieces for the join to walk
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    lines = _join(*(_text_scalar(p) if isinstance(p, str) else p for p in merged))
    odd_mask = _null_as_true(odd)
    odd_positions = _int_list(pc.indices_nonzero(odd_mask))
    rids = _int_list(table.column("rid"))
    trade_dates = _as_strings(table, "trade_date__t")
    if "trade_date__i" in table.column_names:
        trade_dates = pc.coalesce(trade_dates, pc.cast(table.column("trade_date__i"), pa.string()))
    stamps = pc.coalesce(_as_strings(table, "updated_at__t"), _as_strings(table, "created_at__t"))
    texts = {name: _as_strings(table, f"{name}__t") for name in _TEXT_KEYS}
    summary = pa.table({**texts, "td_type": table.column("td_type").cast(pa.string()), "td": trade_dates,
                        "stamp": stamps}).filter(pc.invert(odd_mask))
    firsts = []
    odd_set, plain = set(odd_positions), []  # the first rows rendered in C
    for position in range(rows):
        if len(plain) == _SAMPLED:
            break
        if position not in odd_set:
            plain.append(position)
    for position in plain:
        sample = {"_id": ids[position].as_py(), "trade_date": stored_trade_date(
            table.column("td_type")[position].as_py(), trade_dates[position].as_py())}
        for name in _TEXT_KEYS:
            sample[name] = texts[name][position].as_py()
        firsts.append((rids[position], sample))
    if not odd_positions:
        return RenderedBatch(_lines_data(lines), rows, summary, [], firsts, rids, _text_list(ids))
    from tacn.pipelines.extjson import encode_document

    docs = decode_rows([rids[p] for p in odd_positions])
    out = [line.encode("utf-8") if line is not None else b"" for line in lines.to_pylist()]
    decoded = []
    for position in odd_positions:
        doc = docs[rids[position]]
        out[position] = (encode_document(doc) + "\n").encode("utf-8")
        decoded.append((rids[position], doc))
    return RenderedBatch(b"".join(out), rows, summary, decoded, firsts, rids, _text_list(ids))


def _int_list(values) -> list[int]:
    """An integer Arrow array without nulls as a list of ints, read from its buffer: ``to_pylist`` makes an
    Arrow scalar per value (0.025 s per 82,631 with pyarrow 25), ``to_numpy`` imports pandas."""
    import numpy as np
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        return values.to_pylist()
    values = values.cast(pa.int64())
    if len(values) == 0:
        return []
    return np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset: values.offset + len(values)].tolist()


def _text_list(values) -> list[str]:
    """A string Arrow array without nulls as a list of str, read from its buffers (``to_pylist``: 0.06-0.09 s
    per 82,631 ``_id``s with pyarrow 25): the text decoded once and cut at the offsets when it is ASCII."""
    import numpy as np
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count or values.type != pa.string() or len(values) == 0:
        return values.to_pylist()
    _, offset_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int32)[values.offset: values.offset + len(values) + 1]
    start, stop = int(offsets[0]), int(offsets[-1])
    data = data_buffer.slice(start, stop - start).to_pybytes() if stop > start else b""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return values.to_pylist()
    if len(text) != len(data):  # not ASCII: character offsets differ from byte offsets
        return values.to_pylist()
    bounds = (offsets - start).tolist()
    return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def stored_trade_date(kind: str, text: str | None):
    """A stored trade_date from its SQLite type and text (the C path renders text, integer and null)."""
    if kind == "integer":
        return int(text)
    return None if kind == "null" else text
