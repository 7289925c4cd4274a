"""The one progress display of every command: tqdm on a terminal, a plain line (or nothing) elsewhere.

The library reports ``(done, total, unit)``; this module only shows it:

- stderr is a terminal (and no --quiet): a tqdm bar on stderr with the total, the
  percentage and the time left whenever the total is known (bytes of a file, symbols
  of an API sync, records of a store count); a bare counter when it is not (a pipe);
- not a terminal (cron, CI, a pipe): a plain line every :data:`PLAIN_EVERY_S` seconds, or
  nothing (``plain=False``: commands whose runs are short or whose output is a report);
- -v/--verbose: also one line per report with the time it took (per batch, chunk or symbol);
- --quiet: nothing.

tqdm is imported only when a bar is shown, so ``tacn --help`` stays fast.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tacn.cli.render import Output, terminal_text

PLAIN_EVERY_S = 5.0  # plain progress lines when stderr is not a terminal (cron)
BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_count(value: float, unit: str) -> str:
    """``12.3 MiB`` for bytes, ``1,234 records`` otherwise (``1,234`` with ``unit=""``)."""
    if unit != "bytes":
        return f"{value:,.0f} {unit}".rstrip()
    for name in BYTE_UNITS:
        if abs(value) < 1024 or name == BYTE_UNITS[-1]:
            return f"{value:.0f} {name}" if name == "B" else f"{value:.1f} {name}"
        value /= 1024
    raise AssertionError("unreachable")


def progress_text(label: str, done: int, total: int | None, unit: str, detail: str = "") -> str:
    """The plain line: ``sync: 45.2 MiB of 120.0 MiB (38%), written=…`` (no percentage without a total)."""
    if total:
        of = human_count(done, unit) if unit == "bytes" else human_count(done, "")
        text = f"{label}: {of} of {human_count(total, unit)} ({min(done / total, 1):.0%})"
    else:
        text = f"{label}: {human_count(done, unit)}"
    return f"{text}, {detail}" if detail else text


class ProgressDisplay:
    """Call it with ``(done, total, unit[, detail])`` after each step of a job; use it as a context manager.

    ``wanted`` says whether anything will be shown, so that a command can skip the work of a
    total (a store count) when nobody looks.
    """

    def __init__(self, out: Output, label: str, *, plain: bool = True, clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.label = label
        self.tty = out.progress_shown
        self.plain = plain and not out.quiet and not self.tty
        self.clock = clock
        self.started = self.last_log = self.last_step = clock()
        self.bar = None
        self.last: tuple[int, int | None, str, str] | None = None

    @property
    def wanted(self) -> bool:
        return self.tty or self.plain or self.out.verbose

    def __enter__(self) -> ProgressDisplay:
        return self

    def __call__(self, done: int, total: int | None, unit: str, detail: str = "", step: str = "") -> None:
        """``detail``: running counts shown beside the bar; ``step``: what was just done (-v lines only)."""
        now = self.clock()
        previous = self.last[0] if self.last else 0
        self.last = (done, total, unit, detail)
        if self.out.verbose:
            what = f"{step}: " if step else ""
            self.debug(f"{progress_text(self.label, done, total, unit, detail)} "
                        f"({what}+{human_count(done - previous, unit)} in {now - self.last_step:.2f} s)")
        self.last_step = now
        if self.tty:
            self._draw(done, total, unit, detail)
        elif self.plain and now - self.last_log >= PLAIN_EVERY_S:
            self.last_log = now
            self.out.info(progress_text(self.label, done, total, unit, detail))

    def report(self, progress) -> None:
        """Show a sync :class:`~tacn.pipelines.sync.Progress` (the counts written so far as the detail)."""
        detail = f"{progress.rows_written:,} rows written, {progress.rejected:,} rejected, {progress.failed:,} failed"
        self(progress.done, progress.total, progress.unit, detail, step=progress.note)

    def _draw(self, done: int, total: int | None, unit: str, detail: str) -> None:
        if self.bar is None:
            from tqdm import tqdm

            in_bytes = unit == "bytes"
            # bytes as 12.3M/45.6M; records and symbols as exact counts (3/20, not 3.00/20.0)
            self.bar = tqdm(total=total, desc=self.label, unit="B" if in_bytes else f" {unit}", unit_scale=in_bytes,
                            unit_divisor=1024, leave=False, dynamic_ncols=True)
        if self.bar.total != total:
            self.bar.total = total
        self.bar.set_postfix_str(terminal_text(detail[:60]), refresh=False)  # the bar is terminal output too
        self.bar.update(done - self.bar.n)
        if total is not None and done >= total:
            self.bar.refresh()  # the last step is drawn even when it came sooner than tqdm's refresh interval

    def debug(self, message: str) -> None:
        """A -v line that does not tear the bar: tqdm clears it, the line is printed, the bar is redrawn."""
        if self.bar is None:
            self.out.debug(message)
            return
        with self.bar.external_write_mode(file=sys.stderr):
            self.out.debug(message)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.out.verbose and self.last is not None:
            done, _, unit, _ = self.last
            self.out.debug(f"{self.label}: {human_count(done, unit)} in {self.clock() - self.started:.2f} s")


def step_displays(out: Output, label: str):
    """A :data:`~tacn.pipelines.progress.StepProgress` for a job of several steps: one bar per step,
    described ``label step`` (``repair clean``, ``repair re-sync``, …); None for a step nobody looks at."""
    from contextlib import contextmanager

    @contextmanager
    def steps(name: str):
        with ProgressDisplay(out, f"{label} {name}", plain=False) as display:
            yield display if display.wanted else None

    return steps
