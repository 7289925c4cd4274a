"""The application's MongoDB, through pymongo: collection ``stock_daily_quotes``.

Writes follow the application (replace keyed on the 4-field key, unordered
bulk writes) with two differences operators asked for: ``created_at`` of an
existing document is kept, and a document whose content did not change is not
written at all, so a second identical sync changes nothing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from tacn.pipelines.errors import StoreError, StoreMissing, StoreUnavailable, UsageError
from tacn.pipelines.stores.base import (
    CREATE,
    GroupStats,
    PutResult,
    RecordFilter,
    StoreStats,
    UpsertResult,
    comparable,
    mask_url,
    same_document,
)
from tacn.validators.dates import (
    FIRST_TRADE_DATE_ISO,
    MONGO_ISO_DATE_START,
    MONGO_LONGER_THAN_A_DATE,
    latest_allowed_trade_date,
)
from tacn.validators.records import COLLECTION, DEFAULT_DATABASE, KEY_FIELDS, UNIQUE_INDEX_NAME, utc_now

UPSERT_BATCH = 500
# How long one request may wait for its answer: longer than the slowest single reply
# tacn asks for (a $group over the whole collection in `stats`, a cursor batch behind a
# long scan: FerretDB v1 scans ~10k documents a second), short enough that a server
# which stopped answering ends the command. A URL's socketTimeoutMS/timeoutMS wins.
SOCKET_TIMEOUT_MS = 120_000
DUPLICATE_KEY = 11000
# ids per delete command. FerretDB v1 scans the whole collection for each command and
# tests every document against the whole $in list (linear), so a chunk of 10,000 ids
# took over 120 s on 200,000 documents there; 1,000 keeps each command short everywhere.
# (clean deletes most of its selection on FerretDB in one guarded pass instead:
# MongoStore.delete_unchanged_selection; these chunks take the rest.)
DELETE_CHUNK = 1_000

# (key pattern, name, unique): the application's historical data service creates
# these. Existing indexes with the same keys are accepted under any name.
INDEXES: tuple[tuple[list[tuple[str, int]], str, bool], ...] = (
    ([(name, 1) for name in KEY_FIELDS], UNIQUE_INDEX_NAME, True),
    ([("symbol", 1)], "symbol_index", False),
    ([("trade_date", -1)], "trade_date_index", False),
    ([("symbol", 1), ("trade_date", -1)], "symbol_date_index", False),
)


def valid_date_query(latest: str | None = None) -> dict:
    """A MongoDB condition on trade_date that only valid ISO dates satisfy (tacn.validators.dates' rule).

    The same in Python ``re`` (mongomock), PCRE (MongoDB) and RE2 (FerretDB): the shape
    from the start with ``[0-9]``, and the end anchored by "no eleventh character"
    rather than by ``$``, whose meaning before a final newline differs between them.
    """
    latest = latest or latest_allowed_trade_date().isoformat()
    return {
        "$type": "string",
        "$regex": MONGO_ISO_DATE_START,
        "$not": _longer_than_a_date(),
        "$gte": FIRST_TRADE_DATE_ISO,
        "$lte": latest,
    }


def _longer_than_a_date():
    # A regex object under $not: the form every MongoDB version, FerretDB and mongomock take.
    from bson.regex import Regex

    return Regex(MONGO_LONGER_THAN_A_DATE)


def invalid_date_query(latest: str | None = None) -> dict:
    """The documents whose trade_date is not valid (missing included), as a top-level condition.

    ``$nor`` rather than ``{"trade_date": {"$not": …}}``: the valid condition holds a
    ``$not`` itself, and a ``$not`` inside a ``$not`` is not accepted everywhere.
    """
    return {"$nor": [{"trade_date": valid_date_query(latest)}]}


def _connection_errors():
    from pymongo import errors

    return (errors.ServerSelectionTimeoutError, errors.ConnectionFailure, errors.ConfigurationError)


def _server_lost_is_unavailable(method):
    """A dropped connection or a server that stopped answering, in any operation, is StoreUnavailable (exit 3).

    Generators are wrapped too: their reads happen while the caller iterates.
    """
    def lost(store: MongoStore, exc: Exception) -> StoreUnavailable:
        from pymongo.errors import NetworkTimeout

        why = brief_driver_message(str(exc))[:300]
        if isinstance(exc, NetworkTimeout) and store.answer_limit:
            why += f" (no answer within {store.answer_limit})"
        return StoreUnavailable(f"lost MongoDB at {store.display_url}: {why}")

    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def iterate(self, *args, **kwargs):
            try:
                yield from method(self, *args, **kwargs)
            except _connection_errors() as exc:
                raise lost(self, exc) from None

        return iterate

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except _connection_errors() as exc:
            raise lost(self, exc) from None

    return call


def _doc_key(doc: dict) -> tuple:
    return tuple(doc.get(name) for name in KEY_FIELDS)


def _key_filter(doc: dict) -> dict:
    """The query for the documents with ``doc``'s key (null matches a missing field, as in the index)."""
    return dict(zip(KEY_FIELDS, _doc_key(doc), strict=True))


def _key_part(value: Any) -> tuple:
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):  # MongoDB compares numbers by value: 1 == 1.0 == Int64(1)
        return ("number", value)
    return ("other", repr(value))


def _hashable_key(doc: dict) -> tuple:
    return tuple(_key_part(v) for v in _doc_key(doc))


class MongoStore:
    kind = "mongodb"
    # Set by the store lock while held (tacn.pipelines.lock): called before every write batch.
    write_guard: Callable[[], None] | None = None

    def _check_guard(self) -> None:
        if self.write_guard is not None:
            self.write_guard()

    def __init__(self, client: Any, database: str, display_url: str):
        self.client = client
        self.db = client[database]
        self.collection = self.db[COLLECTION]
        self.database_name = database
        self.display_url = display_url
        self.created = False  # the quotes collection did not exist when opened
        self._indexes_checked = False
        self.answer_limit: str | None = None  # e.g. "socketTimeoutMS=120000", for messages
        self.one_pass_deletes: bool | None = None  # see deletes_in_one_pass; tests set it
        self.arrow_reads: bool | None = None  # see why_not_arrow; tests set it
        self.last_read = None  # mongo_arrow.ReadStats of the last iter_frames: which path each chunk took
        self._ferretdb: bool | None = None

    @classmethod
    def from_url(
        cls, url: str, *, database: str | None = None, timeout_ms: int = 5_000, mode: str = CREATE
    ) -> MongoStore:
        """Connect and ping. ``timeout_ms`` bounds finding and connecting to the server.

        Every request then waits at most ``socketTimeoutMS`` for its answer (default
        SOCKET_TIMEOUT_MS; a ``socketTimeoutMS`` or ``timeoutMS`` in the URL wins), so a
        server that stops answering ends the command with exit 3 instead of a hang.
        """
        import pymongo
        from pymongo import uri_parser

        display = mask_url(url)
        try:
            parsed = uri_parser.parse_uri(url, validate=True, warn=False) if url.startswith("mongodb://") else {}
        except (pymongo.errors.InvalidURI, pymongo.errors.ConfigurationError, ValueError) as exc:
            raise UsageError(f"bad MongoDB URL {display}: {_scrub(str(exc), url)}") from None
        db_name = database or (parsed.get("database") if parsed else None) or DEFAULT_DATABASE
        url_options = {name.lower() for name in (parsed.get("options") or {})}
        limits = {} if url_options & {"sockettimeoutms", "timeoutms"} else {"socketTimeoutMS": SOCKET_TIMEOUT_MS}
        try:
            client = pymongo.MongoClient(
                url,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                tz_aware=False,
                appname="tacn",
                **limits,
            )
            client.admin.command("ping")
        except _connection_errors() as exc:
            raise StoreUnavailable(
                f"cannot reach MongoDB at {display}: {_scrub(brief_driver_message(str(exc)), url)[:300]}"
            ) from None
        except pymongo.errors.OperationFailure as exc:
            raise StoreUnavailable(
                f"MongoDB at {display} refused: {_scrub(brief_driver_message(str(exc)), url)[:300]}"
            ) from None
        opened = cls(client, db_name, f"{display} (database {db_name})")
        if client.options.timeout is not None:
            opened.answer_limit = f"timeoutMS={client.options.timeout * 1000:.0f}"
        elif client.options.pool_options.socket_timeout is not None:
            opened.answer_limit = f"socketTimeoutMS={client.options.pool_options.socket_timeout * 1000:.0f}"
        opened._check_quotes_collection(mode)
        return opened

    def _check_quotes_collection(self, mode: str) -> None:
        """A database without the quotes collection is a misspelt name unless the command puts data in."""
        from pymongo.errors import PyMongoError

        try:
            names = sorted(self.db.list_collection_names())
        except PyMongoError as exc:
            raise StoreUnavailable(
                f"cannot list the collections of {self.database_name!r}: {brief_driver_message(str(exc))[:300]}"
            ) from None
        self.created = COLLECTION not in names
        if self.created and mode != CREATE:
            held = f"it has: {', '.join(names)}" if names else "it has no collections"
            raise StoreMissing(
                f"MongoDB database {self.database_name!r} has no {COLLECTION} collection ({held}); "
                "check --database or the URL's database (tacn sync creates the collection)",
                self.display_url,
            )

    # -- indexes ----------------------------------------------------------------
    @_server_lost_is_unavailable
    def ensure_indexes(self) -> None:
        """Create the application's indexes that are missing (matched by keys, not names)."""
        if self._indexes_checked:
            return
        from pymongo.errors import OperationFailure

        existing = {tuple(info["key"]) for info in self.collection.index_information().values()}
        for keys, name, unique in INDEXES:
            if tuple(keys) in existing:
                continue
            try:
                self.collection.create_index(keys, name=name, unique=unique)
            except OperationFailure as exc:
                raise StoreError(
                    f"cannot create index {name} on {COLLECTION}: {exc}. "
                    "Run `tacn migrate status` to see whether a legacy index or duplicates are in the way."
                ) from None
        self._indexes_checked = True

    def _filter(self, flt: RecordFilter | None, extra: dict | None = None) -> dict:
        flt = flt or RecordFilter()
        query: dict[str, Any] = {}
        if flt.data_source is not None:
            query["data_source"] = flt.data_source
        if flt.period is not None:
            query["period"] = flt.period
        if flt.symbols is not None:
            query["symbol"] = {"$in": list(flt.symbols)}
        date_range: dict[str, Any] = {}
        if flt.start is not None:
            date_range["$gte"] = flt.start
        if flt.end is not None:
            date_range["$lte"] = flt.end
        if date_range:
            query["trade_date"] = {"$type": "string", **date_range}
        if flt.updated_since is not None:
            query["updated_at"] = {"$gte": flt.updated_since}
        if extra:
            query = {"$and": [query, extra]} if query else extra
        return query

    def _invalid_filter(self, flt: RecordFilter | None) -> dict:
        return self._filter(flt, invalid_date_query())

    # -- writes -----------------------------------------------------------------
    @_server_lost_is_unavailable
    def upsert(self, docs: Iterable[dict], *, now: datetime | None = None) -> UpsertResult:
        self.ensure_indexes()
        stamp = now or utc_now()
        result = UpsertResult()
        batch: list[dict] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= UPSERT_BATCH:
                result += self._upsert_batch(batch, stamp)
                batch = []
        if batch:
            result += self._upsert_batch(batch, stamp)
        return result

    def _upsert_batch(self, batch: list[dict], stamp: datetime) -> UpsertResult:
        """Insert the keys that are new, then compare-and-replace the ones that already exist.

        Most syncs bring new days, so the batch is first inserted as it is (unordered):
        the unique key index turns every existing key into a duplicate-key error, and only
        those documents are looked up and replaced when their content changed. This is the
        application's replace-with-upsert, without one keyed lookup per document (which
        FerretDB v1 serves with a scan of the whole collection each time).
        """
        from pymongo import ReplaceOne
        from pymongo.errors import BulkWriteError, PyMongoError

        self._check_guard()
        result = UpsertResult()
        latest: dict[tuple, dict] = {}
        for doc in batch:  # the last of duplicate keys in a batch wins
            key = _hashable_key(doc)
            if key in latest:
                result.unchanged += 1
            latest[key] = doc
        try:
            fresh = [{**{k: v for k, v in doc.items() if k != "_id"}, "updated_at": stamp} for doc in latest.values()]
            for doc in fresh:
                doc.setdefault("created_at", stamp)
            # A null or missing key part goes the lookup way: FerretDB's unique index (SQLite)
            # does not count a missing field and null as the same key, as MongoDB does.
            whole = [doc for doc in fresh if all(doc.get(name) is not None for name in KEY_FIELDS)]
            present = self._insert_new(whole, result) if whole else []
            present += [doc for doc in fresh if any(doc.get(name) is None for name in KEY_FIELDS)]
            if not present:
                return result
            existing = {_hashable_key(doc): doc for doc in self.collection.find(_keys_query(present))}
            ops = []
            for doc in present:
                new = {k: v for k, v in doc.items() if k != "_id"}
                old = existing.get(_hashable_key(doc))
                if old is None:  # deleted since the insert, or refused by another unique index
                    ops.append(ReplaceOne(_key_filter(doc), new, upsert=True))
                elif comparable(old) == comparable(new):
                    result.unchanged += 1
                else:
                    new["created_at"] = old.get("created_at", stamp)
                    ops.append(ReplaceOne({"_id": old["_id"]}, new))
            if ops:
                written = self.collection.bulk_write(ops, ordered=False)
                result.inserted += written.upserted_count
                result.changed += written.modified_count
        except BulkWriteError as exc:
            raise StoreError(f"MongoDB upsert failed: {_first_write_error(exc)}") from None
        except _connection_errors():
            raise  # reported by _server_lost_is_unavailable
        except PyMongoError as exc:
            raise StoreError(f"MongoDB upsert failed: {str(exc)[:300]}") from None
        return result

    def _insert_new(self, docs: list[dict], result: UpsertResult) -> list[dict]:
        """Insert ``docs`` unordered; return those whose key already exists (duplicate-key errors)."""
        from pymongo.errors import BulkWriteError

        try:
            result.inserted += len(self.collection.insert_many(docs, ordered=False).inserted_ids)
            return []
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors) or exc.details.get("writeConcernErrors"):
                raise
            result.inserted += exc.details.get("nInserted", 0)
            return [docs[e["index"]] for e in errors]

    def bulk_load(self):
        """Nothing to prepare: MongoDB keeps its indexes during large loads."""
        return nullcontext()

    @_server_lost_is_unavailable
    def delete_by_ids(self, ids: Iterable[Any]) -> int:
        ids = list(ids)
        deleted = 0
        for start in range(0, len(ids), DELETE_CHUNK):
            self._check_guard()
            chunk = ids[start : start + DELETE_CHUNK]
            deleted += self.collection.delete_many({"_id": {"$in": chunk}}).deleted_count
        return deleted

    @_server_lost_is_unavailable
    def deletes_in_one_pass(self) -> bool:
        """Whether clean deletes its selection in one guarded pass rather than in chunks of ``_id``s.

        Measured: FerretDB v1 (SQLite) reads and decodes every document of the collection for
        every command whose filter is not exactly ``{_id: value}``, and even a delete by one
        ``_id`` cost as much as such a pass (a find by one ``_id`` did not), so each chunk of ids
        costs a whole pass; one pass is the cheapest delete there (the server says it is
        FerretDB in ``buildInfo``). On MongoDB a chunk of ids is
        index lookups, a cost that follows the selection, where a pass would examine every
        document in the backup's ``_id`` span: a small bad set in a big collection is cheaper by
        ids, so MongoDB (and mongomock, which stands in for it) keeps the chunks.
        """
        if self.one_pass_deletes is None:
            self.one_pass_deletes = self.server_is_ferretdb()
        return self.one_pass_deletes

    def server_is_ferretdb(self) -> bool:
        """Whether the server says it is FerretDB (``ferretdbVersion`` in ``buildInfo``); asked once."""
        if self._ferretdb is None:
            from pymongo.errors import OperationFailure

            try:
                info = self.client.admin.command("buildInfo")
            except (OperationFailure, NotImplementedError):  # a server or mongomock without it
                info = {}
            self._ferretdb = "ferretdbVersion" in info
        return self._ferretdb

    def why_not_arrow(self) -> str | None:
        """Why iter_frames does not read through the typed aggregate into Arrow, or None when it does (with
        the extra installed). ``TACN_MONGO_ARROW``: ``auto`` (the default), ``on`` or ``off``. Auto: not on FerretDB,
        which computes the 28 ``$type`` fields in Go for every document and so reads about 1.9x slower
        that way than by a plain ``find`` (measured, docs/stores-and-mongodb.md); on MongoDB, yes."""
        if self.arrow_reads is not None:
            return None if self.arrow_reads else "turned off for this store"
        import os

        choice = os.environ.get("TACN_MONGO_ARROW", "auto").strip().lower()
        if choice not in ("auto", "on", "off"):
            raise UsageError(f"TACN_MONGO_ARROW must be auto, on or off, not {choice[:20]!r}")
        if choice == "off":
            return "TACN_MONGO_ARROW=off"
        if choice == "auto" and self.server_is_ferretdb():
            return "the server is FerretDB, where the typed aggregate is slower than a find (TACN_MONGO_ARROW=on forces it)"
        return None

    @_server_lost_is_unavailable
    def delete_unchanged_selection(
        self, flt: RecordFilter | None, *, first_id: Any, last_id: Any, stamped_before: datetime
    ) -> int:
        """Delete, in one command, the invalid-date selection (``flt``) among the documents that cannot
        have changed since a backup of it was read: ``_id`` within [first_id, last_id] and ``updated_at``
        a date before ``stamped_before``. Returns how many were deleted.

        The guard comes first: FerretDB tests a filter's conditions in order and stops at the first
        that fails, so documents outside the span never reach the date rule's regular expressions.
        The date rule is computed again here: a later "tomorrow" only makes the selection smaller.
        """
        self._check_guard()
        query = {"_id": {"$gte": first_id, "$lte": last_id}, "updated_at": {"$lt": stamped_before},
                 "$and": [self._invalid_filter(flt)]}
        return self.collection.delete_many(query).deleted_count

    @_server_lost_is_unavailable
    def delete_unchanged_by_ids(self, items: Iterable[tuple[Any, Any]]) -> int:
        """Delete the documents of these (``_id``, ``updated_at`` as backed up) pairs that are unchanged:
        each ``updated_at`` still its backed-up value (None: absent or null) and trade_date still
        invalid. DELETE_CHUNK ids per command, one ``$or`` branch per distinct stamp (a sync stamps
        a whole batch alike): FerretDB's cost stays linear in the ids, MongoDB's stays index lookups."""
        items = list(items)
        deleted = 0
        invalid = invalid_date_query()
        for start in range(0, len(items), DELETE_CHUNK):
            self._check_guard()
            by_stamp: dict[tuple, tuple[Any, list]] = {}
            for _id, stamp in items[start : start + DELETE_CHUNK]:
                by_stamp.setdefault(_key_part(stamp), (stamp, []))[1].append(_id)
            # {"$in": [stamp]}: a backed-up value is matched as a value, never read as an operator
            query = {"$or": [{"_id": {"$in": ids}, "updated_at": {"$in": [stamp]}} for stamp, ids in by_stamp.values()],
                     "$and": [invalid]}
            deleted += self.collection.delete_many(query).deleted_count
        return deleted

    @_server_lost_is_unavailable
    def put_documents(self, docs: Iterable[dict]) -> PutResult:
        from pymongo.errors import DuplicateKeyError

        result = PutResult()
        self._check_guard()
        indexes = self.collection.index_information()
        if set(indexes) <= {"_id_"}:
            # A new collection (restore into an empty database): the application's indexes
            # first, as a first sync would create them, so a key twin is a clash here too.
            self.ensure_indexes()
            indexes = self.collection.index_information()
        key_is_unique = any(info.get("unique") and tuple(k for k, _ in info["key"]) == tuple(KEY_FIELDS)
                            for info in indexes.values())
        for doc in docs:
            if "_id" not in doc:
                raise UsageError("a document to restore has no _id")
            current = self.collection.find_one({"_id": doc["_id"]})
            if current is not None:
                if same_document(current, doc):
                    result.already_present += 1
                else:
                    result.conflicts.append({"_id": str(doc["_id"]), "reason": "a different document has this _id"})
                continue
            if key_is_unique and any(doc.get(name) is None for name in KEY_FIELDS) and self.collection.find_one(
                _key_filter(doc), {"_id": 1}
            ) is not None:  # FerretDB's unique index lets a null and a missing key part twin in
                result.conflicts.append({"_id": str(doc["_id"]), "reason": "another document has the same key"})
                continue
            try:
                self.collection.insert_one(doc)
                result.inserted += 1
            except DuplicateKeyError:
                result.conflicts.append({"_id": str(doc["_id"]), "reason": "another document has the same key"})
        return result

    @_server_lost_is_unavailable
    def replace_documents(self, docs: Iterable[dict]) -> int:
        replaced = 0
        self._check_guard()
        for doc in docs:
            replaced += self.collection.replace_one({"_id": doc["_id"]}, doc).modified_count
        return replaced

    # -- reads ------------------------------------------------------------------
    @_server_lost_is_unavailable
    def iter_documents(self, flt: RecordFilter | None = None, *, batch_size: int = 5_000) -> Iterator[dict]:
        yield from self.collection.find(self._filter(flt), batch_size=batch_size).sort("_id", 1)

    @_server_lost_is_unavailable
    def iter_invalid_trade_date(
        self, flt: RecordFilter | None = None, *, batch_size: int = 5_000
    ) -> Iterator[dict]:
        yield from self.collection.find(self._invalid_filter(flt), batch_size=batch_size).sort("_id", 1)

    @_server_lost_is_unavailable
    def iter_frames(self, flt: RecordFilter | None = None, *, chunk_size: int = 100_000):
        """Chunks of documents as frames, every field and type as stored.

        With the ``mongo-arrow`` extra, chunks are decoded into Arrow where that is exact and
        by pymongo where not, from one typed aggregate (tacn.pipelines.stores.mongo_arrow);
        ``last_read`` says which path each chunk took. Without it, or when the server refuses
        the aggregate, one plain ``find``.
        """
        from tacn.pipelines.stores import mongo_arrow

        query, batch = self._filter(flt), min(chunk_size, 10_000)
        batches, stats = self._typed_batches(query, batch)
        self.last_read = stats
        if batches is not None:
            context_class, codec = mongo_arrow.arrow_context_class(), self.collection.codec_options
            for raw, count in mongo_arrow.raw_chunks(batches, chunk_size):
                yield mongo_arrow.chunk_frame(raw, count, context_class, codec, stats)
            return
        chunk: list[dict] = []
        for doc in self.collection.find(query, batch_size=batch):
            chunk.append(doc)
            if len(chunk) >= chunk_size:
                stats.took("pymongo", len(chunk))
                yield mongo_arrow.documents_frame(chunk)
                chunk = []
        if chunk:
            stats.took("pymongo", len(chunk))
            yield mongo_arrow.documents_frame(chunk)

    def _typed_batches(self, query: dict, batch: int):
        """(raw BSON batches of the typed aggregate, stats), or (None, stats saying why the plain find reads)."""
        from pymongo.errors import OperationFailure

        from tacn.pipelines.stores.mongo_arrow import ReadStats, arrow_context_class, typed_pipeline

        why_not = self.why_not_arrow()
        if why_not is None and arrow_context_class() is None:
            why_not = "pymongoarrow is not installed (the mongo-arrow extra)"
        if why_not is None:
            try:  # the command runs here: a server without $addFields or $type refuses it before any chunk
                return self.collection.aggregate_raw_batches(typed_pipeline(query), batchSize=batch), ReadStats("arrow")
            except NotImplementedError:  # mongomock
                why_not = "the client has no raw batches"
            except OperationFailure as exc:
                why_not = f"the server refused the typed aggregate: {brief_driver_message(str(exc))[:200]}"
        return None, ReadStats("pymongo", why_not)

    @_server_lost_is_unavailable
    def count(self, flt: RecordFilter | None = None) -> int:
        return self.collection.count_documents(self._filter(flt))

    @_server_lost_is_unavailable
    def count_invalid_trade_date(self, flt: RecordFilter | None = None) -> int:
        return self.collection.count_documents(self._invalid_filter(flt))

    @_server_lost_is_unavailable
    def latest_valid_trade_dates(
        self, data_source: str, period: str = "daily", symbols: Iterable[str] | None = None,
        *, end: str | None = None,
    ) -> dict[str, str]:
        flt = RecordFilter(
            data_source=data_source, period=period, symbols=tuple(symbols) if symbols is not None else None, end=end
        )
        from pymongo.errors import OperationFailure

        match = self._filter(flt, {"trade_date": valid_date_query()})
        pipeline = [{"$match": match}, {"$group": {"_id": "$symbol", "last": {"$max": "$trade_date"}}}]
        try:
            return {row["_id"]: row["last"] for row in self.collection.aggregate(pipeline)}
        except OperationFailure as exc:
            if not _not_implemented(exc):
                raise
        # FerretDB v1 has no $max accumulator: one pass over the matching dates instead
        latest: dict[str, str] = {}
        for doc in self.collection.find(match, {"_id": 0, "symbol": 1, "trade_date": 1}, batch_size=10_000):
            symbol, day = doc.get("symbol"), doc["trade_date"]
            if day > latest.get(symbol, ""):
                latest[symbol] = day
        return latest

    @_server_lost_is_unavailable
    def stats(self) -> StoreStats:
        valid = valid_date_query()
        groups: dict[tuple, GroupStats] = {}
        pipeline = [
            {"$group": {"_id": {"data_source": "$data_source", "period": "$period"}, "records": {"$sum": 1}}},
        ]
        for row in self.collection.aggregate(pipeline):
            ds, period = row["_id"].get("data_source"), row["_id"].get("period")
            flt = {"data_source": ds, "period": period}
            symbols = len(self.collection.distinct("symbol", flt))
            first = self.collection.find_one({**flt, "trade_date": valid}, sort=[("trade_date", 1)])
            last = self.collection.find_one({**flt, "trade_date": valid}, sort=[("trade_date", -1)])
            invalid = self.collection.count_documents({"$and": [flt, invalid_date_query()]})
            groups[(str(ds), str(period))] = GroupStats(
                ds,
                period,
                row["records"],
                symbols,
                first["trade_date"] if first else None,
                last["trade_date"] if last else None,
                invalid,
            )
        ordered = [groups[k] for k in sorted(groups)]
        return StoreStats(
            store=self.display_url,
            total_records=sum(g.records for g in ordered),
            total_symbols=len(self.collection.distinct("symbol")),
            invalid_trade_date=sum(g.invalid_trade_date for g in ordered),
            groups=ordered,
        )

    # -- maintenance (migrations) -------------------------------------------------
    @_server_lost_is_unavailable
    def list_indexes(self) -> list[dict]:
        """Indexes on the quotes collection (``_id_`` included): name, fields (in order), unique."""
        return sorted(
            ({"name": name, "fields": [key for key, _ in info["key"]], "unique": bool(info.get("unique"))}
             for name, info in self.collection.index_information().items()),
            key=lambda i: i["name"],
        )

    @_server_lost_is_unavailable
    def create_unique_index(self, name: str, fields: Iterable[str]) -> None:
        from pymongo.errors import OperationFailure

        try:
            self.collection.create_index([(f, 1) for f in fields], name=name, unique=True)
        except OperationFailure as exc:
            raise StoreError(f"cannot create unique index {name}: {str(exc)[:300]}") from None
        self._indexes_checked = False

    @_server_lost_is_unavailable
    def drop_index(self, name: str) -> None:
        from pymongo.errors import OperationFailure

        try:
            self.collection.drop_index(name)
        except OperationFailure as exc:
            if "not found" not in str(exc).lower():
                raise StoreError(f"cannot drop index {name}: {str(exc)[:300]}") from None
        self._indexes_checked = False

    @_server_lost_is_unavailable
    def find_duplicate_keys(self, fields: Iterable[str], *, limit: int = 20) -> list[dict]:
        """Groups of documents sharing ``fields`` (missing counts as null, as in a unique index)."""
        from pymongo.errors import OperationFailure

        fields = list(fields)
        pipeline = [
            {"$group": {"_id": {f: {"$ifNull": [f"${f}", None]} for f in fields},
                        "count": {"$sum": 1}, "ids": {"$push": "$_id"}}},
            {"$match": {"count": {"$gt": 1}}},
            {"$sort": {f"_id.{f}": 1 for f in fields}},
            {"$limit": limit},
        ]
        try:
            return [
                {"key": {f: row["_id"].get(f) for f in fields}, "count": row["count"], "ids": row["ids"]}
                for row in self.collection.aggregate(pipeline, allowDiskUse=True)
            ]
        except OperationFailure as exc:
            if not _not_implemented(exc):
                raise
        # FerretDB v1 has neither $ifNull nor $push: group the keys here, in one pass
        groups: dict[tuple, list] = {}
        values: dict[tuple, tuple] = {}
        projection = dict.fromkeys(fields, 1)
        for doc in self.collection.find({}, projection, batch_size=10_000).sort("_id", 1):
            key = tuple(_index_value(doc.get(f)) for f in fields)
            groups.setdefault(key, []).append(doc["_id"])
            values.setdefault(key, tuple(doc.get(f) for f in fields))
        duplicated = sorted((key for key, ids in groups.items() if len(ids) > 1), key=_bson_order)
        return [
            {"key": dict(zip(fields, values[key], strict=True)), "count": len(groups[key]), "ids": groups[key]}
            for key in duplicated[:limit]
        ]

    @_server_lost_is_unavailable
    def iter_missing_field(self, name: str, *, batch_size: int = 5_000) -> Iterator[dict]:
        """Documents in which ``name`` is absent or null (older deployments lacked ``period``)."""
        yield from self.collection.find({name: None}, batch_size=batch_size).sort("_id", 1)

    # -- auxiliary collections ----------------------------------------------------
    @_server_lost_is_unavailable
    def aux_upsert(self, collection: str, key: str, doc: dict) -> None:
        self.db[collection].replace_one({"_id": key}, {**doc, "_id": key}, upsert=True)

    @_server_lost_is_unavailable
    def aux_find(self, collection: str) -> list[dict]:
        return [
            {k: v for k, v in doc.items() if k != "_id"}
            for doc in self.db[collection].find().sort("_id", 1)
        ]

    @_server_lost_is_unavailable
    def aux_delete(self, collection: str, key: str) -> None:
        self.db[collection].delete_one({"_id": key})

    def run_lock(self, name: str = "sync", purpose: str = ""):
        """One run at a time: a lease document in ``tacn_locks``, renewed while held."""
        from tacn.pipelines.stores.mongo_lock import MongoLock

        return MongoLock(self.db, name, purpose)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> MongoStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _keys_query(docs: list[dict]) -> dict:
    """A query for the documents with these keys (and possibly a few more, told apart by the caller).

    One ``$or`` branch per symbol or per trade_date, whichever is fewer, rather than one per
    key: MongoDB serves each branch from the key index, and FerretDB v1, which evaluates
    the query on every document, pays per branch.
    """
    symbol, trade_date, *rest = KEY_FIELDS

    def grouped(outer: str, inner: str) -> dict[tuple, tuple[Any, dict]]:
        groups: dict[tuple, tuple[Any, dict]] = {}  # values of any type: hashed by _key_part
        for doc in docs:
            value, other = doc.get(outer), doc.get(inner)
            groups.setdefault(_key_part(value), (value, {}))[1].setdefault(_key_part(other), other)
        return groups

    by_symbol, by_date = grouped(symbol, trade_date), grouped(trade_date, symbol)
    outer, inner, groups = (symbol, trade_date, by_symbol) if len(by_symbol) <= len(by_date) else (
        trade_date, symbol, by_date)
    query: dict[str, Any] = {
        "$or": [{outer: value, inner: {"$in": list(others.values())}} for value, others in groups.values()]
    }
    for name in rest:
        query[name] = {"$in": list({_key_part(doc.get(name)): doc.get(name) for doc in docs}.values())}
    return query


def _not_implemented(exc) -> bool:
    """The server lacks a command, stage or operator (code 238; FerretDB v1 for $max, $push, $ifNull)."""
    return exc.code == 238


def _index_value(value: Any) -> Any:
    """A hashable stand-in that is equal where a unique index sees equal values (1 == 1.0, missing == null)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, str | bytes) or value is None:
        return value
    return ("other", repr(value))


def _bson_order(key: tuple) -> tuple:
    """Sort keys made by :func:`_index_value` as MongoDB orders types: null, numbers, strings, others."""
    def rank(value: Any) -> tuple:
        if value is None:
            return (0, 0)
        if isinstance(value, tuple) and value[0] == "number":
            return (1, value[1])
        if isinstance(value, str):
            return (2, value)
        return (3, repr(value))

    return tuple(rank(v) for v in key)


def _first_write_error(exc) -> str:
    errors = exc.details.get("writeErrors") or exc.details.get("writeConcernErrors") or [{}]
    return f"{errors[0].get('errmsg', exc)} (code {errors[0].get('code')})"[:300]


def brief_driver_message(text: str) -> str:
    """A pymongo error without the topology description it appends (often kilobytes)."""
    for tail in (" (configured timeouts", ", Timeout:", ", Topology Description:"):
        text = text.split(tail, 1)[0]
    return text


def _scrub(message: str, url: str) -> str:
    """A driver message without the URL's password or secret options, wherever they appear."""
    from tacn.pipelines.config.secrets import register_url_secrets, scrub

    register_url_secrets(url)
    return scrub(message)
