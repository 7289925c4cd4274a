"""Helpers of the watch tests: the CLI runner, the library in a thread, JSON lines, unsafe characters."""

from __future__ import annotations

import json
import threading
import unicodedata

from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.watch.client import Backoff, WatchConfig, watch
from tests.redis_fixtures import free_port  # noqa: F401 - re-exported for the watch tests

SECRET = "test-jwt-secret-0123456789abcdef0123456789abcdef"
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
runner = CliRunner()


def run_cli(*args, env=None):
    return runner.invoke(app, ["watch", *args], env=env)


def in_background(fn) -> threading.Thread:
    """Server-side script of a test (publish after the client connected, restart, …)."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.split("\n") if line]  # every stdout line must be JSON


def unsafe_chars(text: str) -> set[str]:
    """The characters of ``text`` that could drive a terminal (control, format, bidi, zero-width…)."""
    return {c for c in text if unicodedata.category(c) in UNSAFE_CATEGORIES}


class Watching:
    """The library's watch() in a thread, its events recorded for waiting on."""

    def __init__(self, config: WatchConfig, run=watch, **kwargs):
        self.config, self.events, self.result, self.error = config, [], None, None
        self.cond, self.stop, self.done = threading.Condition(), threading.Event(), False
        self._runner, self._kwargs = run, kwargs
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _emit(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def _run(self):
        try:
            self.result = self._runner(self.config, self._emit, stop=self.stop, **self._kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()

    def wait(self, predicate, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.events), timeout=timeout)

    def finish(self, timeout: float = 10.0):
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive()

    def of(self, kind: str):
        return [e for e in self.events if e.kind == kind]


def config_for(url: str, token: str, **overrides) -> WatchConfig:
    fields = {"url": url, "token": token, "backoff": Backoff(base=0.2, cap=1.0)}
    fields.update(overrides)
    return WatchConfig(**fields)
