"""A real redis-server on a free 127.0.0.1 port, persistence off, stopped afterwards.

Skips only when no ``redis-server`` is installed (``make test`` installs it with apt when root,
and fails instead of skipping: see :func:`server_unavailable`).
Wrap ``running_redis`` in a fixture of the test module that needs a server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

import pytest

START_TIMEOUT_S = 10.0
REQUIRE_SERVERS_ENV = "TACN_TEST_REQUIRE_SERVERS"  # set by `make test`


def server_unavailable(reason: str) -> NoReturn:
    """A test's server or browser is missing: skip with the reason under a plain pytest (e.g. from an
    unpacked sdist), fail under ``make test``, which installs every one of them."""
    if os.environ.get(REQUIRE_SERVERS_ENV):
        pytest.fail(f"{reason}; `make test` requires it ({REQUIRE_SERVERS_ENV} is set)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    password: str | None

    def client(self, **kwargs):
        import redis

        return redis.Redis(host=self.host, port=self.port, password=self.password, socket_timeout=5,
                           decode_responses=True, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp_path, password: str | None = None):
    """Start redis-server; return (process, RedisServer) once it answers PING."""
    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        server_unavailable("redis-server is not installed (make test installs it when run as root)")
    port = free_port()
    args = [exe, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
            "--dir", str(tmp_path)]
    if password:
        args += ["--requirepass", password]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = RedisServer("127.0.0.1", port, password)
    probe = server.client()
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            probe.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {proc.stderr.read().decode(errors='replace')[:500]}") from None
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("redis-server did not answer PING in time") from None
            try:  # wait on the process, not a blind sleep: returns early if it dies
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
    probe.close()
    return proc, server


def stop_redis(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def running_redis(tmp_path, password: str | None = None) -> Iterator[RedisServer]:
    """``with running_redis(tmp_path) as server:`` — for a fixture in the test module that needs it."""
    proc, server = start_redis(tmp_path, password)
    try:
        yield server
    finally:
        stop_redis(proc)
