"""Reading a path that may be a stream: a FIFO, a pipe (``<(…)``, ``/dev/fd/N``) or a device.

A stream can be read only once, may never end (``/dev/zero``) and, for a FIFO, may
never be written to. So: :func:`open_input` opens without blocking and waits for a
writer at most ``timeout_s`` seconds (then raises, exit 3, rather than hang);
:func:`iter_lines` reads line by line with a per-line size limit (never the whole
file: backups can be gigabytes) and :func:`read_bounded` reads a small file whole
with a size limit (env files).
"""

from __future__ import annotations

import os
import select
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from tacn.pipelines.errors import TacnError

DEFAULT_TIMEOUT_S = 5.0


def is_stream(path: Path | str) -> bool:
    """True for anything but a regular file (FIFO, pipe, character device, socket)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def connect_timeout(environ: dict | None = None) -> float:
    """TACN_CONNECT_TIMEOUT in seconds (a bad value is reported where options are parsed)."""
    text = (os.environ if environ is None else environ).get("TACN_CONNECT_TIMEOUT")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if 0 < value <= 600 else DEFAULT_TIMEOUT_S


def open_input(path: Path | str, *, what: str, timeout_s: float, error: type[TacnError]) -> BinaryIO:
    """``path`` opened for binary reading. A FIFO or pipe nobody writes to within ``timeout_s``
    seconds raises ``error`` (a FIFO's plain open would block until a writer comes, forever)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISFIFO(mode):
            return open(path, "rb")  # noqa: SIM115 - the caller closes it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # returns at once, writer or not
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    # Linux reports POLLIN once there is data, POLLHUP once a writer came and went;
    # neither while nobody has opened the other end.
    if not poller.poll(max(timeout_s, 0.0) * 1000):
        os.close(fd)
        raise error(f"{what} {path} is a FIFO and nothing was written to it within {timeout_s:g} s "
                    "(TACN_CONNECT_TIMEOUT); gave up")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _size(count: int) -> str:
    return f"{count:,} bytes"


def iter_lines(fh: BinaryIO, *, what: str, limit: int, error: type[TacnError]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each line of ``fh``; a line longer than ``limit`` bytes raises ``error``."""
    number = 0
    while True:
        line = fh.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not (len(line) == limit + 1 and line.endswith(b"\n")):
            raise error(f"{what}: line {number} is longer than {_size(limit)} (the per-line limit); "
                        "not a file of documents, or damaged")
        yield number, line


def read_bounded(fh: BinaryIO, *, what: str, limit: int, error: type[TacnError]) -> bytes:
    """The whole content of ``fh``, which must not exceed ``limit`` bytes."""
    data = fh.read(limit + 1)
    if len(data) > limit:
        raise error(f"{what} is larger than {_size(limit)}; not read")
    return data
