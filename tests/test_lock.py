"""The store lock names its holder even when a second run arrives before the holder wrote its details."""

from __future__ import annotations

import pytest

from pipelines import lock
from pipelines.errors import LockHeld


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
