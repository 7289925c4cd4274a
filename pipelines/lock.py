"""One run at a time per store.

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
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tacn.pipelines.errors import LockHeld, StoreError
from tacn.validators.records import utc_now

LOCK_COLLECTION = "tacn_locks"
DEFAULT_TTL = timedelta(minutes=10)


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
VERIFY_INTERVAL_S = 1.0  # MongoDB: at most one lock check per second of writes


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


class MongoLock:
    """A lock document ``{_id: name, pid, host, started_at, expires_at}`` renewed while held."""

    def __init__(self, db: Any, name: str = "sync", purpose: str = "", *, ttl: timedelta = DEFAULT_TTL,
                 clock=utc_now, heartbeat: bool = True):
        self.collection = db[LOCK_COLLECTION]
        self.name = name
        self.info = LockInfo.mine(name, purpose)
        self.previous: LockInfo | None = None
        self.ttl = ttl
        self.clock = clock
        self.heartbeat = heartbeat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held = False
        self._lost = False
        self._verified_at = 0.0

    def _document(self) -> dict:
        return {"_id": self.name, **self.info.__dict__, "expires_at": self.clock() + self.ttl}

    def acquire(self) -> MongoLock:
        from pymongo.errors import DuplicateKeyError

        try:
            self.collection.insert_one(self._document())
        except DuplicateKeyError:
            current = self.collection.find_one({"_id": self.name})
            now = self.clock()
            if (current is not None and current.get("expires_at") is not None and current["expires_at"] > now
                    and not _holder_is_gone(current)):
                holder = _info_from_doc(current)
                raise LockHeld(
                    f"another {self.name} run holds the lock on this store: {holder.describe()} "
                    f"(document {self.name!r} in {LOCK_COLLECTION}, expires {current['expires_at']:%Y-%m-%d %H:%M:%S} "
                    "UTC unless renewed); this run did nothing."
                ) from None
            # Stale (expired, or vanished meanwhile): take it over unless another run just did.
            condition = {"_id": self.name}
            if current is not None:
                condition["expires_at"] = current.get("expires_at")
            taken = self.collection.find_one_and_replace(condition, self._document(), upsert=current is None)
            if current is not None and taken is None:
                raise LockHeld(f"another {self.name} run took over the stale lock on this store first") from None
            self.previous = _info_from_doc(current) if current else None
        self._held = True
        if self.heartbeat:
            self._thread = threading.Thread(target=self._renew_loop, name="tacn-lock-heartbeat", daemon=True)
            self._thread.start()
        return self

    def _mine(self) -> dict:
        return {"_id": self.name, "pid": self.info.pid, "host": self.info.host, "started_at": self.info.started_at}

    def renew(self) -> None:
        if self.collection.update_one(self._mine(), {"$set": {"expires_at": self.clock() + self.ttl}}).matched_count == 0:
            self._lost = True

    def verify(self) -> None:
        """Raise LockLost when the lock document is no longer this run's (checked at most once a second)."""
        import time

        if not self._held:
            return
        now = time.monotonic()
        if not self._lost and now - self._verified_at < VERIFY_INTERVAL_S:
            return
        if self._lost or self.collection.find_one(self._mine(), {"_id": 1}) is None:
            self._lost = True
            raise LockLost(
                f"the lock document {self.name!r} in {LOCK_COLLECTION} was removed or taken over during this run, "
                "so another run could start unnoticed; this run stopped before its next write."
            )
        self._verified_at = now

    def _renew_loop(self) -> None:
        interval = max(self.ttl.total_seconds() / 3, 1.0)
        while not self._stop.wait(interval):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a missed renewal only shortens the expiry
                pass

    def release(self) -> None:
        if not self._held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        from pymongo.errors import ConnectionFailure

        try:
            self.collection.delete_one(self._mine())
        except ConnectionFailure:
            pass  # the server is gone: the error that ends the run says so; the next run takes the lock over
        self._held = False

    def __enter__(self) -> MongoLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder_is_gone(doc: dict) -> bool:
    """The lock was written on this host by a process that no longer exists (killed, or lost its server)."""
    if doc.get("host") != socket.gethostname() or not isinstance(doc.get("pid"), int) or doc["pid"] <= 0:
        return False
    try:
        os.kill(doc["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _info_from_doc(doc: dict) -> LockInfo:
    started = doc.get("started_at")
    if isinstance(started, datetime):
        started = started.isoformat(sep=" ", timespec="seconds")
    return LockInfo(str(doc.get("name", doc.get("_id"))), int(doc.get("pid") or 0), str(doc.get("host", "?")),
                    str(started), str(doc.get("purpose", "")))


class GuardedLock:
    """A lock that, while held, makes ``store`` check it before every write batch."""

    def __init__(self, lock: FileLock | MongoLock, store: Any):
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


def store_lock(store: Any, name: str = "sync", purpose: str = "") -> GuardedLock:
    """The lock for ``store``: a lock file beside an SQLite database, a lock document in MongoDB."""
    if store.kind == "sqlite":
        return GuardedLock(FileLock(lock_path_for(store.path, name), name, purpose), store)
    return GuardedLock(MongoLock(store.db, name, purpose), store)
