"""One run at a time per store.

Each store provides its own lock (``store.run_lock(name, purpose)``); :func:`store_lock`
wraps it so that, while held, the store checks it before every write batch. This module
holds what every lock shares (the holder's details, :class:`LockLost`, the guard) and the
file lock; the MongoDB lease document lives with its store (:mod:`tacn.pipelines.stores.mongo_lock`).

- SQLite: an ``fcntl.flock`` on a lock file beside the database's *real* path
  (``<realpath of db>.lock``), so a run through a symlink meets the same lock.
  The kernel releases it when the holder dies, however it dies (SIGKILL
  included), so a stale lock is simply free. The holder writes who it is (pid,
  host, started_at) into the file for the message the next run shows.
- MongoDB: a document in ``tacn_locks`` with an expiry that the holder renews
  from a heartbeat thread. An expired document is stale and is taken over.

A run that finds the lock held raises :class:`~tacn.pipelines.errors.LockHeld`
(exit 3), naming the holder and since when.

A lock can be lost under a run: its file deleted (a second run would then lock a
new file and start) or its document removed. The holder keeps the file open and,
before every write batch (``store.write_guard``, set while the lock is held),
checks that the path still names the inode it locked, or that the document is
still its own; if not it raises :class:`LockLost` (exit 3) and writes nothing more.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tacn.pipelines.errors import LockHeld, StoreError
from tacn.validators.records import utc_now

if TYPE_CHECKING:
    from tacn.pipelines.stores.base import QuoteStore


@dataclass
class LockInfo:
    name: str
    pid: int
    host: str
    started_at: str  # ISO, naive UTC
    purpose: str = ""

    @classmethod
    def mine(cls, name: str, purpose: str) -> LockInfo:
        return cls(name, os.getpid(), socket.gethostname(), utc_now().isoformat(sep=" ", timespec="seconds"), purpose)

    def describe(self) -> str:
        what = f" ({self.purpose})" if self.purpose else ""
        return f"pid {self.pid} on {self.host}{what} since {self.started_at} UTC"


class LockLost(LockHeld):
    """The lock was removed or replaced while this run held it: the run stops before its next write."""

    kind = "lock_lost"


class FileLock:
    """An exclusive, non-blocking flock on ``path``; holder details written into the file."""

    def __init__(self, path: Path, name: str = "sync", purpose: str = ""):
        self.path = Path(path)
        self.info = LockInfo.mine(name, purpose)
        self.previous: LockInfo | None = None  # a dead holder's details, when we took its lock over
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = holder.describe() if holder else "another process"
            raise LockHeld(
                f"another {self.info.name} run holds the lock on this store: {who} (lock file {self.path}); "
                "this run did nothing. It is released when that run ends or dies."
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        self.previous = _read_info(fd)  # left by a holder that died without cleaning up
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(self.info.__dict__).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def verify(self) -> None:
        """Raise LockLost unless the lock file's path still names the file this run locked."""
        if self._fd is None:
            return
        held = os.fstat(self._fd)
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if current is None or (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino):
            what = "removed" if current is None else "replaced by another file"
            raise LockLost(
                f"the lock file {self.path} was {what} during this run, so another run could start "
                "unnoticed; this run stopped before its next write (what it wrote before is complete). "
                "Check that no other run is writing, then run again."
            )

    def release(self) -> None:
        import fcntl

        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


HOLDER_INFO_WAIT_S = 1.0


def _read_holder(fd: int) -> LockInfo | None:
    """The holder's details. A holder writes them right after taking the flock, so a
    run that arrives in between waits (briefly) for them rather than naming nobody."""
    import time

    deadline = time.monotonic() + HOLDER_INFO_WAIT_S
    holder = _read_info(fd)
    while holder is None and time.monotonic() < deadline:
        time.sleep(0.01)
        holder = _read_info(fd)
    return holder


def _read_info(fd: int) -> LockInfo | None:
    try:
        data = os.pread(fd, 4096, 0)
        raw = json.loads(data.decode()) if data.strip() else None
        return LockInfo(**raw) if isinstance(raw, dict) else None
    except (OSError, ValueError, TypeError):
        return None


class RunLock(Protocol):
    """What a store's lock does (:meth:`QuoteStore.run_lock`): a file lock, a lease document, …"""

    info: LockInfo
    previous: LockInfo | None  # a dead holder's details, when this run took its lock over

    def acquire(self) -> RunLock: ...
    def verify(self) -> None: ...
    def release(self) -> None: ...


class GuardedLock:
    """A lock that, while held, makes ``store`` check it before every write batch."""

    def __init__(self, lock: RunLock, store: QuoteStore):
        self.lock = lock
        self.store = store
        self._previous_guard = None

    def __getattr__(self, name: str) -> Any:  # info, previous, path, …
        return getattr(self.lock, name)

    def acquire(self) -> GuardedLock:
        self.lock.acquire()
        self._previous_guard = getattr(self.store, "write_guard", None)
        self.store.write_guard = self.lock.verify
        return self

    def verify(self) -> None:
        self.lock.verify()

    def release(self) -> None:
        self.store.write_guard = self._previous_guard
        self.lock.release()

    def __enter__(self) -> GuardedLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path_for(db_path: Path | str, name: str = "sync") -> Path:
    """The lock file of an SQLite database: beside its real path (symlinks resolved)."""
    real = os.path.realpath(db_path)
    return Path(f"{real}.lock") if name == "sync" else Path(f"{real}.{name}.lock")


def store_lock(store: QuoteStore, name: str = "sync", purpose: str = "") -> GuardedLock:
    """The lock for ``store`` (whichever kind the store provides: ``store.run_lock``), guarding its writes."""
    return GuardedLock(store.run_lock(name, purpose), store)
