"""Columnar store reads give the same frames as the exact row decoder, dtypes included."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from bson import Int64, ObjectId

from tacn.pipelines.stores.base import RecordFilter
from tacn.pipelines.stores.sqlite import SQLiteStore, _frame_from_rows
from tests.test_validate import good_docs

STAMP = datetime(2025, 10, 23, 9, 0)


def decoded_frames(store: SQLiteStore, flt=None, chunk_size=7) -> list[pd.DataFrame]:
    where, params = store._where(flt)
    return [_frame_from_rows(rows) for rows in store._iter_rows(where, params, chunk_size)]


def assert_same(store, flt=None, chunk_size=7):
    columnar = list(store.iter_frames(flt, chunk_size=chunk_size))
    exact = decoded_frames(store, flt, chunk_size)
    assert len(columnar) == len(exact)
    for got, want in zip(columnar, exact, strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def clean_docs():
    return good_docs(4, ("600000", "000001", "300750"))


def test_clean_documents_read_columnar_equal_the_decoder(sqlite_store):
    docs = clean_docs()
    docs[0]["turnover_rate"] = 1.5  # an optional field on some rows only
    sqlite_store.upsert(docs, now=STAMP)
    assert_same(sqlite_store)
    assert_same(sqlite_store, RecordFilter(data_source="akshare", symbols=("600000",)), chunk_size=3)


@pytest.mark.parametrize(
    "change",
    [
        {"trade_date": 20251023},  # an int in a text column
        {"trade_date": "0"},
        {"close": "abc"},  # text in a number column
        {"open": None, "high": None},  # nulls
        {"volume": 7},  # an int in a float column
        {"version": 2.5},
        {"extra_field": {"nested": [1, 2]}},  # goes to extra
        {"amount": Int64(5)},  # Extended JSON values
        {"_id": ObjectId()},
        {"created_at": "2025-10-23"},  # text where a datetime belongs
        {"updated_at": None},
        {"pct_chg": "1.5"},  # text in a number column: the driver would turn the column into text
    ],
)
def test_bad_and_odd_values_read_columnar_equal_the_decoder(sqlite_store, change):
    docs = clean_docs()
    docs[5] = dict(docs[5], **change)
    sqlite_store.upsert(docs, now=STAMP)
    frames = list(sqlite_store.iter_frames(chunk_size=5))
    assert sum(len(f) for f in frames) == len(docs)
    assert_same(sqlite_store, chunk_size=5)


def test_a_column_null_in_one_chunk_and_set_in_the_next(sqlite_store):
    docs = clean_docs()
    for doc in docs[:6]:
        doc["pre_close"] = None
        doc["market"] = None
        doc["version"] = None
    for doc in docs[:4]:
        doc["updated_at"] = doc["created_at"] = None
    assert sqlite_store.put_documents([{**doc, "_id": ObjectId()} for doc in docs]).inserted == len(docs)
    assert_same(sqlite_store, chunk_size=6)
    assert_same(sqlite_store, chunk_size=4)


def test_the_columnar_path_is_taken_for_clean_chunks(sqlite_store, monkeypatch):
    import tacn.pipelines.stores.sqlite as sqlite

    sqlite_store.upsert(clean_docs(), now=STAMP)
    calls = []
    real = sqlite._frame_from_rows
    monkeypatch.setattr(sqlite, "_frame_from_rows", lambda rows: calls.append(len(rows)) or real(rows))
    frames = list(sqlite_store.iter_frames(chunk_size=100))
    assert calls == [] and len(frames) == 1


def test_a_read_that_ends_inside_a_chunk_makes_no_further_query(sqlite_store, monkeypatch):
    """A chunk with fewer rows than asked ends the read: another query after its last row would scan the
    rest of the table again for nothing (a filter matching rows early in a big table)."""
    from tacn.pipelines.stores import sqlite

    queries = []
    query = sqlite._ColumnarReader.query
    monkeypatch.setattr(sqlite._ColumnarReader, "query",
                        lambda self, select, *args: queries.append(select) or query(self, select, *args))
    sqlite_store.upsert(clean_docs(), now=STAMP)
    flt = RecordFilter(symbols=("600000",))
    frames = list(sqlite_store.iter_frames(flt, chunk_size=3))
    assert sum(len(f) for f in frames) == sqlite_store.count(flt) == 4 and len(queries) == 2  # 3 + 1 rows
    assert_same(sqlite_store, flt, chunk_size=3)


@pytest.mark.parametrize("refused_call", [1, 2, 3])
def test_a_chunk_the_driver_refuses_is_read_by_the_decoder_and_the_read_goes_on(sqlite_store, monkeypatch, refused_call):
    from tacn.pipelines.stores import sqlite

    calls = []
    query = sqlite._ColumnarReader.query

    def refusing(self, select, *args):
        calls.append(args)
        if len(calls) == refused_call:
            raise RuntimeError("[SQLite] Type mismatch in column 7")
        return query(self, select, *args)

    monkeypatch.setattr(sqlite._ColumnarReader, "query", refusing)
    docs = clean_docs()
    sqlite_store.upsert(docs, now=STAMP)
    frames = list(sqlite_store.iter_frames(chunk_size=3))
    ids = [i for f in frames for i in f["_id"]]
    assert len(ids) == len(set(ids)) == len(docs)  # every record once, none twice
    assert_same(sqlite_store, chunk_size=3)


def test_a_read_left_early_stops_its_worker_thread(sqlite_store):
    import threading

    sqlite_store.upsert(clean_docs(), now=STAMP)

    def workers():
        return [t for t in threading.enumerate() if t.name == "tacn-read-ahead"]

    frames = sqlite_store.iter_frames(chunk_size=2)
    next(frames)
    assert workers()
    frames.close()
    assert not workers()
