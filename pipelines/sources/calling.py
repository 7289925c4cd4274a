"""Calling a remote source: rate limits, the retry policy, error classification, the retrying caller.

:class:`Backoff` is tacn's one backoff: the ceiling doubles from ``base`` up to ``cap`` and the
delay is the ceiling minus up to ``jitter`` of it (one jitter formula). The sync's retrying
caller uses it through :class:`RetryPolicy` and watch's reconnect loop uses it directly
(:mod:`tacn.pipelines.watch.client`), each with its own numbers.

Nothing here sleeps on its own clock: ``sleep``, ``clock`` and ``rand`` are passed in, so
tests never wait.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tacn.pipelines.errors import AuthRefused

TRANSIENT, RATE_LIMIT, AUTH, PERMANENT = "transient", "rate_limit", "auth", "permanent"
_AUTH_MARKERS = ("token不对", "token无效", "token错误", "api init error", "没有接口访问权限", "权限不足")
_RATE_MARKERS = ("每分钟最多访问", "每小时最多访问", "每天最多访问", "访问频率", "最多访问该接口")
# Source calls spread their retries over the upper half of each slot ("equal jitter"), so
# parallel workers that failed together do not retry together.
SOURCE_JITTER = 0.5


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based): min(cap, base x 2^(n-1)), minus up to ``jitter`` of it."""

    base: float = 1.0
    cap: float = 30.0
    jitter: float = 0.2

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, self.base * 2 ** max(0, attempt - 1))

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """A delay in [ceiling x (1 - jitter), ceiling]; ``rng`` returns a float in [0, 1)."""
        return self.ceiling(attempt) * (1 - self.jitter * rng())


class MinInterval:
    """At least ``interval`` seconds between the starts of calls, across threads."""

    def __init__(self, interval: float, *, clock: Callable[[], float], sleep: Callable[[float], None]):
        self.interval = max(0.0, interval)
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._next: float | None = None

    def wait(self) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            now = self.clock()
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a source call: transient errors back off, rate limits wait."""

    max_attempts: int = 4
    base: float = 1.0
    cap: float = 30.0
    rate_limit_wait: float = 60.0
    backoff: Backoff = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "backoff", Backoff(self.base, self.cap, SOURCE_JITTER))

    def delay(self, attempt: int, kind: str, rand: Callable[[], float]) -> float:
        """The backoff's delay; after a rate-limit refusal, the refusal's wait plus up to ``base`` more."""
        if kind == RATE_LIMIT:
            return self.rate_limit_wait + rand() * self.base
        return self.backoff.delay(attempt, rand)


def classify_error(exc: BaseException) -> tuple[str, str]:
    """(kind, a message safe to show) for an exception raised by a source library."""
    import json

    import requests

    message = str(exc) or type(exc).__name__
    if isinstance(exc, requests.exceptions.Timeout | TimeoutError):
        return TRANSIENT, f"timed out ({type(exc).__name__})"
    if isinstance(exc, requests.exceptions.JSONDecodeError | json.JSONDecodeError):
        return TRANSIENT, "the reply is not JSON (an HTTP error page?)"
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError
                  | ConnectionError):
        text = message
        if "RemoteDisconnected" in text:
            text = "RemoteDisconnected: the server closed the connection without a response"
        elif "refused" in text.lower():
            text = "connection refused"
        return TRANSIENT, f"connection failed: {text[:200]}"
    if isinstance(exc, requests.exceptions.HTTPError):
        status = getattr(exc.response, "status_code", 0) or 0
        return (TRANSIENT if status >= 500 or status == 429 else PERMANENT), f"HTTP {status}"
    if any(marker in message for marker in _AUTH_MARKERS):
        return AUTH, message[:200]
    if any(marker in message for marker in _RATE_MARKERS):
        return RATE_LIMIT, message[:200]
    return PERMANENT, f"{type(exc).__name__}: {message[:200]}"


class CallFailed(Exception):
    """A call failed for good (a permanent error, or the attempts ran out); ``attempts`` made."""

    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True)
class HttpCall:
    """One HTTP request a source library made during a call: what the -v lines show.

    ``url`` is as sent (it may hold a token: whoever prints it scrubs it); ``status`` is None when
    no response came (``error`` says why)."""

    method: str
    url: str
    status: int | None
    elapsed_s: float
    what: str  # the call it belongs to ("000001 quotes", "stock list")
    attempt: int
    error: str | None = None


OnHttpCall = Callable[[HttpCall], None]

# The observer of the HTTP requests made on this thread (each sync worker calls its source on its own
# thread). The source libraries (akshare, tushare) call ``requests`` themselves and take no hook, so
# ``requests.Session.send`` (through which every requests call goes, each redirect too) is wrapped once,
# the first time someone observes; unobserved calls pass straight through.
_observer = threading.local()
_send_wrapped = threading.Lock()


def _wrap_requests_send() -> None:
    import requests

    with _send_wrapped:
        original = requests.Session.send
        if getattr(original, "tacn_observed", False):
            return

        def send(session, request, **kwargs):
            report = getattr(_observer, "report", None)
            if report is None:
                return original(session, request, **kwargs)
            started = time.perf_counter()
            try:
                response = original(session, request, **kwargs)
            except Exception as exc:
                report(request.method, request.url, None, time.perf_counter() - started, type(exc).__name__)
                raise
            report(request.method, request.url, response.status_code, time.perf_counter() - started, None)
            return response

        send.tacn_observed = True
        requests.Session.send = send


@contextmanager
def observing_http(on_http_call: OnHttpCall | None, what: str, attempt: int) -> Iterator[None]:
    """Report every HTTP request this thread makes inside the block to ``on_http_call`` (nothing when None)."""
    if on_http_call is None:
        yield
        return
    _wrap_requests_send()

    def report(method, url, status, elapsed_s, error):
        on_http_call(HttpCall(method or "?", url or "?", status, elapsed_s, what, attempt, error))

    previous = getattr(_observer, "report", None)
    _observer.report = report
    try:
        yield
    finally:
        _observer.report = previous


class RetryingCaller:
    """Calls a source with its rate limit and the retry policy; counts attempts.

    An auth refusal raises :class:`AuthRefused` and stops every later call (``stopped``);
    other failures raise :class:`CallFailed` once they are permanent or the attempts run out.
    ``on_http_call``: told of every HTTP request the source's library makes (the CLI's -v lines).
    """

    def __init__(self, limiter: MinInterval, policy: RetryPolicy, sleep: Callable[[float], None],
                 rand: Callable[[], float], source: str, on_http_call: OnHttpCall | None = None):
        self.limiter, self.policy, self.sleep, self.rand, self.source = limiter, policy, sleep, rand, source
        self.on_http_call = on_http_call
        self.stopped = threading.Event()  # set on an auth refusal: no worker starts another request

    def __call__(self, call: Callable[[], Any], what: str) -> tuple[Any, int]:
        for attempt in range(1, self.policy.max_attempts + 1):
            self.limiter.wait()
            if self.stopped.is_set():
                raise CallFailed("not attempted: the run stopped", attempt - 1)
            try:
                with observing_http(self.on_http_call, what, attempt):
                    return call(), attempt
            except Exception as exc:  # noqa: BLE001 - classified below; nothing escapes unexamined
                kind, message = classify_error(exc)
                if kind == AUTH:
                    self.stopped.set()
                    raise AuthRefused(f"{self.source} refused the request ({what}): {message}. "
                                      "Check the token and its permissions; nothing was retried.") from None
                if kind == PERMANENT or attempt == self.policy.max_attempts:
                    tried = f" after {attempt} attempts" if attempt > 1 else ""
                    raise CallFailed(f"{message}{tried}", attempt) from None
                self.sleep(self.policy.delay(attempt, kind, self.rand))
        raise AssertionError("unreachable")  # pragma: no cover
