"""A real MongoDB wire-protocol server for the tests: FerretDB v1 on SQLite, 127.0.0.1, a free port.

``make test`` builds the binary once (scripts/build-ferretdb.sh, outside the clone) and
exports its path as ``TACN_FERRETDB_BIN``: then the server is required, and a binary that
is missing or does not start fails the tests. Without that variable (a plain ``pytest``,
e.g. from an unpacked sdist) the default build location is used when it holds a binary,
and the FerretDB tests are skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.redis_fixtures import free_port, server_unavailable

BIN_ENV = "TACN_FERRETDB_BIN"
DEFAULT_BIN = Path.home() / ".cache" / "tacn" / "ferretdb" / "bin" / "ferretdb"
START_TIMEOUT_S = 30.0


def ferretdb_binary() -> Path:
    """The server binary, or a skip (plain pytest) / failure (make test) saying why there is none."""
    required = os.environ.get(BIN_ENV)
    path = Path(required) if required else DEFAULT_BIN
    if os.access(path, os.X_OK):
        return path
    reason = f"FerretDB server not built ({path} missing): `make test` builds it (scripts/build-ferretdb.sh)"
    if required:
        pytest.fail(reason, pytrace=False)
    server_unavailable(reason)


class FerretServer:
    """One FerretDB process on its own SQLite directory; can be killed, paused and started again."""

    def __init__(self, binary: Path, root: Path):
        self.binary = binary
        self.data_dir = root / "data"
        self.state_dir = root / "state"
        self.log_path = root / "ferretdb.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> FerretServer:
        """Start the server (again, on the same data directory and port) and wait until it accepts."""
        args = [
            str(self.binary),
            "--handler=sqlite",
            f"--sqlite-url=file:{self.data_dir}/",
            f"--listen-addr=127.0.0.1:{self.port}",
            f"--state-dir={self.state_dir}",
            "--debug-addr=-",  # no HTTP listener (the default is the fixed port 8088)
            "--telemetry=disable",
            "--log-level=error",
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                pass
            try:  # wait on the process, not a blind sleep: returns at once if it dies
                self.proc.wait(timeout=0.05)
                raise RuntimeError(f"ferretdb exited at start: {self.log_tail()}")
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"ferretdb did not listen within {START_TIMEOUT_S:.0f}s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request, as in a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused process must be able to die
            self.proc.kill()
            self.proc.wait(timeout=30)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections open but stops answering."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


def start_ferretdb(root: Path) -> FerretServer:
    return FerretServer(ferretdb_binary(), root).start()
