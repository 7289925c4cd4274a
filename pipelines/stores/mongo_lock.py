"""The MongoDB store's run lock: a lease document in ``tacn_locks`` renewed while held.

An expired document is stale and is taken over; so is one written on this host by a process
that no longer exists. See :mod:`tacn.pipelines.lock` for what every store's lock shares.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

from tacn.pipelines.errors import LockHeld
from tacn.pipelines.lock import LockInfo, LockLost
from tacn.validators.records import utc_now

LOCK_COLLECTION = "tacn_locks"
DEFAULT_TTL = timedelta(minutes=10)
VERIFY_INTERVAL_S = 1.0  # at most one lock check per second of writes


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
