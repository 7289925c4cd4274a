"""Recovery is exact: every Extended JSON type survives clean → restore on both stores, type included;
documents that share a key (null included) are clashes, as MongoDB's unique index says."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from bson import Int64, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.clean import clean_invalid_trade_date
from pipelines.restore import restore_backup
from tests.clean_fixtures import T0, quote
from tests.conftest import make_mongomock_store
from tests.test_extjson import _bson_values, exactly

SHAPES = st.sampled_from(["extra field", "known column", "timestamp"])


def _store(kind: str, directory: Path):
    if kind == "sqlite":
        from pipelines.stores.sqlite import SQLiteStore

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
            store.put_documents([with_value(i, shape, value) for i, (shape, value) in enumerate(cases)])
            before = snapshot(store)
            cleaned = clean_invalid_trade_date(store, apply=True, backup_dir=Path(directory) / "bk")
            assert cleaned.deleted == len(cases) and store.count() == 0
            restored = restore_backup(store, cleaned.manifest)
            assert restored.conflicts == [] and restored.inserted == len(cases)
            assert snapshot(store) == before

    check()
