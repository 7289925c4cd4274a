"""MongoDB's Arrow read path (pymongoarrow, the mongo-arrow extra) gives the plain pymongo read's frames exactly.

On FerretDB, the real wire-protocol server: mongomock has no raw batches and no typed
aggregate, and must fall back. FerretDB v1 cannot store NaN, ±inf or Decimal128 (the insert
drops the connection or is refused) and stores -0.0 as 0.0: those values are compared on
mongomock only, where every chunk reads the pymongo way.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from bson import Decimal128, Int64, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tacn.pipelines.stores import mongo_arrow
from tacn.pipelines.stores.base import RecordFilter
from tacn.validators.records import FIELDS
from tests.conftest import close_test_store, open_test_store
from tests.test_validate import STAMP, counts, good_docs, one_bad_record_per_rule, options

pytest.importorskip("pymongoarrow", reason="the mongo-arrow extra is not installed")


@pytest.fixture(scope="module")
def ferret(request):
    opened = open_test_store("ferretdb", request)
    opened.arrow_reads = True  # on FerretDB the automatic choice is the plain find (slower there): forced here
    yield opened
    close_test_store(opened)


@pytest.fixture
def ferret_store(ferret):
    ferret.collection.delete_many({})
    return ferret


def plain_frames(store, flt=None, chunk_size=3) -> list[pd.DataFrame]:
    """The pymongo-only read: iter_frames with pymongoarrow made unavailable."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mongo_arrow, "arrow_context_class", lambda: None)
        frames = list(store.iter_frames(flt, chunk_size=chunk_size))
        assert store.last_read.mode == "pymongo" and store.last_read.arrow_chunks == 0
    return frames


def assert_same_frames(store, flt=None, chunk_size=3) -> list[pd.DataFrame]:
    got = list(store.iter_frames(flt, chunk_size=chunk_size))
    stats = store.last_read
    want = plain_frames(store, flt, chunk_size)
    assert len(got) == len(want)
    for mine, theirs in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(mine, theirs, check_dtype=True, check_exact=True)
    store.last_read = stats
    return got


# -- generated documents: every trade_date trap and odd types per column ------------------

TRADE_DATE_TRAPS = ["2025-10-23", "20251023", 20251023, "2025-10-23T00:00:00", "2025/10/23", "", "0", "2025-02-30",
                    "2025-10-23\n", " 2025-10-23", datetime(2025, 10, 23), 2025.1023, True]
FERRET_ODD = st.one_of(
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),  # int32
    st.integers(-(2**63), 2**63 - 1).map(Int64),  # int64
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.none(),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2),  # nested document
    st.lists(st.integers(0, 9), max_size=2),  # array
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),  # BSON dates hold milliseconds
)
MISSING = object()


def field_value(kind: str, odd=None):
    """The contract's own type, null or missing; with ``odd``, sometimes a value of another type."""
    typed = {
        "str": st.text(max_size=8),
        "float": st.floats(allow_nan=False, allow_infinity=False),
        "int": st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**63), 2**63 - 1).map(Int64)),
        "datetime": st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
    }[kind]
    plain = st.one_of(typed, typed, typed, typed, st.none(), st.just(MISSING))
    return plain if odd is None else st.one_of(plain, odd)


def document(odd=None):
    """A document whose fields the Arrow columns hold exactly (``odd`` None), or one with odd values."""
    fields = {f.name: field_value(f.kind, odd) for f in FIELDS}
    traps = [t for t in TRADE_DATE_TRAPS if isinstance(t, str) or odd is not None]
    fields["trade_date"] = st.one_of(st.sampled_from(traps), field_value("str", odd))
    return st.fixed_dictionaries({
        **fields,
        "__extra": st.just(MISSING) if odd is None else st.one_of(st.just(MISSING), odd),  # outside the contract
        "__reversed": st.booleans(),  # the fields in another order
        # not an ObjectId
        "__id": st.just(None) if odd is None else st.sampled_from([None, None, "text", "int", "double", "object"]),
    })


def documents(odd, *, max_docs=8):
    """Mostly exact documents, so that chunks of both kinds are common."""
    exact = document()
    return st.lists(st.one_of(exact, exact, exact, document(odd)), min_size=1, max_size=max_docs)


def stored(generated: list[dict]) -> list[dict]:
    docs = []
    for n, spec in enumerate(generated):
        doc = {name: value for name, value in spec.items() if not name.startswith("__") and value is not MISSING}
        if spec["__extra"] is not MISSING:
            doc["turnover"] = spec["__extra"]
        if spec["__reversed"]:
            doc = dict(reversed(list(doc.items())))
        if spec["__id"] is not None:  # unique whatever its type
            doc = {"_id": {"text": f"id-{n}", "int": 1000 + n, "double": n + 0.5, "object": {"n": n}}[spec["__id"]],
                   **doc}
        docs.append(doc)
    return docs


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=documents(FERRET_ODD), chunk_size=st.integers(1, 5))
def test_arrow_and_fallback_frames_equal_the_pymongo_frames_on_ferretdb(ferret, generated, chunk_size):
    ferret.collection.delete_many({})
    ferret.collection.insert_many(stored(generated))
    got = assert_same_frames(ferret, chunk_size=chunk_size)
    stats = ferret.last_read
    assert stats.mode == "arrow" and stats.arrow_records + stats.pymongo_records == len(generated)
    assert sum(len(f) for f in got) == len(generated)


@settings(max_examples=15, deadline=None)
@given(generated=documents(st.one_of(FERRET_ODD, st.sampled_from(
    [float("nan"), float("inf"), float("-inf"), -0.0, Decimal128("1.5"), Decimal128("NaN")]))))
def test_mongomock_falls_back_with_the_same_frames(generated):
    from tests.conftest import make_mongomock_store

    store = make_mongomock_store()
    store.collection.insert_many(stored(generated))
    assert_same_frames(store)
    assert store.last_read.mode == "pymongo" and store.last_read.arrow_chunks == 0


# -- the guard -----------------------------------------------------------------------------


def test_clean_documents_take_the_arrow_path(ferret_store):
    docs = good_docs(4, ("600000", "000001", "300750"))
    docs[0]["turnover_rate"] = 1.5  # an optional field in one document only
    ferret_store.upsert(docs, now=STAMP)
    assert_same_frames(ferret_store, chunk_size=5)
    stats = ferret_store.last_read.as_dict()
    assert stats["mode"] == "arrow" and stats["pymongo_chunks"] == 0 and stats["arrow_records"] == 12
    assert_same_frames(ferret_store, RecordFilter(data_source="akshare", symbols=("600000",)), chunk_size=100)
    assert ferret_store.last_read.arrow_records == 4


@pytest.mark.parametrize(("change", "why"), [
    ({"close": True}, "close holds bool"),  # a bool price: 1.0 in an Arrow double column
    ({"volume": 7}, "volume holds int"),  # an int: 7.0 there, and int64 for pandas when the column is all ints
    ({"version": 1.5}, "version holds double"),  # 1 in an Arrow int64 column
    ({"trade_date": 20251023}, "trade_date holds int"),
    ({"_id": "text-id"}, "_id holds string"),
    ({"_id": None}, "_id holds null"),  # pymongo's str() gives "None"
    ({"turnover": 1.5}, "fields outside the contract"),  # dropped by a schema
    ({"open": {"nested": [1, 2]}}, "open holds object"),
])
def test_a_value_the_schema_cannot_hold_sends_its_chunk_the_pymongo_way(ferret_store, change, why):
    docs = [{**doc, "_id": ObjectId()} for doc in good_docs(3, ("600000", "000001"))]
    docs[4] = {**docs[4], **change}
    ferret_store.collection.insert_many(docs)
    assert_same_frames(ferret_store, chunk_size=3)
    stats = ferret_store.last_read
    assert (stats.arrow_chunks, stats.pymongo_chunks, stats.fallbacks) == (1, 1, {why: 1})


def test_the_guard_is_what_keeps_a_bool_price(ferret_store, monkeypatch):
    """Without the guard the Arrow path would read True as 1.0: the comparison above would fail."""
    docs = good_docs(2, ("600000",))
    docs[1]["close"] = True
    ferret_store.upsert(docs, now=STAMP)
    (frame,) = ferret_store.iter_frames(chunk_size=10)
    assert frame["close"].tolist()[1] is True and frame["close"].dtype == object
    monkeypatch.setitem(mongo_arrow.ALLOWED, "close", ("double", "bool"))
    (unguarded,) = ferret_store.iter_frames(chunk_size=10)
    assert unguarded["close"].tolist()[1] == 1.0 and unguarded["close"].dtype == "float64"
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(unguarded, frame, check_exact=True)


def test_nulls_missing_fields_and_orders_match(ferret_store):
    """All-null columns (object None), null beside missing (float64 NaN), int columns with a null (float64),
    fields in another order in a later document (columns in first-seen order)."""
    docs = [{**doc, "_id": ObjectId()} for doc in good_docs(3, ("600000", "000001"))]
    for doc in docs[:3]:
        doc["pre_close"] = None
        doc["version"] = None if doc is docs[0] else doc["version"]
    docs[1].pop("amount")
    docs[0]["market"] = None
    docs[1]["market"] = None
    docs[2].pop("market")
    docs[3]["pe"] = None
    docs[4] = dict(reversed(list(docs[4].items())))
    ferret_store.collection.insert_many(docs)
    for size in (2, 3, 6):
        assert_same_frames(ferret_store, chunk_size=size)
        assert ferret_store.last_read.pymongo_chunks == 0


def test_a_decode_error_or_a_refused_aggregate_falls_back(ferret_store, monkeypatch):
    from pymongo.errors import OperationFailure

    ferret_store.upsert(good_docs(3, ("600000",)), now=STAMP)

    class Failing:
        def __init__(self, schema):
            pass

        def process_bson_stream(self, raw):
            raise TypeError("Got unexpected type")

    with monkeypatch.context() as patch:
        patch.setattr(mongo_arrow, "arrow_context_class", lambda: Failing)
        assert_same_frames(ferret_store, chunk_size=2)
    assert ferret_store.last_read.fallbacks == {"Arrow decode failed: TypeError": 2}

    def refuse(*args, **kwargs):
        raise OperationFailure("Unrecognized expression '$type'", code=168)

    monkeypatch.setattr(type(ferret_store.collection), "aggregate_raw_batches", refuse)
    frames = list(ferret_store.iter_frames(chunk_size=2))
    assert sum(len(f) for f in frames) == 3
    assert ferret_store.last_read.mode == "pymongo" and "refused" in ferret_store.last_read.reason


def test_validate_verdicts_on_ferretdb_are_unchanged(ferret_store):
    from tacn.pipelines.validate import validate_store

    bad = one_bad_record_per_rule()
    ferret_store.upsert(good_docs(3, ("600519",)) + list(bad.values()), now=STAMP)
    with_arrow = validate_store(ferret_store, options(chunk_size=4))
    assert ferret_store.last_read.arrow_chunks >= 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mongo_arrow, "arrow_context_class", lambda: None)
        plain = validate_store(ferret_store, options(chunk_size=4))
    assert ferret_store.last_read.arrow_chunks == 0
    mine, theirs = with_arrow.to_dict(), plain.to_dict()
    mine.pop("duration_s"), theirs.pop("duration_s")
    assert mine == theirs
    for rule in bad:
        assert counts(with_arrow)[rule] == 1, rule


def test_on_ferretdb_the_automatic_choice_is_the_plain_find(ferret_store, monkeypatch):
    monkeypatch.setattr(ferret_store, "arrow_reads", None)
    monkeypatch.delenv("TACN_MONGO_ARROW", raising=False)
    ferret_store.upsert(good_docs(2, ("600000",)), now=STAMP)
    frames = list(ferret_store.iter_frames(chunk_size=3))
    assert sum(len(f) for f in frames) == 2
    assert ferret_store.last_read.mode == "pymongo" and "FerretDB" in ferret_store.last_read.reason


@pytest.mark.parametrize(("setting", "mode"), [("on", "arrow"), ("ON ", "arrow"), ("off", "pymongo")])
def test_tacn_mongo_arrow_forces_the_path(ferret_store, monkeypatch, setting, mode):
    monkeypatch.setattr(ferret_store, "arrow_reads", None)
    monkeypatch.setenv("TACN_MONGO_ARROW", setting)
    ferret_store.upsert(good_docs(2, ("600000",)), now=STAMP)
    list(ferret_store.iter_frames(chunk_size=3))
    assert ferret_store.last_read.mode == mode


def test_a_bad_tacn_mongo_arrow_is_a_usage_error(ferret_store, monkeypatch):
    from tacn.pipelines.errors import UsageError

    monkeypatch.setattr(ferret_store, "arrow_reads", None)
    monkeypatch.setenv("TACN_MONGO_ARROW", "sometimes")
    with pytest.raises(UsageError, match="TACN_MONGO_ARROW must be auto, on or off"):
        list(ferret_store.iter_frames(chunk_size=3))


def test_pymongoarrows_class_size_warnings_are_silenced_and_it_is_used(monkeypatch):
    """With pyarrow 25.0.1 pymongoarrow 1.15 warns that Arrow's classes grew (Cython tolerates that):
    those warnings are not shown, and the decoder is used."""
    import sys
    import types
    import warnings

    fake_context = types.ModuleType("pymongoarrow.context")

    class PyMongoArrowContext:  # noqa: N801 - stands in for the real class
        pass

    fake_context.PyMongoArrowContext = PyMongoArrowContext
    real_import = __import__

    def importing(name, *args, **kwargs):
        if name == "pymongoarrow.context":
            warnings.warn("pyarrow.lib.Array size changed, may indicate binary incompatibility. Expected 72 "
                          "from C header, got 80 from PyObject", RuntimeWarning, stacklevel=2)
            return fake_context
        return real_import(name, *args, **kwargs)

    mongo_arrow.arrow_context_class.cache_clear()
    monkeypatch.setitem(sys.modules, "pymongoarrow.context", fake_context)
    monkeypatch.setattr("builtins.__import__", importing)
    try:
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            assert mongo_arrow.arrow_context_class() is PyMongoArrowContext
        assert not [w for w in shown if "size changed" in str(w.message)]
    finally:
        monkeypatch.undo()
        mongo_arrow.arrow_context_class.cache_clear()
    assert mongo_arrow.arrow_context_class() is not None  # the real one
