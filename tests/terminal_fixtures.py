"""Reading what a child process writes to a pseudo-terminal (pty), for tests of terminal-only output."""

from __future__ import annotations

import os
import select
import time


def read_terminal(leader: int, timeout: float = 120.0) -> bytes:
    """Everything written to the pty whose leader end is ``leader``, until the child closes it (or ``timeout``)."""
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([leader], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its end (Linux reports EIO)
            break
        if not chunk:
            break
        output += chunk
    return output
