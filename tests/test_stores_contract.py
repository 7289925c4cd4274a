"""The store contract: the same cases against SQLite, MongoDB (mongomock) and a real MongoDB if given."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest

from tacn.pipelines.stores.base import RecordFilter
from tacn.validators.records import KEY_FIELDS, build_document
from tests.conftest import store_flavour

T0 = datetime(2025, 10, 23, 9, 0, 0)
T1 = datetime(2025, 10, 24, 9, 0, 0)

BAD_DATES = ["0", "1", "20251023", "2025/10/23", "2024-02-30", "2024-1-2", "0001-01-01", "9999-12-31", "", None, 20251023]


def doc(symbol="000001", day="2025-10-23", source="akshare", close=11.35, **extra):
    d = build_document(symbol=symbol, trade_date=day, data_source=source, open=11.2, high=11.5, low=11.1,
                       close=close, pre_close=11.2, volume=1000.0, amount=11350.0, now=T0)
    d.update(extra)
    return d


def strip(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "_id"}


def test_upsert_inserts_and_reads_back_the_same_document(store):
    docs = [doc(day=f"2025-10-{d:02d}") for d in (20, 21, 22, 23)]
    result = store.upsert(docs, now=T0)
    assert (result.inserted, result.changed, result.unchanged) == (4, 0, 0)
    back = sorted((strip(d) for d in store.iter_documents()), key=lambda d: d["trade_date"])
    assert back == docs


def test_second_identical_upsert_changes_nothing(store):
    docs = [doc(day=f"2025-10-{d:02d}") for d in (20, 21, 22)]
    store.upsert(docs, now=T0)
    before = list(store.iter_documents())
    result = store.upsert(docs, now=T1)
    assert (result.inserted, result.changed, result.unchanged) == (0, 0, 3)
    assert list(store.iter_documents()) == before  # updated_at untouched too


def test_changed_document_keeps_created_at_and_id_and_sets_updated_at(store):
    store.upsert([doc(close=11.35)], now=T0)
    (original,) = list(store.iter_documents())
    result = store.upsert([doc(close=12.0)], now=T1)
    assert (result.inserted, result.changed, result.unchanged) == (0, 1, 0)
    (updated,) = list(store.iter_documents())
    assert updated["close"] == 12.0
    assert updated["_id"] == original["_id"]
    assert updated["created_at"] == T0
    assert updated["updated_at"] == T1


def test_key_is_the_four_fields(store):
    docs = [doc(), doc(source="tushare"), doc(period="weekly"), doc(symbol="600000")]
    assert store.upsert(docs, now=T0).inserted == 4
    assert store.count() == 4


def test_duplicate_keys_in_one_batch_keep_the_last(store):
    result = store.upsert([doc(close=1.0), doc(close=2.0)], now=T0)
    assert result.inserted == 1 and result.inserted + result.changed + result.unchanged == 2
    assert [d["close"] for d in store.iter_documents()] == [2.0]


def weird_documents(kind: str) -> list[dict]:
    from bson import ObjectId

    docs = []
    for i, bad in enumerate(BAD_DATES):
        docs.append({**doc(symbol=f"{i:06d}"), "_id": ObjectId(), "trade_date": bad})
    missing = doc(symbol="000100")
    del missing["trade_date"]
    del missing["period"]  # older deployments
    missing["_id"] = ObjectId()
    docs.append(missing)
    docs.append({**doc(symbol="000101"), "_id": ObjectId(), "pe": None, "unknown_field": {"nested": [1, "a"]},
                 "isST": 0.0, "close": -1.0 if kind == "ferretdb" else math.inf, "volume": 7})  # FerretDB v1: no Infinity
    docs.append({**doc(symbol="000102"), "_id": ObjectId(), "created_at": "2025-10-23 not a datetime",
                 "version": True, "market": None})
    if kind == "sqlite":  # BSON cannot hold a bare date; only the embedded store ever sees one
        docs.append({**doc(symbol="000103"), "_id": ObjectId(), "trade_date": date(2025, 10, 23)})
        docs.append({**doc(symbol="000104"), "_id": ObjectId(), "trade_date": datetime(2025, 10, 23)})
    return docs


def test_whole_documents_come_back_unchanged_bad_values_included(store):
    docs = weird_documents(store_flavour(store))
    put = store.put_documents(docs)
    assert put.inserted == len(docs) and not put.conflicts
    back = {d["_id"]: d for d in store.iter_documents()}
    for original in docs:
        assert back[original["_id"]] == original
        assert type(back[original["_id"]].get("trade_date")) is type(original.get("trade_date"))


@pytest.mark.not_on_ferretdb("FerretDB v1 rejects NaN doubles (closes the connection)")
def test_nan_survives_the_round_trip(store):
    from bson import ObjectId

    original = {**doc(), "_id": ObjectId(), "pre_close": float("nan")}
    store.put_documents([original])
    (back,) = list(store.iter_documents())
    assert math.isnan(back["pre_close"])


def test_put_documents_twice_changes_nothing_and_reports_conflicts(store):
    from bson import ObjectId

    docs = weird_documents(store_flavour(store))
    store.put_documents(docs)
    again = store.put_documents(docs)
    assert again.inserted == 0 and again.already_present == len(docs) and not again.conflicts
    clash = {**docs[0], "close": 99.0}
    same_key = {**doc(), "_id": ObjectId()}
    store.upsert([doc()], now=T0)
    result = store.put_documents([clash, same_key])
    assert result.inserted == 0
    assert [c["reason"] for c in result.conflicts] == [
        "a different document has this _id",
        "another document has the same key",
    ]


def test_invalid_trade_dates_are_counted_and_found_exactly(store):
    docs = weird_documents(store_flavour(store))
    good = {**doc(symbol="000200"), "_id": docs[0]["_id"].__class__()}
    store.put_documents(docs + [good])
    invalid = list(store.iter_invalid_trade_date())
    expected = {d["_id"] for d in docs if d.get("trade_date") != "2025-10-23" or "trade_date" not in d}
    expected -= {d["_id"] for d in docs if d["symbol"] in ("000101", "000102")}
    assert {d["_id"] for d in invalid} == expected
    assert store.count_invalid_trade_date() == len(expected)
    assert store.count_invalid_trade_date(RecordFilter(data_source="tushare")) == 0


def test_a_date_after_tomorrow_in_shanghai_is_invalid(store):
    from tacn.validators.dates import latest_allowed_trade_date

    tomorrow = latest_allowed_trade_date()
    store.upsert([doc(day=tomorrow.isoformat()), doc(day=(tomorrow + timedelta(days=1)).isoformat())], now=T0)
    assert store.count_invalid_trade_date() == 1


def test_latest_valid_trade_date_ignores_text_that_sorts_higher(store):
    from bson import ObjectId

    store.upsert([doc(day="2025-10-22"), doc(day="2025-10-23"), doc(symbol="600000", day="2025-10-21")], now=T0)
    store.put_documents([{**doc(day="9"), "_id": ObjectId()}, {**doc(day="2025-13-01"), "_id": ObjectId()}])
    assert store.latest_valid_trade_dates("akshare") == {"000001": "2025-10-23", "600000": "2025-10-21"}
    assert store.latest_valid_trade_dates("akshare", symbols=["600000"]) == {"600000": "2025-10-21"}
    assert store.latest_valid_trade_dates("tushare") == {}


def test_filters_narrow_reads(store):
    store.upsert([doc(day="2025-10-20"), doc(day="2025-10-23"), doc(source="tushare"), doc(symbol="600000")], now=T0)
    store.upsert([doc(day="2025-10-21")], now=T1)
    assert store.count(RecordFilter(data_source="tushare")) == 1
    assert store.count(RecordFilter(symbols=("600000",))) == 1
    assert store.count(RecordFilter(start="2025-10-21", end="2025-10-22")) == 1
    assert store.count(RecordFilter(updated_since=T1 - timedelta(minutes=1))) == 1
    assert store.count(RecordFilter(period="weekly")) == 0


def test_iter_frames_streams_in_chunks(store):
    docs = [doc(symbol=f"{600000 + i:06d}", day=f"2025-10-{d:02d}") for i in range(10) for d in (20, 21, 22)]
    store.upsert(docs, now=T0)
    frames = list(store.iter_frames(chunk_size=7))
    assert [len(f) for f in frames] == [7, 7, 7, 7, 2]
    assert sum(len(f) for f in frames) == 30
    assert {"symbol", "trade_date", "close", "updated_at", "_id"} <= set(frames[0].columns)
    assert set(frames[0]["trade_date"]) <= {"2025-10-20", "2025-10-21", "2025-10-22"}
    only = list(store.iter_frames(RecordFilter(symbols=("600003",)), chunk_size=100))
    assert len(only) == 1 and set(only[0]["symbol"]) == {"600003"}


def test_iter_frames_keeps_bad_values_visible(store):
    from bson import ObjectId

    store.put_documents([{**doc(), "_id": ObjectId(), "trade_date": 0}, {**doc(symbol="600000"), "_id": ObjectId()}])
    (frame,) = list(store.iter_frames())
    assert sorted(map(repr, frame["trade_date"])) == ["'2025-10-23'", "0"]


def test_delete_by_ids_removes_exactly_those(store):
    store.upsert([doc(day=f"2025-10-{d:02d}") for d in (20, 21, 22)], now=T0)
    ids = [d["_id"] for d in store.iter_documents()]
    assert store.delete_by_ids(ids[:2]) == 2
    assert [d["_id"] for d in store.iter_documents()] == ids[2:]
    assert store.delete_by_ids(ids[:2]) == 0


def test_stats_counts_groups_and_invalid_dates(store):
    from bson import ObjectId

    store.upsert([doc(day="2025-10-20"), doc(day="2025-10-23"), doc(source="tushare", symbol="600000")], now=T0)
    store.put_documents([{**doc(day="7"), "_id": ObjectId()}])
    stats = store.stats()
    assert stats.total_records == 4 and stats.total_symbols == 2 and stats.invalid_trade_date == 1
    akshare = next(g for g in stats.groups if g.data_source == "akshare")
    assert (akshare.records, akshare.first_trade_date, akshare.last_trade_date, akshare.invalid_trade_date) == (
        3, "2025-10-20", "2025-10-23", 1)


def test_aux_collections_hold_small_documents(store):
    store.aux_upsert("tacn_test", "a", {"job": "a", "n": 1, "at": T0})
    store.aux_upsert("tacn_test", "a", {"job": "a", "n": 2, "at": T1})
    store.aux_upsert("tacn_test", "b", {"job": "b", "n": 3, "at": T0})
    assert store.aux_find("tacn_test") == [{"job": "a", "n": 2, "at": T1}, {"job": "b", "n": 3, "at": T0}]
    store.aux_delete("tacn_test", "a")
    assert [d["job"] for d in store.aux_find("tacn_test")] == ["b"]


@pytest.mark.parametrize("n", [1, 2_501])
def test_upsert_counts_across_batches(store, n):
    if store_flavour(store) == "mongomock" and n > 1_000:
        pytest.skip("mongomock scans on every upsert; volume runs on SQLite and FerretDB")
    docs = [doc(symbol=f"{i % 500:06d}", day=(date(2020, 1, 1) + timedelta(days=i // 500)).isoformat()) for i in range(n)]
    assert store.upsert(docs, now=T0).inserted == n
    assert store.upsert(docs, now=T1).unchanged == n


# -- added for clean / restore / migrate (issue 5) -----------------------------------------


@pytest.mark.not_on_ferretdb("FerretDB v1 rejects NaN doubles (closes the connection)")
def test_put_documents_twice_with_nan_is_already_present_not_a_conflict(store):
    from bson import ObjectId

    original = {**doc(), "_id": ObjectId(), "pre_close": float("nan"), "extra": {"n": [float("nan")]}}
    store.put_documents([original])
    again = store.put_documents([original])
    assert (again.inserted, again.already_present, again.conflicts) == (0, 1, [])
    changed = store.put_documents([{**original, "pre_close": 1.0}])
    assert [c["reason"] for c in changed.conflicts] == ["a different document has this _id"]


def test_unique_indexes_can_be_listed_created_and_dropped(store):
    from tacn.validators.records import LEGACY_UNIQUE_INDEX_NAME, UNIQUE_INDEX_NAME

    store.upsert([doc()], now=T0)  # MongoDB creates the application's indexes on first write
    by_name = {i["name"]: i for i in store.list_indexes()}
    assert by_name[UNIQUE_INDEX_NAME] == {"name": UNIQUE_INDEX_NAME, "fields": list(KEY_FIELDS), "unique": True}
    store.create_unique_index(LEGACY_UNIQUE_INDEX_NAME, ["symbol", "trade_date", "data_source"])
    assert {"name": LEGACY_UNIQUE_INDEX_NAME, "fields": ["symbol", "trade_date", "data_source"], "unique": True} in (
        store.list_indexes())
    store.drop_index(UNIQUE_INDEX_NAME)
    store.drop_index(UNIQUE_INDEX_NAME)  # dropping a missing index is not an error
    assert UNIQUE_INDEX_NAME not in {i["name"] for i in store.list_indexes()}


def test_find_duplicate_keys_lists_what_a_unique_index_would_reject(store):
    from bson import ObjectId

    from tacn.validators.records import UNIQUE_INDEX_NAME

    store.upsert([doc(symbol="999999")], now=T0)  # the indexes exist (a restore into a new collection makes them)
    store.drop_index(UNIQUE_INDEX_NAME)
    a, b, c = ObjectId(), ObjectId(), ObjectId()
    store.put_documents([{**doc(), "_id": a}, {**doc(close=1.0), "_id": b}, {**doc(symbol="600000"), "_id": c}])
    assert store.find_duplicate_keys(KEY_FIELDS) == [
        {"key": {"symbol": "000001", "trade_date": "2025-10-23", "data_source": "akshare", "period": "daily"},
         "count": 2, "ids": [a, b]}]
    assert store.find_duplicate_keys(["symbol"], limit=5)[0]["count"] == 2
    store.delete_by_ids([b])
    assert store.find_duplicate_keys(KEY_FIELDS) == []


def test_iter_missing_field_finds_absent_and_null(store):
    from bson import ObjectId

    absent = {**doc(day="2025-10-20"), "_id": ObjectId()}
    del absent["period"]
    null = {**doc(day="2025-10-21"), "_id": ObjectId(), "period": None}
    present = {**doc(day="2025-10-22"), "_id": ObjectId()}
    store.put_documents([absent, null, present])
    assert sorted(d["_id"] for d in store.iter_missing_field("period")) == sorted([absent["_id"], null["_id"]])
    assert [d for d in store.iter_missing_field("period") if d["_id"] == absent["_id"]] == [absent]


def _sqlite_index_names(store) -> set[str]:
    return {row[1] for row in store.conn.execute("PRAGMA index_list(stock_daily_quotes)")}


def test_sqlite_bulk_load_rebuilds_its_indexes(tmp_path, monkeypatch):
    from tacn.pipelines.stores import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "UPSERT_BATCH", 100)  # a "large" load without a large test
    store = sqlite_store.SQLiteStore(tmp_path / "bulk.db")
    docs = [doc(symbol=f"{i % 7:06d}", day=(date(2020, 1, 1) + timedelta(days=i // 7)).isoformat()) for i in range(1_000)]
    dropped = []
    real_drop = store._drop_secondary_indexes
    monkeypatch.setattr(store, "_drop_secondary_indexes", lambda: (dropped.append(True), real_drop()))
    assert store.upsert(docs, now=T0).inserted == 1_000
    assert dropped == [True]
    assert set(sqlite_store.SECONDARY_INDEXES) <= _sqlite_index_names(store)
    assert store.upsert(docs, now=T1).unchanged == 1_000  # a full table: no second bulk load
    assert dropped == [True]


def test_sqlite_reopening_recreates_indexes_a_killed_load_left_missing(tmp_path):
    from tacn.pipelines.stores import sqlite as sqlite_store

    store = sqlite_store.SQLiteStore(tmp_path / "killed.db")
    store._drop_secondary_indexes()
    assert not set(sqlite_store.SECONDARY_INDEXES) & _sqlite_index_names(store)
    store.close()
    reopened = sqlite_store.SQLiteStore(tmp_path / "killed.db")
    assert set(sqlite_store.SECONDARY_INDEXES) <= _sqlite_index_names(reopened)


def test_bulk_load_wraps_many_upserts(store):
    with store.bulk_load():
        store.upsert([doc(day="2025-10-20")], now=T0)
        store.upsert([doc(day="2025-10-21"), doc(day="2025-10-20", close=1.0)], now=T1)
    assert store.count() == 2 and store.latest_valid_trade_dates("akshare") == {"000001": "2025-10-21"}
    if store.kind == "sqlite":
        from tacn.pipelines.stores.sqlite import SECONDARY_INDEXES

        assert set(SECONDARY_INDEXES) <= _sqlite_index_names(store)


def test_sqlite_escaped_values_keep_microseconds_and_bare_dates(tmp_path):
    """BSON itself keeps milliseconds, so only the embedded store is asked for microseconds."""
    from bson import ObjectId

    from tacn.pipelines.stores.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "escaped.db")
    original = {**doc(), "_id": ObjectId(), "created_at": "text, not a datetime",
                "unknown": {"at": datetime(2025, 10, 23, 9, 0, 0, 123456), "day": date(2025, 10, 23)}}
    store.put_documents([original])
    (back,) = list(store.iter_documents())
    assert back == original
