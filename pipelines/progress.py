"""How a long job says how far it is. The library never prints: it calls ``progress(done, total, unit)``
(``total`` None when it cannot be known, e.g. a pipe) and the CLI shows it (``tacn.cli.progress``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

ProgressReport = Callable[[int, "int | None", str], None]

T = TypeVar("T")

EVERY = 10_000  # items between two reports of a counted stream


def counted(items: Iterable[T], total: int | None, progress: ProgressReport | None, unit: str = "records",
            every: int = EVERY) -> Iterator[T]:
    """``items`` as they are consumed, reporting every ``every`` items and once at the end."""
    if progress is None:
        yield from items
        return
    done = 0
    for item in items:
        yield item
        done += 1
        if done % every == 0:
            progress(done, total, unit)
    if done % every:
        progress(done, total, unit)
