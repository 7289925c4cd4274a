"""How a long job says how far it is. The library never prints: it calls ``progress(done, total, unit)``
(``total`` None when it cannot be known, e.g. a pipe) and the CLI shows it (``tacn.cli.progress``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

ProgressReport = Callable[[int, "int | None", str], None]
# A job of several steps (repair: clean, re-sync, verify-fix) opens one report per step, named by the
# step: ``with steps("clean") as progress:``; ``progress`` is None when nobody looks.
StepProgress = Callable[[str], AbstractContextManager["ProgressReport | None"]]


def step(steps: StepProgress | None, name: str) -> AbstractContextManager[ProgressReport | None]:
    """``steps(name)``, or a context that gives None when the caller passed no ``steps``."""
    return nullcontext() if steps is None else steps(name)

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
