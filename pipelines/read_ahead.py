"""Read ahead: produce the next item of a read in a worker thread while the consumer works on this one.

Worth it where producing releases the GIL (a columnar read in C: ADBC's SQLite driver steps the
query and fills Arrow buffers without it), so that the read and the judging of the previous chunk
use both cores. One item ahead at most, so memory stays bounded per chunk.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.05  # how often a blocked worker looks at the stop flag (not a wait for a race)


class ReadAhead(Generic[T]):
    """Iterate ``items``, an iterator run entirely in a worker thread, one item ahead of the consumer.

    The worker starts at construction (so a read can begin while the caller still prepares), produces
    one item, and produces the next only once the consumer has taken that one. An exception raised by
    ``items`` is raised to the consumer in its place. :meth:`close` (also called at the end, and on
    garbage collection) stops the worker after the item it is producing and waits for it; as a context
    manager it closes on the way out, without waiting when the way out is Ctrl-C.
    """

    def __init__(self, items: Iterator[T], *, name: str = "tacn-read-ahead") -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._turn = threading.Semaphore(1)  # released by each take: the worker may produce one more
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=_produce, args=(items, self._queue, self._turn, self._stop),
                                        name=name, daemon=True)
        weakref.finalize(self, self._stop.set)  # dropped unread: the worker ends at its next look
        self._thread.start()

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._ended:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            self._turn.release()
            return value
        self.close()
        if kind == "error":
            raise value
        raise StopIteration

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        # Ctrl-C: do not wait for the item being produced (the worker, a daemon, ends after it)
        self.close(wait=not (kind is not None and issubclass(kind, KeyboardInterrupt)))

    def close(self, *, wait: bool = True) -> None:
        """Stop the worker and wait for it (at most the item it is producing); ``wait=False`` (Ctrl-C): do not
        wait, the worker (a daemon) ends after that item, or with the process."""
        self._ended = True
        self._stop.set()
        if wait:
            self._thread.join()


def _produce(items: Iterator, out: queue.SimpleQueue, turn: threading.Semaphore, stop: threading.Event) -> None:
    try:
        while True:
            while not turn.acquire(timeout=_POLL_SECONDS):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            try:
                item = next(items)
            except StopIteration:
                out.put(("end", None))
                return
            out.put(("item", item))
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
        out.put(("error", exc))
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
