"""The store lock names its holder even when a second run arrives before the holder wrote its details."""

from __future__ import annotations

import pytest

from tacn.pipelines import lock
from tacn.pipelines.errors import LockHeld


def test_second_run_waits_for_the_holders_details_instead_of_naming_nobody(tmp_path, monkeypatch):
    path = tmp_path / "store.db.lock"
    holder = lock.FileLock(path, purpose="tacn sync").acquire()
    real_read = lock._read_info
    calls = []

    def read_while_the_holder_is_still_writing(fd):
        calls.append(fd)
        return None if len(calls) <= 3 else real_read(fd)  # empty file, as between flock and write

    monkeypatch.setattr(lock, "_read_info", read_while_the_holder_is_still_writing)
    try:
        with pytest.raises(LockHeld, match=rf"pid {holder.info.pid} on .* since "):
            lock.FileLock(path).acquire()
        assert len(calls) == 4
    finally:
        holder.release()


def test_a_holder_that_never_writes_is_reported_as_another_process(tmp_path, monkeypatch):
    path = tmp_path / "store.db.lock"
    holder = lock.FileLock(path).acquire()
    monkeypatch.setattr(lock, "_read_info", lambda fd: None)
    monkeypatch.setattr(lock, "HOLDER_INFO_WAIT_S", 0.05)
    try:
        with pytest.raises(LockHeld, match="another process"):
            lock.FileLock(path).acquire()
    finally:
        holder.release()
    lock.FileLock(path).acquire().release()  # free again once released


# -- the lock is on the store's real path, and a run notices when it loses it -------------------
def _seeded_sqlite(path):
    from tacn.pipelines.stores.sqlite import SQLiteStore
    from tests.clean_fixtures import seed

    store = SQLiteStore(path)
    seed(store)
    return store


def test_a_run_through_a_symlink_meets_the_lock_of_the_real_file(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    with SQLiteStore(real) as store:
        link.symlink_to(real)
        with lock.store_lock(store, "sync", "tacn sync"), SQLiteStore(link) as via_link:
            with pytest.raises(LockHeld, match="tacn sync"):
                lock.store_lock(via_link).acquire()
        with SQLiteStore(link) as via_link:
            lock.store_lock(via_link).acquire().release()  # free once released


def test_clean_through_a_symlink_is_refused_while_a_run_holds_the_real_store(tmp_path):
    from typer.testing import CliRunner

    from tacn.cli.app import app

    real, link = tmp_path / "real.db", tmp_path / "link.db"
    with _seeded_sqlite(real) as store:
        link.symlink_to(real)
        with lock.store_lock(store, "sync", "tacn sync"):
            result = CliRunner().invoke(app, ["clean-invalid-trade-date", "--yes", "--store", f"sqlite:///{link}",
                                              "--backup-dir", str(tmp_path / "bk")])
        assert result.exit_code == 3 and "holds the lock" in result.stderr
        assert store.count_invalid_trade_date() > 0


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_lock_file_removed_under_a_run_stops_its_next_write(tmp_path, how):
    from tests.clean_fixtures import quote

    with _seeded_sqlite(tmp_path / "s.db") as store:
        before = store.count()
        with lock.store_lock(store, "sync", "tacn sync") as held:
            store.upsert([quote(symbol="688001")])  # the lock is fine: written
            held.path.unlink()
            if how == "replaced":  # a second run locked a new file: it got in
                second = lock.FileLock(held.path).acquire()
            with pytest.raises(lock.LockLost, match=f"was {how}"):
                store.upsert([quote(symbol="688002")])
            with pytest.raises(lock.LockLost):
                store.delete_by_ids([d["_id"] for d in store.iter_documents()])
            if how == "replaced":
                second.release()
        assert store.count() == before + 1
        assert store.write_guard is None  # released: no guard left behind
        store.upsert([quote(symbol="688002")])


def test_a_mongodb_lock_document_removed_under_a_run_stops_its_next_write(monkeypatch):
    from tacn.pipelines.stores import mongo_lock
    from tests.clean_fixtures import quote
    from tests.conftest import make_mongomock_store

    monkeypatch.setattr(mongo_lock, "VERIFY_INTERVAL_S", 0.0)
    store = make_mongomock_store()
    with lock.store_lock(store, "sync", "tacn sync"):
        store.upsert([quote(symbol="688001")])
        store.db[mongo_lock.LOCK_COLLECTION].delete_many({})
        with pytest.raises(lock.LockLost, match="removed or taken over"):
            store.upsert([quote(symbol="688002")])
    assert store.count() == 1


def test_clean_stops_with_exit_3_when_its_lock_file_is_deleted_mid_run(tmp_path):
    """A real `tacn clean-invalid-trade-date --yes`, paused once its backup is complete: the lock file
    is deleted and a second run takes a new lock; resumed, the first run deletes nothing, exit 3."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.clean_fixtures import content_hash

    path = tmp_path / "s.db"
    with _seeded_sqlite(path) as store:
        before = content_hash(store)
    ready, resume = tmp_path / "ready", tmp_path / "resume"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "TACN_TEST_PAUSE_AT": "manifest-written",
           "TACN_TEST_PAUSE_FILE": str(ready), "TACN_TEST_RESUME_FILE": str(resume)}
    proc = subprocess.Popen([sys.executable, "-m", "tacn.cli", "clean-invalid-trade-date", "--yes", "--store",
                             f"sqlite:///{path}", "--backup-dir", str(tmp_path / "bk")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():  # the run reached the point: its backup is complete, nothing deleted
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "clean never reached manifest-written"
            time.sleep(0.02)
        lock_file = lock.lock_path_for(path)
        lock_file.unlink()
        second = lock.FileLock(lock_file).acquire()  # without detection this run would now run alongside
        resume.touch()
        out, err = proc.communicate(timeout=60)
        second.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("store:")]
    assert len(lines) == 1 and "lock file" in lines[0] and "was replaced" in lines[0]
    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(path) as store:
        assert content_hash(store) == before


def test_restore_is_refused_while_a_run_holds_the_store_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from tacn.cli.app import app
    from tacn.pipelines.recovery.clean import clean_invalid_trade_date

    path = tmp_path / "real.db"
    with _seeded_sqlite(path) as store:
        cleaned = clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path / "bk")
        before = store.count()
        with lock.store_lock(store, "sync", "tacn sync"):
            result = CliRunner().invoke(app, ["restore", str(cleaned.manifest), "--store", f"sqlite:///{path}"])
        assert result.exit_code == 3 and "holds the lock" in result.stderr, result.output
        assert store.count() == before  # nothing put back under another run's lock
        again = CliRunner().invoke(app, ["restore", str(cleaned.manifest), "--store", f"sqlite:///{path}"])
        assert again.exit_code == 0, again.output
        assert store.count() > before
