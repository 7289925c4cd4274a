"""clean's delete step on MongoDB: only records unchanged since the backup are deleted, and on
FerretDB most of them in one guarded pass (pipelines/recovery/clean.py ``delete_unchanged``).

Runs on FerretDB (where the one pass is chosen because the server says it is FerretDB) and on
mongomock both ways (one pass forced on, and the MongoDB way: by ``_id`` only). A record changed
after the backup is simulated by clean's ``on_backup`` hook, which runs between the complete
backup and the first delete, as another writer (the application) would act.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tacn.pipelines.errors import StoreError
from tacn.pipelines.recovery.backup import open_backup
from tacn.pipelines.recovery.clean import STAMP_MARGIN, clean_invalid_trade_date
from tacn.pipelines.recovery.restore import restore_backup
from tacn.pipelines.stores.mongo import MongoStore
from tacn.validators.records import utc_now
from tests.clean_fixtures import quote, run_tacn_until
from tests.conftest import MONGO_URI, fresh_database_name, make_mongomock_store

BATCH = 3


@pytest.fixture(params=["ferretdb", "mongomock-one-pass", "mongomock-by-id"] + (["mongodb"] if MONGO_URI else []))
def quotes(request):
    """An empty MongoDB store: FerretDB and MongoDB as they say they are, mongomock both ways."""
    if request.param in ("ferretdb", "mongodb"):
        url = request.getfixturevalue("ferretdb").url if request.param == "ferretdb" else MONGO_URI
        opened = MongoStore.from_url(url, database=fresh_database_name())
        opened.test_kind = request.param
        assert opened.deletes_in_one_pass() == (request.param == "ferretdb")  # told by the server's buildInfo
        yield opened
        opened.client.drop_database(opened.database_name)
        opened.close()
        return
    opened = make_mongomock_store(fresh_database_name())
    assert not opened.deletes_in_one_pass()  # a MongoDB stand-in: by _id
    opened.one_pass_deletes = request.param == "mongomock-one-pass"
    yield opened
    opened.close()


def bad(i: int, **extra) -> dict:
    from bson import ObjectId

    return {**quote(symbol=f"{600000 + i % 3:06d}", close=10.0 + i), "_id": ObjectId(), "trade_date": str(i), **extra}


def no_stamp(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "updated_at"}


def everything(store) -> dict:
    return {d["_id"]: d for d in store.collection.find()}


def test_one_pass_deletes_exactly_the_backed_up_set_and_the_rest_by_id(quotes, tmp_path):
    from bson import ObjectId

    good = [{**quote(symbol=s, day=f"2025-09-{d:02d}"), "_id": ObjectId()} for s in ("000001", "600000")
            for d in range(1, 11)]
    old = [bad(i) for i in range(7)]  # stamped T0: the one pass
    recent = [bad(10 + i, updated_at=utc_now() - STAMP_MARGIN / 2) for i in range(2)]  # may be mid-write: by _id
    unstamped = [no_stamp(bad(20 + i)) for i in range(4)]  # by _id
    text_id = {**bad(30), "_id": "legacy-7"}  # not an ObjectId: by _id
    quotes.collection.insert_many([*good, *old, *recent, *unstamped, text_id])
    before = everything(quotes)

    reports = []
    result = clean_invalid_trade_date(quotes, apply=True, backup_dir=tmp_path, batch_size=BATCH,
                                      progress=lambda done, total, unit: reports.append((done, total)))

    backed_up = {d["_id"]: d for d in open_backup(result.manifest).documents()}
    assert len(reports) == result.batches and reports[-1] == (len(backed_up), len(backed_up))
    assert set(backed_up) == {d["_id"] for d in [*old, *recent, *unstamped, text_id]}
    assert all(backed_up[i] == before[i] for i in backed_up)
    assert everything(quotes) == {d["_id"]: before[d["_id"]] for d in good}
    assert result.deleted == result.selected == len(backed_up)
    by_id = 7 if quotes.one_pass_deletes else len(backed_up)
    assert result.batches == quotes.one_pass_deletes + -(-by_id // BATCH)
    manifest = json.loads(Path(result.manifest).read_text())
    assert manifest["state"] == "deleted" and "left_in_store" not in manifest
    assert manifest["deleted"] == {"records": len(backed_up), "batches": result.batches, "lines_done": len(backed_up)}


def test_records_changed_after_the_backup_are_left_and_counted(quotes, tmp_path):
    from bson import ObjectId

    good = [{**quote(day=f"2025-09-{d:02d}"), "_id": ObjectId()} for d in range(1, 6)]
    old = [bad(i) for i in range(6)]
    unstamped = [no_stamp(bad(10 + i)) for i in range(3)]
    quotes.collection.insert_many([*good, *old, *unstamped])
    late_insert = {**bad(40, updated_at=utc_now()), "_id": ObjectId()}

    def another_writer(backup) -> None:
        """The application, between the backup and the delete (its writes stamp updated_at)."""
        now = utc_now()
        quotes.collection.update_one({"_id": old[0]["_id"]}, {"$set": {"close": 99.0, "updated_at": now}})
        quotes.collection.update_one({"_id": old[1]["_id"]}, {"$set": {"trade_date": "2025-10-01", "updated_at": now}})
        quotes.collection.update_one({"_id": unstamped[0]["_id"]}, {"$set": {"close": 98.0, "updated_at": now}})
        quotes.collection.update_one({"_id": good[0]["_id"]}, {"$set": {"trade_date": "9", "updated_at": now}})
        quotes.collection.insert_one(late_insert)

    result = clean_invalid_trade_date(quotes, apply=True, backup_dir=tmp_path, batch_size=BATCH, on_backup=another_writer)

    changed = {old[0]["_id"], old[1]["_id"], unstamped[0]["_id"]}
    left = everything(quotes)
    assert set(left) == {d["_id"] for d in good} | changed | {late_insert["_id"]}
    assert left[old[0]["_id"]]["close"] == 99.0 and left[unstamped[0]["_id"]]["close"] == 98.0
    assert left[good[0]["_id"]]["trade_date"] == "9"  # invalid now, but not in the backup: kept
    assert (result.selected, result.deleted) == (9, 6)
    manifest = json.loads(Path(result.manifest).read_text())
    assert manifest["left_in_store"]["records"] == 3 and manifest["state"] == "deleted"
    restored = restore_backup(quotes, result.manifest)  # the newer versions are not overwritten
    assert restored.inserted == 6 and {c["_id"] for c in restored.conflicts} == {str(i) for i in changed}


def test_a_writer_that_does_not_stamp_is_reported_not_hidden(tmp_path):
    """The guard's premise: writers stamp updated_at. One that inserts an old stamp inside the backup's
    span defeats the one pass; clean then says so (exit 3) instead of reporting success."""
    from bson import ObjectId

    store = make_mongomock_store(fresh_database_name())
    store.one_pass_deletes = True
    first, middle, last = (ObjectId() for _ in range(3))
    store.collection.insert_many([bad(0, _id=first), bad(1, _id=last)])

    def unstamped_writer(backup) -> None:
        store.collection.insert_one(bad(2, _id=middle))  # an old updated_at (T0), an _id inside the span

    with pytest.raises(StoreError, match="does not stamp updated_at"):
        clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path, on_backup=unstamped_writer)


@pytest.mark.parametrize("point", ["batch-deleted", "progress-recorded"])
def test_a_kill_at_the_one_pass_delete_restores_byte_for_byte(ferretdb, tmp_path, point):
    from bson import ObjectId

    store = MongoStore.from_url(ferretdb.url, database=fresh_database_name())
    try:
        good = [{**quote(symbol=s, day=f"2025-09-{d:02d}"), "_id": ObjectId()} for s in ("000001", "300750")
                for d in range(1, 11)]
        bad_docs = [bad(i) for i in range(30)] + [no_stamp(bad(100 + i)) for i in range(5)]
        store.collection.insert_many([*good, *bad_docs])
        original = everything(store)
        backups = tmp_path / "bk"
        run_tacn_until(["clean-invalid-trade-date", "--yes", "--store", f"{ferretdb.url}{store.database_name}",
                        "--backup-dir", str(backups), "--batch-size", "2"], point, tmp_path / "ready")

        remaining = everything(store)
        (manifest,) = backups.glob("*.manifest.json")
        backup = open_backup(manifest)
        backed_up = {d["_id"]: d for d in backup.documents()}
        missing = set(original) - set(remaining)
        assert missing == {d["_id"] for d in bad_docs[:30]}  # the one pass, whole; the unstamped wait
        assert all(backed_up[i] == original[i] for i in missing)
        assert backup.manifest["state"] == "deleting"
        assert backup.manifest["deleted"]["records"] == (30 if point == "progress-recorded" else 0)

        assert restore_backup(store, backup).conflicts == []
        assert everything(store) == original  # byte for byte: every value and type as it was
        shutil.rmtree(backups)
        again = clean_invalid_trade_date(store, apply=True, backup_dir=backups, batch_size=2)
        assert again.deleted == len(bad_docs) and set(everything(store)) == {d["_id"] for d in good}
    finally:
        store.client.drop_database(store.database_name)
        store.close()


# -- generated mixes ------------------------------------------------------------------------------

# One record: valid or invalid trade_date; its updated_at (old, recent, absent); and what another
# writer does to it between the backup and the delete.
RECORD = st.tuples(
    st.booleans(),
    st.sampled_from(["old", "recent", "absent"]),
    st.sampled_from(["nothing", "nothing", "rewrite", "fix-date", "break-date", "delete"]),
)


def mixed_store(kind: str, one_pass: bool, ferretdb_server) -> MongoStore:
    if kind == "ferretdb":
        opened = MongoStore.from_url(ferretdb_server.url, database=fresh_database_name())
        opened.test_kind = "ferretdb"
        return opened
    opened = make_mongomock_store(fresh_database_name())
    opened.one_pass_deletes = one_pass
    return opened


def check_mix(store, records, inserts: int, tmp: Path) -> None:
    from bson import ObjectId

    docs = []
    for i, (valid, stamp, _) in enumerate(records):
        doc = {**quote(symbol=f"{i % 5:06d}", day=f"2025-0{1 + i // 28}-{1 + i % 28:02d}" if valid else str(i)),
               "_id": ObjectId()}
        if stamp == "recent":
            doc["updated_at"] = utc_now() - timedelta(minutes=5)
        elif stamp == "absent":
            del doc["updated_at"]
        docs.append(doc)
    store.collection.insert_many(docs)
    original = everything(store)
    touched = set()

    def another_writer(backup) -> None:
        now = utc_now()
        for doc, (_, _, action) in zip(docs, records, strict=True):
            change = {"rewrite": {"close": 77.0}, "fix-date": {"trade_date": "2025-10-01"},
                      "break-date": {"trade_date": "x"}}.get(action)
            if change is not None:
                store.collection.update_one({"_id": doc["_id"]}, {"$set": {**change, "updated_at": now}})
                touched.add(doc["_id"])
            elif action == "delete":
                store.collection.delete_one({"_id": doc["_id"]})
                touched.add(doc["_id"])
        for i in range(inserts):  # new invalid records, as the broken sync would keep writing them
            store.collection.insert_one({**quote(symbol="688001", close=50.0 + i), "trade_date": str(i),
                                         "_id": ObjectId(), "updated_at": now})

    result = clean_invalid_trade_date(store, apply=True, backup_dir=tmp, batch_size=BATCH, on_backup=another_writer)
    backed_up = {d["_id"]: d for d in open_backup(result.manifest).documents()}
    after = everything(store)
    deleted = set(original) - set(after) - {i for i in touched if i not in after}
    assert set(backed_up) == {d["_id"] for d, (valid, _, _) in zip(docs, records, strict=True) if not valid}
    assert deleted <= set(backed_up), "a record outside the backup was deleted"
    assert deleted == set(backed_up) - touched  # backed up and unchanged: deleted; changed: left
    assert all(after[i] == original[i] for i in set(original) - deleted - touched)
    assert len([d for d in after.values() if d.get("symbol") == "688001"]) == inserts
    assert result.deleted == len(deleted)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(records=st.lists(RECORD, min_size=1, max_size=24), inserts=st.integers(0, 2), one_pass=st.booleans())
def test_generated_mixes_delete_the_unchanged_backed_up_records_and_nothing_else_mongomock(
    tmp_path_factory, records, inserts, one_pass
):
    store = mixed_store("mongomock", one_pass, None)
    check_mix(store, records, inserts, tmp_path_factory.mktemp("mix"))


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(records=st.lists(RECORD, min_size=1, max_size=24), inserts=st.integers(0, 2))
def test_generated_mixes_delete_the_unchanged_backed_up_records_and_nothing_else_ferretdb(
    ferretdb, tmp_path_factory, records, inserts
):
    store = mixed_store("ferretdb", True, ferretdb)
    try:
        check_mix(store, records, inserts, tmp_path_factory.mktemp("mix"))
    finally:
        store.client.drop_database(store.database_name)
        store.close()
