"""Recovery is exact: every Extended JSON type survives clean → restore on both stores, type included;
documents that share a key (null included) are clashes, as MongoDB's unique index says."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from bson import Int64, ObjectId
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tacn.pipelines.recovery.clean import clean_invalid_trade_date
from tacn.pipelines.recovery.restore import restore_backup
from tests.clean_fixtures import T0, quote
from tests.conftest import make_mongomock_store
from tests.test_extjson import _bson_values, exactly

SHAPES = st.sampled_from(["extra field", "known column", "timestamp"])


def _store(kind: str, directory: Path):
    if kind == "sqlite":
        from tacn.pipelines.stores.sqlite import SQLiteStore

        return SQLiteStore(directory / "store.db")
    return make_mongomock_store()


def snapshot(store) -> list:
    return sorted((exactly(doc) for doc in store.iter_documents()), key=repr)


def with_value(i: int, shape: str, value) -> dict:
    doc = {**quote(symbol=f"{600000 + i:06d}", close=10.0 + i), "_id": ObjectId(), "trade_date": str(i)}
    if shape == "extra field":
        doc["payload"] = value
    elif shape == "known column":
        doc["volume"] = value
    else:
        from datetime import datetime

        if isinstance(value, datetime):
            doc["updated_at"] = value
        else:
            doc["payload"] = value
    return doc


@pytest.mark.parametrize("kind", ["sqlite", "mongomock"])
def test_extended_json_values_survive_clean_then_restore_exactly(kind, tmp_path):
    """The example of the issue, as a fixed case: Int64 comes back as Int64, not int."""
    from datetime import datetime

    from bson import Binary, Decimal128

    values = [Int64(7), Int64(2**40), Decimal128("1.10"), Binary(b"\x00\xff", 5), b"raw",
              datetime(1960, 5, 4, 3, 2, 1, 5000), datetime(2040, 1, 1), {"n": [Int64(-1), datetime(1900, 1, 1)]}]
    with _store(kind, tmp_path) as store:
        store.upsert([quote()], now=T0)
        store.put_documents([with_value(i, shape, v) for i, v in enumerate(values)
                             for shape in ("extra field", "known column")][::2])
        before = snapshot(store)
        cleaned = clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path / "bk")
        assert cleaned.deleted == len(values) and store.count() == 1
        restored = restore_backup(store, cleaned.manifest)
        assert restored.conflicts == [] and restored.inserted == len(values)
        assert snapshot(store) == before
        assert type(next(d for d in store.iter_documents() if d["trade_date"] == "0")["payload"]) is Int64


@pytest.mark.parametrize("kind", ["sqlite", "mongomock"])
def test_clean_then_restore_round_trip_property(kind):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(SHAPES, _bson_values()), min_size=1, max_size=4))
    def check(cases):
        with tempfile.TemporaryDirectory() as directory, _store(kind, Path(directory)) as store:
            originals = [with_value(i, shape, value) for i, (shape, value) in enumerate(cases)]
            store.put_documents(originals)
            before = snapshot(store)
            if kind == "sqlite":  # the embedded store holds exactly what it was given, types included
                assert before == sorted((exactly(doc) for doc in originals), key=repr)
            cleaned = clean_invalid_trade_date(store, apply=True, backup_dir=Path(directory) / "bk")
            assert cleaned.deleted == len(cases) and store.count() == 0
            restored = restore_backup(store, cleaned.manifest)
            assert restored.conflicts == [] and restored.inserted == len(cases)
            assert snapshot(store) == before
            # byte for byte: backing the restored records up again writes the very same file
            again = clean_invalid_trade_date(store, apply=True, backup_dir=Path(directory) / "bk2")
            assert Path(again.backup).read_bytes() == Path(cleaned.backup).read_bytes()

    check()


# -- a null or missing key field is one value, as in MongoDB's unique index ----------------------
def keyed(close=11.0, trade_date="absent", **extra) -> dict:
    d = {**quote(close=close), **extra}
    if trade_date == "absent":
        del d["trade_date"]
    else:
        d["trade_date"] = trade_date
    return d


NULL_FORMS = [("null", None), ("absent", "absent")]


@pytest.mark.parametrize("first", NULL_FORMS, ids=lambda f: f[0])
@pytest.mark.parametrize("second", NULL_FORMS, ids=lambda f: f[0])
def test_upsert_treats_null_and_missing_key_fields_as_one_key(store, first, second):
    store.upsert([keyed(1.0, first[1])], now=T0)
    result = store.upsert([keyed(2.0, second[1])], now=T0)
    assert (result.inserted, result.changed) == (0, 1)
    (back,) = list(store.iter_documents())
    assert back["close"] == 2.0
    assert ("trade_date" in back) == (second[1] is None)  # the second document as written


@pytest.mark.parametrize("first", NULL_FORMS, ids=lambda f: f[0])
@pytest.mark.parametrize("second", NULL_FORMS, ids=lambda f: f[0])
def test_put_documents_reports_a_null_key_twin_as_a_clash(store, first, second):
    a = {**keyed(1.0, first[1]), "_id": ObjectId()}
    b = {**keyed(2.0, second[1]), "_id": ObjectId()}
    other = {**keyed(3.0, None), "symbol": "600000", "_id": ObjectId()}  # another key: not a clash
    result = store.put_documents([a, b, other])
    assert result.inserted == 2
    assert result.conflicts == [{"_id": str(b["_id"]), "reason": "another document has the same key"}]
    assert sorted(d["close"] for d in store.iter_documents()) == [1.0, 3.0]


def test_put_documents_into_an_empty_store_still_refuses_key_twins(store):
    """No write created the application's indexes yet (MongoDB): the key is still checked."""
    twins = [{**quote(close=float(i)), "_id": ObjectId()} for i in range(2)]
    result = store.put_documents(twins)
    assert result.inserted == 1 and [c["_id"] for c in result.conflicts] == [str(twins[1]["_id"])]


@pytest.mark.not_on_ferretdb("FerretDB v1's unique index (SQLite) does not see a null and a missing key part as twins")
def test_find_duplicate_keys_counts_null_and_missing_as_one_value(store):
    from tacn.validators.records import KEY_FIELDS, UNIQUE_INDEX_NAME

    store.upsert([quote(symbol="999999")], now=T0)  # the indexes exist, then the unique one goes
    store.drop_index(UNIQUE_INDEX_NAME)
    a, b = {**keyed(1.0, None), "_id": ObjectId()}, {**keyed(2.0, "absent"), "_id": ObjectId()}
    store.put_documents([a, b])
    (group,) = store.find_duplicate_keys(KEY_FIELDS)
    assert group["count"] == 2 and sorted(group["ids"]) == sorted([a["_id"], b["_id"]])
    assert group["key"]["trade_date"] is None
    from tacn.validators.records import UNIQUE_INDEX_NAME as name

    with pytest.raises(Exception, match="duplicate|unique|E11000"):
        store.create_unique_index(name, KEY_FIELDS)


def test_escaped_key_values_stay_distinct_from_null_and_from_each_other(tmp_path):
    """SQLite: a trade_date it escapes (a bare date, an Int64) is neither null nor equal to its text."""
    from datetime import date

    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "s.db") as store:
        docs = [{**keyed(float(i), value), "_id": ObjectId()} for i, value in
                enumerate([None, date(2025, 10, 23), "2025-10-23", Int64(20251023), {"d": 1}, [1]])]
        result = store.put_documents(docs)
        assert result.conflicts == [] and store.count() == len(docs)
        assert store.put_documents([{**keyed(9.0, date(2025, 10, 23)), "_id": ObjectId()}]).conflicts
        # numbers compare as numbers, as in MongoDB: 20251023 and 20251023.0 are Int64(20251023)'s twins
        for twin in (20251023, 20251023.0):
            assert store.put_documents([{**keyed(9.0, twin), "_id": ObjectId()}]).conflicts


def test_restore_cli_exits_1_when_a_backup_holds_null_key_twins(tmp_path):
    from typer.testing import CliRunner

    from tacn.cli.app import app
    from tacn.pipelines.extjson import encode_document

    backup = tmp_path / "export.jsonl"
    twins = [{**keyed(1.0, None), "_id": ObjectId()}, {**keyed(2.0, "absent"), "_id": ObjectId()}]
    backup.write_text("".join(encode_document(d) + "\n" for d in twins), encoding="utf-8")
    result = CliRunner().invoke(app, ["restore", str(backup), "--store", f"sqlite:///{tmp_path / 'r.db'}"])
    assert result.exit_code == 1, result.stderr
    assert str(twins[1]["_id"]) in result.stdout


def test_migration_0002_refuses_null_key_twins_on_both_stores(store, tmp_path):
    from tacn.migrations.runner import MigrationContext, migrate_up
    from tacn.validators.records import UNIQUE_INDEX_NAME

    store.upsert([quote(symbol="999999")], now=T0)
    store.drop_index(UNIQUE_INDEX_NAME)  # the maintenance script dropped it; twins crept in
    a, b = {**keyed(1.0, None), "_id": ObjectId()}, {**keyed(2.0, "absent"), "_id": ObjectId()}
    assert store.put_documents([a, b]).inserted == 2
    result = migrate_up(store, MigrationContext(backup_dir=tmp_path / "bk"))
    assert result.failed["id"] == 2 and result.failed["kind"] == "migration_refused"
    assert str(a["_id"]) in result.failed["error"] and str(b["_id"]) in result.failed["error"]
    assert store.count() == 3


def test_migration_0001_sees_a_collision_on_a_null_symbol(store, tmp_path):
    from tacn.migrations.runner import MigrationContext, migrate_up

    daily = {**quote(), "symbol": None, "_id": ObjectId()}
    lacking = {**quote(close=1.0), "symbol": None, "_id": ObjectId()}
    del lacking["period"]
    assert store.put_documents([daily, lacking]).inserted == 2
    result = migrate_up(store, MigrationContext(backup_dir=tmp_path / "bk"), to=1)
    assert result.failed["id"] == 1 and str(lacking["_id"]) in result.failed["error"]


# -- SQLite and MongoDB agree on which documents share a key, whatever the key values are ----------
ABSENT = "<absent>"
KEY_VALUES = st.sampled_from(["a", "b", "", None, ABSENT, 1, Int64(1), 1.0, 2, {"d": 1}])


def _with_key(symbol, trade_date, close: float) -> dict:
    d = {**quote(close=close), "_id": ObjectId()}
    for name, value in (("symbol", symbol), ("trade_date", trade_date)):
        if isinstance(value, str) and value == ABSENT:
            del d[name]
        else:
            d[name] = value
    return d


def test_sqlite_and_mongodb_agree_on_key_clashes_property():
    """Differential: the same documents put and upserted into both stores give the same outcome."""
    from tacn.pipelines.stores.sqlite import SQLiteStore

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(KEY_VALUES, KEY_VALUES), min_size=2, max_size=5))
    @example([(1.0, "a"), (1, "a"), (1.0, "a")])  # one key in MongoDB's eyes: the last in a batch wins
    def check(keys):
        docs = [_with_key(s, t, float(i)) for i, (s, t) in enumerate(keys)]
        outcomes = []
        with tempfile.TemporaryDirectory() as directory:
            for store in (SQLiteStore(Path(directory) / "s.db"), make_mongomock_store()):
                with store:
                    put = store.put_documents([dict(d) for d in docs])
                    clashes = sorted(c["_id"] for c in put.conflicts)
                    store.upsert([{k: v for k, v in d.items() if k != "_id"} for d in docs], now=T0)
                    outcomes.append((put.inserted, clashes, store.count(),
                                     sorted(d["close"] for d in store.iter_documents())))
        assert outcomes[0] == outcomes[1], ("sqlite", outcomes[0], "mongodb", outcomes[1])

    check()
