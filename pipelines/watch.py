"""tacn watch: tail TradingAgents-CN's WebSocket notification stream and stay connected.

The connection loop uses websocket-client's low-level ``create_connection`` and
``recv_data_frame`` with a short socket timeout rather than ``WebSocketApp.run_forever``:
run_forever swallows SIGINT, reconnects with a fixed delay even after a normal close and
hides errors while reconnecting, whereas here the backoff, the attempt limit, the heartbeat
watchdog, the fatal auth cases and a clean close on Ctrl-C are all under our control.

The library never prints: ``watch`` calls ``emit`` with a :class:`WatchEvent` for each message
to show and each connection event, and returns a :class:`WatchResult` (or raises a typed error).

Task streams end on a ``progress`` message whose ``data.status`` (case-insensitive) is in
:data:`TASK_COMPLETED` (exit 0) or :data:`TASK_FAILED` (exit 1).
"""

from __future__ import annotations

import json
import random
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

from pipelines.errors import AuthRefused, ConfigError, SourceError, UsageError

KNOWN_TYPES = ("connected", "heartbeat", "notification", "progress")
TASK_COMPLETED = frozenset({"completed", "complete", "success", "succeeded", "done", "finished"})
TASK_FAILED = frozenset({"failed", "failure", "error", "cancelled", "canceled"})
DEFAULT_API_URL = "http://localhost:8000"
NOTIFICATIONS_PATH = "/api/ws/notifications"
TASKS_PATH = "/api/ws/tasks/"
STATS_PATH = "/api/ws/stats"
DEFAULT_HEARTBEAT_TIMEOUT = 75.0  # 2.5 x the server's 30 s heartbeat
MAX_FRAME_BYTES = 1 << 20  # larger frames are read, then skipped with a warning
DROP_FRAME_FACTOR = 64  # a frame announcing more than 64 x that is not read at all: the connection is dropped
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_POLICY = 1000, 1001, 1008
_SNIPPET = 80


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based): min(cap, base x 2^(n-1)), minus up to ``jitter`` of it."""

    base: float = 1.0
    cap: float = 30.0
    jitter: float = 0.2

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, self.base * 2 ** max(0, attempt - 1))

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling * (1 - self.jitter * rng())


@dataclass
class WatchConfig:
    url: str  # the endpoint without the token
    token: str
    token_origin: str = "given with --token"  # said when the token is refused
    minted: bool = False
    types: frozenset[str] | None = None  # None: every type
    count: int | None = None
    timeout: float | None = None
    max_retries: int | None = None  # None: retry forever
    heartbeat_timeout: float | None = DEFAULT_HEARTBEAT_TIMEOUT  # None: watchdog off
    task_id: str | None = None
    verbose: bool = False
    insecure: bool = False
    backoff: Backoff = field(default_factory=Backoff)
    stable_after: float = 10.0  # a connection open this long resets the retry counter
    connect_timeout: float = 10.0
    max_frame_bytes: int = MAX_FRAME_BYTES
    tick: float = 0.25  # how often a quiet connection checks the deadline, stop and watchdog


@dataclass
class WatchEvent:
    """``kind``: message (show it), connected, disconnected, retry, closed (diagnostics), warning."""

    kind: str
    text: str = ""
    message: dict | None = None
    delay: float | None = None
    attempt: int | None = None
    at: float = 0.0  # time.monotonic() when it happened


@dataclass
class WatchResult:
    shown: int = 0
    connections: int = 0
    reconnects: int = 0
    warnings: int = 0
    ended_by: str = ""  # count, timeout, task, stopped
    task_status: str | None = None  # "completed" or "failed" when a --task stream ended

    @property
    def task_failed(self) -> bool:
        return self.task_status == "failed"


@dataclass
class WsStats:
    api_url: str
    total_users: int
    total_connections: int
    users: dict[str, int]


# -- URLs and tokens ---------------------------------------------------------------------------

def endpoint_url(url: str | None = None, api_url: str | None = None, task_id: str | None = None) -> str:
    """The ws(s):// endpoint to watch, from --url (used as given) or --api-url (http(s)://HOST:PORT)."""
    if url and api_url:
        raise UsageError("give --url or --api-url, not both")
    if task_id is not None and (not task_id.strip() or "/" in task_id):
        raise UsageError(f"--task: expected a task id, got {task_id!r}")
    task_path = f"{TASKS_PATH}{quote(task_id, safe='')}" if task_id else None
    if url:
        parts = _split(url, ("ws", "wss"), "--url")
        if "token=" in parts.query:
            raise UsageError("pass the token with --token or TACN_TOKEN, not inside --url")
        if not task_path:
            return url
        prefix = parts.path.split("/api/ws/")[0] if "/api/ws/" in parts.path else ""
        return urlunsplit((parts.scheme, parts.netloc, prefix.rstrip("/") + task_path, "", ""))
    parts = _split(api_url or DEFAULT_API_URL, ("http", "https"), "--api-url")
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + (task_path or NOTIFICATIONS_PATH), "", ""))


def _split(url: str, schemes: tuple[str, ...], name: str):
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise UsageError(f"{name}: not a valid URL ({exc}): {url!r}") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise UsageError(f"{name}: expected {' or '.join(s + '://HOST' for s in schemes)}…, got {url!r}")
    return parts


def with_token(url: str, token: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}token={quote(token, safe='')}"


def shown_url(url: str) -> str:
    """The endpoint as tacn reports it: the token parameter masked."""
    return with_token(url, "***").replace("%2A%2A%2A", "***")


def mint_token(secret: str, user: str = "admin", ttl_seconds: float = 3600) -> str:
    """A token the application accepts: HS256 with JWT_SECRET, ``sub`` = user, ``exp`` = now + ttl."""
    import jwt

    if ttl_seconds <= 0:
        raise UsageError("--ttl must be positive")
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + int(ttl_seconds)}, secret, algorithm="HS256")


def resolve_token(given: str | None, *, env_token: str | None, env_token_origin: str | None, mint: bool,
                  jwt_secret: str | None, jwt_secret_origin: str | None, user: str, ttl_seconds: float
                  ) -> tuple[str, str, bool]:
    """(token, where it came from, minted?) from --token, --mint-token or TACN_TOKEN."""
    if given and mint:
        raise UsageError("give --token or --mint-token, not both")
    if given:
        return given, "given with --token", False
    if mint:
        if not jwt_secret:
            raise ConfigError("--mint-token needs JWT_SECRET (in the environment or ./.env), the secret "
                              "the application signs its tokens with")
        token = mint_token(jwt_secret, user, ttl_seconds)
        return token, f"minted locally for user {user!r} from JWT_SECRET ({jwt_secret_origin or 'environment'})", True
    if env_token:
        return env_token, f"given in TACN_TOKEN ({env_token_origin or 'environment'})", False
    raise UsageError("no token: pass --token, set TACN_TOKEN, or use --mint-token with JWT_SECRET set")


# -- the connection loop -------------------------------------------------------------------------

class _Retry(Exception):
    """The connection failed or dropped in a way worth retrying (the message says how)."""


class _Watcher:
    def __init__(self, config: WatchConfig, emit: Callable[[WatchEvent], None], stop: threading.Event | None,
                 clock: Callable[[], float], rng: Callable[[], float]):
        self.config, self._emit, self.stop, self.clock, self.rng = config, emit, stop, clock, rng
        self.result = WatchResult()
        self.deadline = clock() + config.timeout if config.timeout is not None else None
        self.endpoint = shown_url(config.url)
        self.greeted = False
        self.ws = None

    def scrub(self, text: str) -> str:
        token = self.config.token
        for form in (token, quote(token, safe="")):
            if form and len(form) >= 4:
                text = text.replace(form, "***")
        return text

    def emit(self, kind: str, text: str = "", **fields) -> None:
        if kind == "warning":
            self.result.warnings += 1
        self._emit(WatchEvent(kind, self.scrub(text) if text else text, at=self.clock(), **fields))

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()

    def run(self) -> WatchResult:
        try:
            return self._loop()
        except KeyboardInterrupt:
            if self.ws is not None:  # Ctrl-C / SIGTERM: a clean close the server can see
                self._close(CLOSE_NORMAL, timeout=1.0)
                self.emit("closed", "interrupted: closed the connection (1000)")
            raise
        except Exception:  # a broken stdout pipe, a fatal error: still leave the server a clean close
            self._close(CLOSE_NORMAL, timeout=0.5)
            raise

    def _loop(self) -> WatchResult:
        config, failures, last_error = self.config, 0, ""
        while True:
            if failures:
                if config.max_retries is not None and failures > config.max_retries:
                    raise SourceError(f"gave up on {self.endpoint} after {config.max_retries} "
                                      f"{'retry' if config.max_retries == 1 else 'retries'}: {last_error}")
                delay = config.backoff.delay(failures, self.rng)
                limit = f"/{config.max_retries}" if config.max_retries is not None else ""
                self.emit("retry", f"reconnecting in {delay:.1f} s (retry {failures}{limit})",
                          delay=delay, attempt=failures)
                if self._pause(delay):
                    return self.result
            if self._should_end():
                return self.result
            try:
                self.ws = self._connect()
            except _Retry as exc:
                last_error = str(exc)
                self.emit("disconnected", f"cannot connect to {self.endpoint}: {last_error}")
                failures += 1
                continue
            self.result.connections += 1
            if self.result.connections > 1:
                self.result.reconnects += 1
                self.emit("connected", f"reconnected to {self.endpoint}")
            else:
                self.emit("connected", f"connected to {self.endpoint}")
            opened = self.clock()
            try:
                ended = self._read()
            except AuthRefused:
                self._abort()
                raise
            except _Retry as exc:
                last_error = str(exc)
                self.emit("disconnected", f"disconnected: {last_error}")
                self._abort()
                failures = 1 if self.clock() - opened >= config.stable_after else failures + 1
                continue
            self.ws = None
            if ended:
                return self.result

    def _should_end(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            self.result.ended_by = "stopped"
            return True
        left = self.time_left()
        if left is not None and left <= 0:
            self.result.ended_by = "timeout"
            return True
        return False

    def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds; True when the run should end instead (deadline or stop)."""
        left = self.time_left()
        wait = delay if left is None else max(0.0, min(delay, left))
        if self.stop is not None:
            self.stop.wait(wait)
        else:
            time.sleep(wait)
        return self._should_end()

    def _connect(self):
        import ssl

        import websocket

        config = self.config
        sslopt = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False} if config.insecure else {}
        left = self.time_left()
        timeout = config.connect_timeout if left is None else max(0.1, min(config.connect_timeout, left))
        try:
            return websocket.create_connection(with_token(config.url, config.token), timeout=timeout,
                                               sslopt=sslopt, skip_utf8_validation=True, enable_multithread=False)
        except websocket.WebSocketBadStatusException as exc:
            status = exc.status_code
            if status in (401, 403):
                raise self._refused(f"handshake refused with HTTP {status}") from None
            if 400 <= status < 500 and status not in (408, 429):
                raise SourceError(f"{self.endpoint} refused the WebSocket handshake with HTTP {status}: "
                                  "check the URL (expected …/api/ws/notifications or …/api/ws/tasks/ID)") from None
            raise _Retry(f"handshake failed with HTTP {status}") from None
        except ssl.SSLCertVerificationError as exc:
            raise SourceError(f"the certificate of {self.endpoint} could not be verified "
                              f"({exc.verify_message}); pass --insecure only for a host you trust") from None
        except (websocket.WebSocketException, OSError) as exc:
            raise _Retry(self.scrub(_describe(exc))) from None

    def _refused(self, detail: str) -> AuthRefused:
        hint = " and that JWT_SECRET matches the application's" if self.config.minted else ""
        return AuthRefused(f"the server refused the token {self.config.token_origin} ({detail}); "
                           f"check that it is valid and not expired{hint}")

    def _read(self) -> bool:
        """Read one connection until the run ends (True) or the connection drops (raises _Retry)."""
        import websocket
        from websocket import ABNF

        config, ws = self.config, self.ws
        ws.settimeout(config.tick)
        _guard_frame_length(ws, config.max_frame_bytes * DROP_FRAME_FACTOR)
        watchdog = config.heartbeat_timeout
        last_frame = self.clock()
        while True:
            if self._should_end():
                self._close(CLOSE_NORMAL)
                return True
            if watchdog and self.clock() - last_frame >= watchdog:
                raise _Retry(f"no frame for {watchdog:g} s (heartbeat timeout): the connection is dead")
            try:
                opcode, frame = ws.recv_data_frame(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except _FrameTooLarge as exc:
                self.emit("warning", str(exc))
                raise _Retry("dropped the connection rather than read the oversized frame") from None
            except (websocket.WebSocketException, OSError) as exc:
                raise _Retry(f"connection lost ({self.scrub(_describe(exc))})") from None
            last_frame = self.clock()
            if opcode == ABNF.OPCODE_CLOSE:
                code, reason = _close_status(frame.data)
                if code == CLOSE_POLICY:
                    raise self._refused(f"closed with {code} {reason or 'Unauthorized'}")
                raise _Retry(f"the server closed the connection ({code or 'no code'}{' ' + reason if reason else ''})")
            if opcode not in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                continue  # ping/pong: they count for the watchdog, nothing to show
            message = self._parse(opcode, frame.data)
            if message is not None and self._deliver(message):
                self._close(CLOSE_NORMAL)
                return True

    def _parse(self, opcode: int, data: bytes) -> dict | None:
        from websocket import ABNF

        if len(data) > self.config.max_frame_bytes:
            self.emit("warning", f"skipped a frame of {len(data):,} bytes (limit {self.config.max_frame_bytes:,})")
            return None
        if opcode == ABNF.OPCODE_BINARY:
            self.emit("warning", f"skipped a binary frame of {len(data):,} bytes (the protocol sends text)")
            return None
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError:
            self.emit("warning", f"skipped a text frame that is not UTF-8 ({len(data):,} bytes)")
            return None
        try:
            message = json.loads(text)
        except ValueError:
            self.emit("warning", f"skipped a frame that is not JSON: {_snippet(text)}")
            return None
        if not isinstance(message, dict):
            self.emit("warning", f"skipped a JSON {type(message).__name__} (expected an object): {_snippet(text)}")
            return None
        kind = message.get("type")
        if not isinstance(kind, str) or not kind:
            self.emit("warning", f"skipped a message without a type: {_snippet(text)}")
            return None
        if kind not in KNOWN_TYPES:
            self.emit("warning", f"skipped a message of unknown type {kind!r}: {_snippet(text)}")
            return None
        return message

    def _deliver(self, message: dict) -> bool:
        """Show ``message`` when it passes the filters; True when the run is over."""
        config, kind = self.config, message["type"]
        show = True
        if kind == "connected":
            show, self.greeted = not self.greeted, True
        elif kind == "heartbeat":
            show = config.verbose
        if show and (config.types is None or kind in config.types):
            self.result.shown += 1
            self.emit("message", message=message)
        if config.task_id and kind == "progress":
            data = message.get("data")
            status = str(data.get("status", "")).lower() if isinstance(data, dict) else ""
            if status in TASK_COMPLETED or status in TASK_FAILED:
                self.result.task_status = "completed" if status in TASK_COMPLETED else "failed"
                self.result.ended_by = "task"
                return True
        if config.count is not None and self.result.shown >= config.count:
            self.result.ended_by = "count"
            return True
        return False

    def _close(self, code: int, timeout: float = 1.0) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            try:
                ws.close(status=code, timeout=timeout)
            except Exception:  # noqa: BLE001 - closing a broken socket: nothing left to do
                ws.shutdown()

    def _abort(self) -> None:
        """Drop a dead or closed connection without waiting for a close handshake."""
        ws, self.ws = self.ws, None
        if ws is not None:
            try:
                if ws.connected:
                    ws.send_close(CLOSE_GOING_AWAY, b"reconnecting")
            except Exception:  # noqa: BLE001,S110 - the socket is dead anyway
                pass
            ws.shutdown()


def watch(config: WatchConfig, emit: Callable[[WatchEvent], None], *, stop: threading.Event | None = None,
          clock: Callable[[], float] = time.monotonic, rng: Callable[[], float] = random.random) -> WatchResult:
    """Tail ``config.url`` until --count, --timeout, a finished task, ``stop`` or Ctrl-C.

    Raises AuthRefused (1008 / HTTP 401 / 403), SourceError (retries exhausted, handshake
    refused for a wrong URL, certificate not verified); KeyboardInterrupt after closing with 1000.
    """
    return _Watcher(config, emit, stop, clock, rng).run()


class _FrameTooLarge(Exception):
    pass


def _guard_frame_length(ws, limit: int) -> None:
    """Refuse, before reading it, a frame whose header announces more than ``limit`` bytes.

    websocket-client reads a whole frame into memory; this hook on its frame reader checks the
    announced length first, so a huge frame costs a reconnect instead of the memory.
    """
    reader = ws.frame_buffer
    read_length = reader.recv_length

    def checked_length() -> None:
        read_length()
        if reader.length is not None and reader.length > limit:
            announced = reader.length
            reader.clear()
            raise _FrameTooLarge(f"a frame announced {announced:,} bytes (over {limit:,}): not read")

    reader.recv_length = checked_length


def _close_status(data: bytes) -> tuple[int | None, str]:
    if len(data) < 2:
        return None, ""
    return int.from_bytes(data[:2], "big"), data[2:].decode("utf-8", "replace")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…")


# -- tacn ws-stats ------------------------------------------------------------------------------

def fetch_ws_stats(api_url: str | None = None, *, timeout: float = 5.0, insecure: bool = False) -> WsStats:
    """GET /api/ws/stats (no auth): users and connections on the application's WebSocket manager."""
    import requests

    parts = _split(api_url or DEFAULT_API_URL, ("http", "https"), "--api-url")
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    url = base + STATS_PATH
    try:
        with warnings.catch_warnings():  # --insecure was asked for: no urllib3 warning about it
            warnings.simplefilter("ignore")
            response = requests.get(url, timeout=timeout, verify=not insecure)
    except requests.exceptions.SSLError as exc:
        raise SourceError(f"the certificate of {base} could not be verified ({exc.__class__.__name__}); "
                          "pass --insecure only for a host you trust") from None
    except requests.RequestException as exc:
        raise SourceError(f"cannot reach {base}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise SourceError(f"{url} answered HTTP {response.status_code} {response.reason or ''}".rstrip())
    try:
        body = response.json()
        users = {str(k): int(v) for k, v in (body.get("users") or {}).items()}
        return WsStats(base, int(body["total_users"]), int(body["total_connections"]), users)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise SourceError(f"{url} did not answer with the stats JSON "
                          f"(expected total_users, total_connections, users): {_snippet(response.text)}") from None
