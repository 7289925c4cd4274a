"""clean's backup lines rendered by the SQLite store in C decode to exactly the documents the row decoder gives."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from bson import Int64, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tacn.pipelines.recovery.backup import decode_line, encode_document
from tacn.pipelines.recovery.clean import clean_invalid_trade_date
from tacn.pipelines.recovery.restore import restore_backup
from tacn.pipelines.stores.sqlite import RenderedBatch, SQLiteStore
from tests.clean_fixtures import T0, quote, seed


def same(a, b) -> bool:
    """Equal values of the same type; -0.0 is not 0.0, NaN is NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def rendered_and_decoded(store: SQLiteStore):
    batches = list(store.iter_invalid_trade_date(as_lines=True))
    assert all(isinstance(b, RenderedBatch) for b in batches)
    lines = [line for b in batches for line in b.lines]
    docs = list(store.iter_invalid_trade_date())
    return lines, docs, batches


FLOATS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(
    [-0.0, 0.0, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, 1e22, 2.5e-7, 10.1, 1e16, 123456789.123456789]))
VALUES = st.one_of(FLOATS, st.integers(-(2**63), 2**63 - 1), st.sampled_from([-(2**63), 2**63 - 1]), st.none(),
                   st.just(float("inf")), st.just(float("nan")))
STAMPS = st.one_of(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
                   st.sampled_from([T0, T0.replace(microsecond=123000), T0.replace(microsecond=123456)]))
TEXTS = st.one_of(st.sampled_from(["000001", "600000", "中文", 'a"b', "a\\b", "line\nbreak", "\x7f", "\u2028"]),
                  st.text(max_size=6))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(VALUES, VALUES, STAMPS, TEXTS, st.sampled_from(["0", "1", 7, None, "2024-02-30"])),
                min_size=1, max_size=8))
def test_rendered_lines_decode_to_the_decoders_documents(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("render") / "s.db"
    docs = []
    for i, (close, volume, stamp, market, bad) in enumerate(rows):
        doc = {**quote(symbol=f"{i:06d}", close=10.0), "_id": ObjectId(), "trade_date": bad, "close": close,
               "volume": volume, "updated_at": stamp, "market": market}
        if i % 3 == 0:
            doc["turnover_rate"] = close  # an optional field on some rows
        docs.append(doc)
    with SQLiteStore(path) as store:
        store.upsert(docs, now=T0)
        lines, decoded, _ = rendered_and_decoded(store)
        assert len(lines) == len(decoded) == len(docs)
        for line, doc in zip(lines, decoded, strict=True):
            assert line.endswith(b"\n") and line.count(b"\n") == 1
            back = decode_line(line.decode("utf-8"))
            assert same(back, doc), (line, doc)
            assert list(back) == list(doc)  # the fields in the same order


def test_plain_records_are_rendered_as_the_encoder_writes_them(tmp_path):
    with SQLiteStore(tmp_path / "s.db") as store:
        docs = [{**quote(symbol="600000", close=10.5), "_id": ObjectId(), "trade_date": "0", "pe": 12.25},
                {**quote(symbol="000001"), "_id": ObjectId(), "trade_date": 20251023, "volume": 7}]
        store.upsert(docs, now=T0)
        lines, decoded, batches = rendered_and_decoded(store)
        assert [line.decode() for line in lines] == [encode_document(d) + "\n" for d in decoded]
        assert len(batches[0].decoded) == 1  # the integers in a text and a number column: through the encoder


def test_odd_records_go_through_the_encoder_in_place(tmp_path):
    with SQLiteStore(tmp_path / "s.db") as store:
        docs = [{**quote(symbol="600000"), "_id": ObjectId(), "trade_date": "0"},
                {**quote(symbol="600001"), "_id": "text-id", "trade_date": "1"},  # not an ObjectId
                {**quote(symbol="600002"), "_id": ObjectId(), "trade_date": "2", "amount": Int64(5)},
                {**quote(symbol="600003"), "_id": ObjectId(), "trade_date": "3", "created_at": datetime(1960, 1, 1)},
                {**quote(symbol="600004"), "_id": ObjectId(), "trade_date": "4", "extra": {"a": [1]}}]
        assert store.put_documents(docs).inserted == len(docs)
        lines, decoded, batches = rendered_and_decoded(store)
        rids = [rid for rid, _ in batches[0].decoded]
        assert len(rids) == 4 and rids == sorted(rids)  # all but the first, in selection order
        for line, doc in zip(lines, decoded, strict=True):
            assert same(decode_line(line.decode()), doc)


def test_summary_from_rendered_batches_equals_the_dry_runs(tmp_path):
    with SQLiteStore(tmp_path / "s.db") as store:
        seed(store)
        dry = clean_invalid_trade_date(store)
        applied = clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path / "bk", batch_size=3)
        for name in ("selected", "by_data_source", "by_kind", "samples", "symbols", "pairs"):
            assert getattr(dry, name) == getattr(applied, name), name
        restore_backup(store, applied.manifest)
        assert store.count_invalid_trade_date() == dry.selected


SUMMARY_FIELDS = ("selected", "by_data_source", "by_kind", "samples", "symbols", "pairs")
TRADE_DATES = st.one_of(
    st.sampled_from(["0", "1", "17", "20251023", "20240230", "2024-02-30", "1985-01-01", "2025/10/23", "", None, 7,
                     "99999999999999999999999", "０"]),
    st.text(alphabet="0123456789-/", max_size=10), st.integers(-(2**63), 2**63 - 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["000001", "600000", None]), st.sampled_from(["akshare", "tushare", None]),
                               st.sampled_from(["daily", "weekly"]), TRADE_DATES, st.one_of(st.none(), STAMPS),
                               st.booleans()), min_size=1, max_size=25),
       batch=st.integers(1, 9))
def test_columnar_summary_equals_the_dry_runs(tmp_path_factory, monkeypatch, rows, batch):
    """The summary of rendered batches (numpy over Arrow columns, per distinct value) equals the one made
    document by document, for every kind of trade_date, null keys, stamps, odd rows and batch sizes."""
    lines = SQLiteStore.iter_invalid_trade_date_lines
    monkeypatch.setattr(SQLiteStore, "iter_invalid_trade_date_lines",
                        lambda self, flt=None, *, batch_size=batch: lines(self, flt, batch_size=batch_size))
    path = tmp_path_factory.mktemp("summary") / "s.db"
    docs = []
    for symbol, source, period, bad, stamp, odd in rows:
        doc = {**quote(), "_id": ObjectId(), "symbol": symbol, "data_source": source, "period": period,
               "trade_date": bad, "updated_at": stamp}
        if odd:  # through the decoder and the encoder, beside the rows rendered in C
            doc["amount"] = Int64(5)
        docs.append(doc)
    with SQLiteStore(path) as store:
        assert store.put_documents(docs).inserted >= 1  # rows with the same key: the first one stays
        dry = clean_invalid_trade_date(store)
        applied = clean_invalid_trade_date(store, apply=True, backup_dir=path.parent / "bk")
    for name in SUMMARY_FIELDS:
        assert getattr(dry, name) == getattr(applied, name), name


def test_the_selection_is_one_scan_whatever_the_batch_size(tmp_path, monkeypatch):
    """The selection is read by one query, streamed in batches: a query per batch would scan the rest of
    the table again each time (bad rows early in a big table)."""
    from tacn.pipelines.stores import sqlite

    queries = []
    for name in ("query", "stream"):
        method = getattr(sqlite._ColumnarReader, name)
        monkeypatch.setattr(sqlite._ColumnarReader, name, lambda self, select, *args, _method=method, _name=name:
                            queries.append(_name) or _method(self, select, *args))
    with SQLiteStore(tmp_path / "s.db") as store:
        docs = [{**quote(symbol="600000"), "_id": ObjectId(), "trade_date": "0"}]
        docs += [quote(symbol="600000", day=f"2025-09-{d:02d}") for d in range(1, 29)]
        store.upsert(docs, now=T0)
        lines, decoded, _ = rendered_and_decoded(store)
        assert len(lines) == len(decoded) == 1 and queries == ["stream"]
        queries.clear()
        monkeypatch.setattr(SQLiteStore, "iter_invalid_trade_date_lines",
                            lambda self, flt=None, *, batch_size=1, _lines=SQLiteStore.iter_invalid_trade_date_lines:
                            _lines(self, flt, batch_size=batch_size))
        store.upsert([{**quote(symbol="000001"), "trade_date": "1"}], now=T0)
        lines, decoded, batches = rendered_and_decoded(store)  # two rows in batches of one: still one query
        assert len(lines) == len(decoded) == 2 and queries == ["stream"] and [b.count for b in batches] == [1, 1]


def _in_batches_of(monkeypatch, rows: int) -> None:
    lines = SQLiteStore.iter_invalid_trade_date_lines
    monkeypatch.setattr(SQLiteStore, "iter_invalid_trade_date_lines",
                        lambda self, flt=None, *, batch_size=rows: lines(self, flt, batch_size=batch_size))


def _count_reads(monkeypatch) -> list[str]:
    from tacn.pipelines.stores import sqlite

    calls: list[str] = []
    for name in ("query", "stream"):
        method = getattr(sqlite._ColumnarReader, name)
        monkeypatch.setattr(sqlite._ColumnarReader, name, lambda self, select, *args, _method=method, _name=name:
                            calls.append(_name) or _method(self, select, *args))
    return calls


def _read_ahead_threads():
    import threading

    return [t for t in threading.enumerate() if t.name == "tacn-read-ahead"]


def test_a_column_null_in_the_first_batch_keeps_its_type_later(tmp_path, monkeypatch):
    """The driver types each column from the first batch it streams: an optional field absent from the first
    records and present later, an integer in a text column later, stay exact in one streamed query."""
    _in_batches_of(monkeypatch, 2)
    reads = _count_reads(monkeypatch)
    with SQLiteStore(tmp_path / "s.db") as store:
        docs = [{**quote(symbol=f"{i:06d}"), "_id": ObjectId(), "trade_date": str(i)} for i in range(7)]
        docs[4]["pe"], docs[5]["pe"], docs[6]["market"] = 12.25, -0.0, 7
        store.upsert(docs, now=T0)
        lines, decoded, batches = rendered_and_decoded(store)
    assert reads == ["stream"] and len(lines) == len(decoded) == 7 and len(batches) == 4
    for line, doc in zip(lines, decoded, strict=True):
        assert same(decode_line(line.decode()), doc), (line, doc)


def test_a_value_the_stream_refuses_sends_the_rest_through_chunks(tmp_path, monkeypatch):
    """Text in a number column after the first batch: the driver refuses the batch; the rows from there on
    are read by chunks typed by all their values, and every line is still the decoder's document."""
    _in_batches_of(monkeypatch, 2)
    reads = _count_reads(monkeypatch)
    with SQLiteStore(tmp_path / "s.db") as store:
        docs = [{**quote(symbol=f"{i:06d}"), "_id": ObjectId(), "trade_date": str(i)} for i in range(8)]
        docs[5]["close"], docs[6]["version"] = "abc", 2.5
        store.upsert(docs, now=T0)
        lines, decoded, batches = rendered_and_decoded(store)
        applied = clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path / "bk", batch_size=3)
        assert store.count_invalid_trade_date() == 0
    assert reads[0] == "stream" and "query" in reads[1:]
    assert len(lines) == len(decoded) == 8 and applied.deleted == 8
    rids = [rid for b in batches for rid in b.rids]
    assert rids == sorted(rids) and len(set(rids)) == 8  # each row once, in rid order
    for line, doc in zip(lines, decoded, strict=True):
        assert same(decode_line(line.decode()), doc), (line, doc)


@pytest.mark.parametrize("raised", [RuntimeError("render failed"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_the_reader_thread_ends_when_the_rendering_stops_and_nothing_is_deleted(tmp_path, monkeypatch, raised):
    import time

    from tacn.pipelines.stores import sqlite

    _in_batches_of(monkeypatch, 1)
    render, calls = sqlite._render_batch, []

    def failing(table, decode_rows):
        calls.append(1)
        if len(calls) == 2:
            raise raised
        return render(table, decode_rows)

    monkeypatch.setattr(sqlite, "_render_batch", failing)
    with SQLiteStore(tmp_path / "s.db") as store:
        store.upsert([{**quote(symbol=f"{i:06d}"), "trade_date": str(i)} for i in range(6)], now=T0)
        with pytest.raises(type(raised)):
            clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path / "bk")
        assert store.count_invalid_trade_date() == 6 and not list((tmp_path / "bk").iterdir())
    if not isinstance(raised, KeyboardInterrupt):  # on an error the reader has been waited for
        assert not _read_ahead_threads()
    deadline = time.monotonic() + 10  # on Ctrl-C it is not: it ends after the batch it is reading
    while _read_ahead_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _read_ahead_threads()


def test_an_abandoned_selection_stops_its_reader(tmp_path, monkeypatch):
    _in_batches_of(monkeypatch, 1)
    with SQLiteStore(tmp_path / "s.db") as store:
        store.upsert([{**quote(symbol=f"{i:06d}"), "trade_date": str(i)} for i in range(6)], now=T0)
        batches = store.iter_invalid_trade_date(as_lines=True)
        assert next(batches).count == 1
        batches.close()
        assert not _read_ahead_threads()


def test_sigint_during_the_backup_exits_130_and_deletes_nothing(tmp_path):
    """Ctrl-C while the backup is written (the reader thread alive): exit 130 promptly, no half backup left,
    nothing deleted."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    with SQLiteStore(tmp_path / "s.db") as store:
        store.upsert([{**quote(symbol=f"{i % 500:06d}"), "trade_date": str(i // 500)} for i in range(1_500)], now=T0)
    ready = tmp_path / "ready"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "TACN_TEST_PAUSE_AT": "backup-writing", "TACN_TEST_PAUSE_FILE": str(ready),
           "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "tacn.cli", "clean-invalid-trade-date", "--yes", "--store",
                             f"sqlite:///{tmp_path / 's.db'}", "--backup-dir", str(tmp_path / "bk"), "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), proc.stderr.read().decode()[-500:] if proc.poll() is not None else "no pause"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()[-500:]
    assert b'"interrupted"' in out
    assert not list((tmp_path / "bk").iterdir())
    with SQLiteStore(tmp_path / "s.db") as store:
        assert store.count_invalid_trade_date() == 1_500


def test_two_halves_of_the_table_read_by_two_threads_give_the_same_lines_in_order(tmp_path, monkeypatch):
    """A big table is streamed as two rid ranges, one reader thread each; the lines come in rid order and
    decode to the decoder's documents, a refused value in the first half included."""
    from tacn.pipelines.stores import sqlite

    monkeypatch.setattr(sqlite, "STREAM_SPLIT_MIN_ROWS", 1)
    _in_batches_of(monkeypatch, 2)
    reads = _count_reads(monkeypatch)
    with SQLiteStore(tmp_path / "s.db") as store:
        docs = [{**quote(symbol=f"{i:06d}"), "_id": ObjectId(), "trade_date": str(i)} for i in range(9)]
        docs += [quote(symbol=f"{i:06d}") for i in range(9)]  # valid ones: not selected
        docs[3]["close"], docs[8]["pe"] = "abc", 1.5
        store.upsert(docs, now=T0)
        lines, decoded, batches = rendered_and_decoded(store)
        assert reads.count("stream") == 2 and "query" in reads
        dry = clean_invalid_trade_date(store)
        applied = clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path / "bk", batch_size=4)
        assert store.count_invalid_trade_date() == 0 and store.count() == 9
    rids = [rid for b in batches for rid in b.rids]
    assert rids == sorted(rids) and len(set(rids)) == len(lines) == len(decoded) == 9
    for line, doc in zip(lines, decoded, strict=True):
        assert same(decode_line(line.decode()), doc), (line, doc)
    for name in SUMMARY_FIELDS:
        assert getattr(dry, name) == getattr(applied, name), name
