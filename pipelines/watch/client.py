"""tacn watch: tail TradingAgents-CN's WebSocket notification stream and stay connected.

The connection loop uses websocket-client's low-level ``create_connection``-style ``connect`` and
``recv_frame`` with a short socket timeout rather than ``WebSocketApp.run_forever``:
run_forever swallows SIGINT, reconnects with a fixed delay even after a normal close and
hides errors while reconnecting, whereas here the backoff, the attempt limit, the heartbeat
watchdog, the fatal auth cases and a clean close on Ctrl-C are all under our control. Fragmented
messages are assembled here too (bounded in size, and the loop regains control after every
frame), so a hostile server can neither exhaust memory nor keep the loop from its deadline.

The library never prints: ``watch`` calls ``emit`` with a :class:`WatchEvent` for each message
to show and each connection event, and returns a :class:`WatchResult` (or raises a typed error).
Text from the server inside diagnostics (close reasons, frame snippets, HTTP answers) is escaped
with :func:`tacn.pipelines.safe_text.escape_unprintable`; messages are handed over as parsed.

``follow_task`` follows one analysis task as the application's web client does: it polls
``GET /api/analysis/tasks/{id}/status`` (the application never sends anything on
``/api/ws/tasks/{id}`` but its ``connected`` message) and shows the task's ``progress`` frames,
which the application sends on the notification stream.
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

from tacn.pipelines.errors import AuthRefused, ConfigError, SourceError, UsageError
from tacn.pipelines.safe_text import escape_unprintable
from tacn.pipelines.sources.calling import Backoff

KNOWN_TYPES = ("connected", "heartbeat", "notification", "progress")
TASK_STATUS_TYPE = "task_status"  # tacn's own line for a polled task status (not a server frame)
TASK_RUNNING = frozenset({"pending", "running"})
TASK_COMPLETED = frozenset({"completed"})
TASK_FAILED = frozenset({"failed", "cancelled"})
TASK_NOT_FOUND_DETAIL = "任务不存在"  # the application's 404 body for an unknown task
DEFAULT_API_URL = "http://localhost:8000"
NOTIFICATIONS_PATH = "/api/ws/notifications"
TASKS_PATH = "/api/ws/tasks/"
WS_PREFIX = "/api/ws/"
STATS_PATH = "/api/ws/stats"
TASK_STATUS_PATH = "/api/analysis/tasks/{}/status"
DEFAULT_HEARTBEAT_TIMEOUT = 75.0  # 2.5 x the server's 30 s heartbeat
DEFAULT_POLL_INTERVAL = 2.0  # seconds between task status polls
DEFAULT_TASK_TIMEOUT = 2 * 3600.0  # --task gives up (exit 3) after this unless --timeout says otherwise
MAX_FRAME_BYTES = 1 << 20  # larger messages are read, then skipped with a warning
MAX_FRAME_DEPTH = 64  # JSON nested deeper is skipped with a warning (the application's messages nest 2-3 deep)
DROP_FRAME_FACTOR = 64  # a frame or message over 64 x MAX_FRAME_BYTES is not read at all: the connection is dropped
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_POLICY = 1000, 1001, 1008
_SNIPPET = 80


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
    task_id: str | None = None  # only the progress frames of this task (follow_task sets it)
    verbose: bool = False
    insecure: bool = False
    backoff: Backoff = field(default_factory=Backoff)
    stable_after: float = 10.0  # a connection open this long resets the retry counter
    connect_timeout: float = 10.0  # TCP connect and the whole handshake, each
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_frame_depth: int = MAX_FRAME_DEPTH
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
    task_status: str | None = None  # follow_task: the task's last status (completed, failed, cancelled, …)
    task_message: str = ""  # follow_task: the task's last message, escaped
    polls: int = 0  # follow_task: status requests made

    @property
    def task_failed(self) -> bool:
        return self.task_status in TASK_FAILED


@dataclass
class WsStats:
    api_url: str
    total_users: int
    total_connections: int
    users: dict[str, int]


# -- URLs and tokens ---------------------------------------------------------------------------

def endpoint_url(url: str | None = None, api_url: str | None = None) -> str:
    """The ws(s):// endpoint to watch, from --url (used as given) or --api-url (http(s)://HOST:PORT)."""
    if url and api_url:
        raise UsageError("give --url or --api-url, not both")
    if url:
        parts = _split(url, ("ws", "wss"), "--url")
        if "token=" in parts.query:
            raise UsageError("pass the token with --token or TACN_TOKEN, not inside --url")
        return url
    parts = _split(api_url or DEFAULT_API_URL, ("http", "https"), "--api-url")
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + NOTIFICATIONS_PATH, "", ""))


def api_base(endpoint: str) -> str:
    """The http(s):// base of the application behind a ws(s):// endpoint (the path before /api/ws/)."""
    parts = urlsplit(endpoint)
    prefix = parts.path.split(WS_PREFIX)[0] if WS_PREFIX in parts.path else ""
    scheme = "https" if parts.scheme.lower() == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, prefix.rstrip("/"), "", ""))


def is_ws_endpoint(endpoint: str) -> bool:
    """Whether the path is one of the application's WebSocket endpoints (under any prefix)."""
    path = urlsplit(endpoint).path
    if path.endswith(NOTIFICATIONS_PATH):
        return True
    at = path.rfind(TASKS_PATH)
    task = path[at + len(TASKS_PATH):] if at >= 0 else ""
    return bool(task) and "/" not in task


def check_task_id(task_id: str) -> str:
    if not task_id.strip() or "/" in task_id or task_id != task_id.strip():
        raise UsageError(f"--task: expected a task id, got {escape_unprintable(repr(task_id))}")
    return task_id


def task_status_url(base: str, task_id: str) -> str:
    return base + TASK_STATUS_PATH.format(quote(task_id, safe=""))


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


def token_expiry_note(token: str, now: float | None = None) -> str:
    """' (it expired at … UTC)' when the token is a JWT whose exp has passed, else ''."""
    import jwt

    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        exp = float(exp)
    except (jwt.PyJWTError, TypeError, ValueError, AttributeError):
        return ""
    if exp != exp or exp > (time.time() if now is None else now):
        return ""
    from datetime import UTC, datetime

    try:
        return f" (it expired at {datetime.fromtimestamp(exp, UTC):%Y-%m-%d %H:%M:%S} UTC)"
    except (OverflowError, OSError, ValueError):
        return " (it has expired)"
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



# -- frames: size and depth limits ----------------------------------------------------------------

_JSON_TOKEN = None


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest (brackets inside strings do not count)."""
    global _JSON_TOKEN
    if _JSON_TOKEN is None:
        import re

        _JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
    depth = deepest = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif token == "]" or token == "}":
            depth -= 1
    return deepest


class FrameTooDeep(ValueError):
    pass


def load_json(text: str, max_depth: int = MAX_FRAME_DEPTH):
    """``json.loads`` that refuses (FrameTooDeep) JSON nested deeper than ``max_depth``.

    Counting brackets first is C-fast; only text with more brackets than the limit is scanned.
    """
    if text.count("{") + text.count("[") > max_depth and json_depth(text) > max_depth:
        raise FrameTooDeep(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError:  # belt and braces: the scan above already refuses such text
        raise FrameTooDeep(f"nested deeper than {max_depth} levels") from None


# -- the connection loop -------------------------------------------------------------------------

class _Retry(Exception):
    """The connection failed or dropped in a way worth retrying (the message says how)."""


class _FrameTooLarge(Exception):
    pass


class _Watcher:
    def __init__(self, config: WatchConfig, emit: Callable[[WatchEvent], None], stop: threading.Event | None,
                 clock: Callable[[], float], rng: Callable[[], float]):
        self.config, self._emit, self.stop, self.clock, self.rng = config, emit, stop, clock, rng
        self.result = WatchResult()
        self.deadline = clock() + config.timeout if config.timeout is not None else None
        self.endpoint = shown_url(config.url)
        self.greeted = False
        self.ws = None
        self._fragments: bytearray | None = None  # the message being assembled from fragments
        self._fragment_opcode = 0
        self._fragment_size = 0

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
        ws = websocket.WebSocket(sslopt=sslopt, skip_utf8_validation=True, enable_multithread=False)
        # the socket timeout bounds each read; this bounds the whole handshake (a server may drip it)
        cut = threading.Event()
        timer = threading.Timer(timeout, _cut_handshake, args=(ws, cut))
        timer.daemon = True
        timer.start()
        try:
            # redirect_limit=0: the token is in the URL, so it is never sent on to another address
            ws.connect(with_token(config.url, config.token), timeout=timeout, redirect_limit=0)
        except websocket.WebSocketBadStatusException as exc:
            ws.shutdown()
            raise self._handshake_refused(exc.status_code, exc.resp_headers or {}) from None
        except ssl.SSLCertVerificationError as exc:
            ws.shutdown()
            raise SourceError(f"the certificate of {self.endpoint} could not be verified "
                              f"({exc.verify_message}); pass --insecure only for a host you trust") from None
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            ws.shutdown()
            redirect = getattr(ws, "handshake_response", None)
            if redirect is not None and 300 <= redirect.status < 400:  # "Redirect limit exhausted"
                raise self._handshake_refused(redirect.status, redirect.headers or {}) from None
            if cut.is_set():
                raise _Retry(f"the handshake did not complete within {timeout:g} s") from None
            raise _Retry(self.scrub(_describe(exc))) from None
        finally:
            timer.cancel()
        return ws

    def _handshake_refused(self, status: int, headers: dict) -> Exception:
        if status in (401, 403):
            return self._refused_handshake(status)
        if 300 <= status < 400:
            location = escape_unprintable(self.scrub(str(headers.get("location", "")))) or "nowhere"
            return SourceError(f"{self.endpoint} redirects (HTTP {status}) to {location}: tacn does not follow "
                               "redirects with the token; give the final address with --url or --api-url")
        if 400 <= status < 500 and status not in (408, 429):
            return SourceError(f"{self.endpoint} refused the WebSocket handshake with HTTP {status}: "
                               "check the URL (expected …/api/ws/notifications)")
        return _Retry(f"handshake failed with HTTP {status}")

    def _refused_handshake(self, status: int) -> Exception:
        """HTTP 401/403 on the handshake: a bad token or a wrong endpoint (the application answers
        both with 403). GET /api/ws/stats at the same base tells which."""
        config = self.config
        base = api_base(config.url)
        head = f"{self.endpoint} answered the handshake with HTTP {status}: token refused or wrong endpoint"
        probe = probe_stats(base, timeout=config.connect_timeout, insecure=config.insecure)
        if probe is not None:
            return SourceError(f"{head}. GET {base}{STATS_PATH} did not answer like the application ({probe}), so "
                               f"{base or 'that address'} is not its API: wrong base URL (check --api-url or --url, "
                               "including the path prefix of a proxy)")
        if not is_ws_endpoint(config.url):
            path = escape_unprintable(urlsplit(config.url).path) or "/"
            return SourceError(f"{head}. The application answers at {base} (GET {STATS_PATH}), but {path} is not "
                               f"one of its WebSocket endpoints: wrong endpoint path (expected "
                               f"{shown_url(endpoint_url(api_url=base))})")
        return self._refused(f"handshake refused with HTTP {status}; the application answers at {base}, so the "
                             "endpoint is right", prefix=f"{head}: ")

    def _refused(self, detail: str, prefix: str = "") -> AuthRefused:
        hint = " and that JWT_SECRET matches the application's" if self.config.minted else ""
        return AuthRefused(f"{prefix}the server refused the token {self.config.token_origin} ({detail})"
                           f"{token_expiry_note(self.config.token)}; check that it is valid and not expired{hint}")

    def _read(self) -> bool:
        """Read one connection until the run ends (True) or the connection drops (raises _Retry)."""
        import websocket

        config, ws = self.config, self.ws
        ws.settimeout(config.tick)
        _guard_frame_length(ws, config.max_frame_bytes * DROP_FRAME_FACTOR)
        tick_ends = [0.0]
        _guard_read_time(ws, lambda: self.clock() >= tick_ends[0])
        self._fragments, self._fragment_size = None, 0
        watchdog = config.heartbeat_timeout
        last_frame = self.clock()
        while True:
            if self._should_end():
                self._close(CLOSE_NORMAL)
                return True
            if watchdog and self.clock() - last_frame >= watchdog:
                raise _Retry(f"no frame for {watchdog:g} s (heartbeat timeout): the connection is dead")
            tick_ends[0] = self.clock() + config.tick
            try:
                frame = ws.recv_frame()  # a frame cut by the timeout is kept and completed by the next call
                whole = self._assemble(frame)
            except websocket.WebSocketTimeoutException:
                continue
            except _FrameTooLarge as exc:
                self.emit("warning", str(exc))
                raise _Retry("dropped the connection rather than read the oversized frame") from None
            except (websocket.WebSocketProtocolException, websocket.WebSocketPayloadException) as exc:
                raise _Retry(f"protocol error ({self.scrub(_describe(exc))})") from None
            except (websocket.WebSocketException, OSError, ValueError) as exc:
                raise _Retry(f"connection lost ({self.scrub(_describe(exc))})") from None
            last_frame = self.clock()
            if whole is None:
                continue
            message = self._parse(*whole)
            if message is not None and self._deliver(message):
                self._close(CLOSE_NORMAL)
                return True

    def _assemble(self, frame) -> tuple[int, bytes | None, int] | None:
        """(opcode, data, size) once a whole message is in; data is None when it was too large to keep.

        Control frames are answered here; fragments are collected up to the size limit.
        """
        from websocket import ABNF

        opcode, ws, limit = frame.opcode, self.ws, self.config.max_frame_bytes
        if opcode == ABNF.OPCODE_CLOSE:
            code, reason = _close_status(frame.data)
            self._echo_close(code)
            reason = escape_unprintable(self.scrub(reason))
            if code == CLOSE_POLICY:
                raise self._refused(f"closed with {code} {reason or 'Unauthorized'}")
            raise _Retry(f"the server closed the connection ({code or 'no code'}{' ' + reason if reason else ''})")
        if opcode == ABNF.OPCODE_PING:
            ws.pong(frame.data)
            return None
        if opcode == ABNF.OPCODE_PONG:
            return None  # it counted for the watchdog; nothing to show
        if opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
            if self._fragments is not None:
                raise _Retry("protocol error: a new message began inside a fragmented one")
            if frame.fin:
                return opcode, frame.data, len(frame.data)
            self._fragment_opcode, self._fragment_size = opcode, len(frame.data)
            self._fragments = bytearray(frame.data) if len(frame.data) <= limit else bytearray()
            return None
        if opcode != ABNF.OPCODE_CONT:
            raise _Retry(f"protocol error: a frame with opcode {opcode}")
        if self._fragments is None:
            raise _Retry("protocol error: a continuation frame outside a fragmented message")
        self._fragment_size += len(frame.data)
        if self._fragment_size > limit * DROP_FRAME_FACTOR:
            self._fragments = None
            raise _FrameTooLarge(f"a fragmented message grew past {limit * DROP_FRAME_FACTOR:,} bytes: not read")
        if self._fragment_size <= limit:
            self._fragments += frame.data
        if not frame.fin:
            return None
        data = bytes(self._fragments) if self._fragment_size <= limit else None
        self._fragments = None
        return self._fragment_opcode, data, self._fragment_size

    def _parse(self, opcode: int, data: bytes | None, size: int) -> dict | None:
        from websocket import ABNF

        config = self.config
        if data is None or size > config.max_frame_bytes:
            self.emit("warning", f"skipped a frame of {size:,} bytes (limit {config.max_frame_bytes:,})")
            return None
        if opcode == ABNF.OPCODE_BINARY:
            self.emit("warning", f"skipped a binary frame of {size:,} bytes (the protocol sends text)")
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.emit("warning", f"skipped a text frame that is not UTF-8 ({size:,} bytes)")
            return None
        try:
            message = load_json(text, config.max_frame_depth)
        except FrameTooDeep as exc:
            self.emit("warning", f"skipped a frame {exc} ({size:,} bytes)")
            return None
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
            self.emit("warning", f"skipped a message of unknown type {_snippet(kind)}: {_snippet(text)}")
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
        if config.task_id is not None:  # following a task: only its progress frames
            data = message.get("data")
            show = kind == "progress" and isinstance(data, dict) and str(data.get("task_id")) == config.task_id
        if show and (config.types is None or kind in config.types):
            self.result.shown += 1
            self.emit("message", message=message)
        if config.count is not None and self.result.shown >= config.count:
            self.result.ended_by = "count"
            return True
        return False

    def _echo_close(self, code: int | None) -> None:
        """Answer the server's close frame (RFC 6455) and drop the socket."""
        ws, self.ws = self.ws, None
        try:
            ws.send_close(code if code and code not in (1005, 1006, 1015) else CLOSE_NORMAL)
        except Exception:  # noqa: BLE001,S110 - the socket may already be gone
            pass
        ws.shutdown()

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
    """Tail ``config.url`` until --limit, --timeout, ``stop`` or Ctrl-C.

    Raises AuthRefused (1008 / HTTP 401 / 403 with the endpoint confirmed), SourceError (retries
    exhausted, handshake refused for a wrong URL, certificate not verified); KeyboardInterrupt
    after closing with 1000.
    """
    return _Watcher(config, emit, stop, clock, rng).run()


def _cut_handshake(ws, cut: threading.Event) -> None:
    import socket

    sock = ws.sock
    if sock is not None and not ws.connected:
        cut.set()
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
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


def _guard_read_time(ws, over: Callable[[], bool]) -> None:
    """End a read when ``over()`` says so, as a socket timeout would.

    The socket timeout bounds each recv, but websocket-client reads a frame with as many recvs as
    it takes: a server dripping a byte every few milliseconds would hold the loop (and its
    deadline, stop and watchdog checks) for as long as it likes. What was read so far stays in the
    frame reader and the next call goes on from there.
    """
    import websocket

    reader = ws.frame_buffer
    recv = reader.recv

    def recv_in_time(size: int) -> bytes:
        if over():
            raise websocket.WebSocketTimeoutException("read time is up")
        return recv(size)

    reader.recv = recv_in_time


def _close_status(data: bytes) -> tuple[int | None, str]:
    if len(data) < 2:
        return None, ""
    return int.from_bytes(data[:2], "big"), data[2:].decode("utf-8", "replace")


def _describe(exc: BaseException) -> str:
    text = escape_unprintable(str(exc).strip())
    if len(text) > 200:
        text = text[:200] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _snippet(text: str) -> str:
    text = text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…"
    return "'" + escape_unprintable(text).replace("'", "\\'") + "'"


# -- following one task ---------------------------------------------------------------------------

def follow_task(config: WatchConfig, emit: Callable[[WatchEvent], None], *, poll_interval: float = DEFAULT_POLL_INTERVAL,
                stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic,
                rng: Callable[[], float] = random.random) -> WatchResult:
    """Follow ``config.task_id`` until it completes, fails or is cancelled, or ``config.timeout`` passes.

    The task's status comes from polling ``GET {api}/api/analysis/tasks/{id}/status`` with the token
    as a Bearer header, every ``poll_interval`` seconds (a message each time status, progress,
    step or message change, and always the last one); meanwhile a thread tails the notification
    stream (``config.url``) for that task's ``progress`` frames. Ends with ``ended_by`` "task"
    (``task_status`` completed, failed or cancelled), "timeout" or "stopped". Raises SourceError for
    an unknown task (HTTP 404 任务不存在) or a wrong base URL, AuthRefused for a refused token.
    """
    from dataclasses import replace

    lock = threading.Lock()

    def locked(event: WatchEvent) -> None:
        with lock:
            emit(event)

    stream_stop = threading.Event()
    stream = _Watcher(replace(config, types=frozenset({"progress"}), count=None, timeout=None), locked,
                      stream_stop, clock, rng)

    def tail() -> None:
        try:
            stream.run()
        except Exception as exc:  # noqa: BLE001 - the status poll decides; the stream only adds detail
            from tacn.pipelines.errors import TacnError

            detail = str(exc) if isinstance(exc, TacnError) else _describe(exc)
            stream.emit("warning", f"no progress frames from the notification stream: {detail}")

    poller = _TaskPoller(config, locked, poll_interval, stop, clock, rng)
    thread = threading.Thread(target=tail, name="tacn-watch-stream", daemon=True)
    thread.start()
    try:
        result = poller.run()
    finally:
        stream_stop.set()
        thread.join(timeout=config.connect_timeout + 2 * config.tick + 1)
    result.shown += stream.result.shown
    result.warnings += stream.result.warnings
    result.connections, result.reconnects = stream.result.connections, stream.result.reconnects
    return result


class _TaskPoller:
    def __init__(self, config: WatchConfig, emit: Callable[[WatchEvent], None], poll_interval: float,
                 stop: threading.Event | None, clock: Callable[[], float], rng: Callable[[], float]):
        self.config, self._emit, self.interval = config, emit, poll_interval
        self.stop, self.clock, self.rng = stop, clock, rng
        self.result = WatchResult()
        self.base = api_base(config.url)
        self.url = task_status_url(self.base, config.task_id)
        timeout = config.timeout if config.timeout is not None else DEFAULT_TASK_TIMEOUT
        self.deadline = clock() + timeout

    def emit(self, kind: str, text: str = "", **fields) -> None:
        if kind == "warning":
            self.result.warnings += 1
        self._emit(WatchEvent(kind, text, at=self.clock(), **fields))

    def run(self) -> WatchResult:
        import requests

        config, result = self.config, self.result
        failures, last, unknown = 0, None, set()
        with requests.Session() as session:
            while True:
                if self.stop is not None and self.stop.is_set():
                    result.ended_by = "stopped"
                    return result
                left = self.deadline - self.clock()
                if left <= 0:
                    result.ended_by = "timeout"
                    return result
                try:
                    data = self._poll(session, min(config.connect_timeout, max(0.1, left)))
                except _Retry as exc:
                    failures += 1
                    if config.max_retries is not None and failures > config.max_retries:
                        raise SourceError(f"gave up on {self.url} after {config.max_retries} "
                                          f"{'retry' if config.max_retries == 1 else 'retries'}: {exc}") from None
                    delay = max(self.interval, config.backoff.delay(failures, self.rng))
                    self.emit("warning", f"task status: {exc}; asking again in {delay:.1f} s")
                    self._wait(delay)
                    continue
                failures = 0
                result.polls += 1
                status = str(data.get("status")).lower()
                snapshot = tuple(str(data.get(k)) for k in ("status", "progress", "current_step", "message"))
                final = status in TASK_COMPLETED or status in TASK_FAILED
                if snapshot != last or final:
                    result.shown += 1
                    self.emit("message", message={"type": TASK_STATUS_TYPE, "data": data})
                last = snapshot
                if final:
                    result.task_status, result.ended_by = status, "task"
                    result.task_message = escape_unprintable(str(data.get("message") or ""))
                    return result
                if status not in TASK_RUNNING and status not in unknown:
                    unknown.add(status)
                    self.emit("warning", f"task status {_snippet(status)} is not one the application uses "
                                         "(pending, running, completed, failed, cancelled): still polling")
                self._wait(self.interval)

    def _wait(self, seconds: float) -> None:
        wait = max(0.0, min(seconds, self.deadline - self.clock()))
        if self.stop is not None:
            self.stop.wait(wait)
        else:
            time.sleep(wait)

    def _poll(self, session, timeout: float) -> dict:
        config = self.config
        status, reason, text = http_get(self.url, timeout=timeout, insecure=config.insecure, session=session,
                                        headers={"Authorization": f"Bearer {config.token}"})
        if status in (401, 403):
            raise AuthRefused(f"{self.url} refused the token {config.token_origin} (HTTP {status}"
                              f"{_detail_of(text)}){token_expiry_note(config.token)}; check that it is valid "
                              "and not expired" + (" and that JWT_SECRET matches the application's"
                                                   if config.minted else ""))
        if status == 404:
            detail = _detail_of(text, bare=True)
            if detail == TASK_NOT_FOUND_DETAIL:
                raise SourceError(f"task {escape_unprintable(config.task_id)} does not exist at {self.base} "
                                  f"(HTTP 404 {detail})")
            raise SourceError(f"{self.url} answered HTTP 404{' ' + detail if detail else ''}: not the application's "
                              "task status endpoint, so the base URL is wrong (check --api-url or --url)")
        if status in (408, 429) or status >= 500:
            raise _Retry(f"{self.url} answered HTTP {status} {reason}".rstrip())
        if status != 200:
            raise SourceError(f"{self.url} answered HTTP {status} {reason}".rstrip())
        try:
            body = load_json(text)
            data = body["data"]
            if not isinstance(data, dict) or not isinstance(data.get("status"), str):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            raise SourceError(f"{self.url} did not answer with the task status JSON "
                              f"(expected data.status): {_snippet(text)}") from None
        return data


def _detail_of(text: str, *, bare: bool = False) -> str:
    """The ``detail`` of a FastAPI error body, escaped (': detail' unless bare), or ''."""
    try:
        detail = load_json(text).get("detail")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(detail, str) or not detail:
        return ""
    detail = escape_unprintable(detail[:_SNIPPET])
    return detail if bare else f": {detail}"


# -- HTTP: tacn ws-stats, the handshake probe, the task status ----------------------------------

MAX_HTTP_BODY = 1 << 20


def http_get(url: str, *, timeout: float, insecure: bool = False, headers: dict | None = None,
             session=None) -> tuple[int, str, str]:
    """(status, reason, body text) of GET ``url``; the body is read up to 1 MiB, redirects are not
    followed (a token must not travel on). Raises SourceError for an unverifiable certificate and
    _Retry when the server cannot be reached."""
    import requests

    base = urlunsplit(urlsplit(url)[:2] + ("", "", ""))
    getter = session or requests
    try:
        with warnings.catch_warnings():  # --insecure was asked for: no urllib3 warning about it
            warnings.simplefilter("ignore")
            response = getter.get(url, timeout=timeout, verify=not insecure, headers=headers,
                                  allow_redirects=False, stream=True)
        with response:
            body = bytearray()
            for chunk in response.iter_content(65536):
                body += chunk
                if len(body) > MAX_HTTP_BODY:
                    break
    except requests.exceptions.SSLError as exc:
        raise SourceError(f"the certificate of {base} could not be verified ({exc.__class__.__name__}); "
                          "pass --insecure only for a host you trust") from None
    except requests.RequestException as exc:
        raise _Retry(f"cannot reach {base}: {type(exc).__name__}") from None
    reason = escape_unprintable(str(response.reason or "")[:_SNIPPET])
    return response.status_code, reason, bytes(body[:MAX_HTTP_BODY]).decode("utf-8", "replace")


def fetch_ws_stats(api_url: str | None = None, *, timeout: float = 5.0, insecure: bool = False) -> WsStats:
    """GET /api/ws/stats (no auth): users and connections on the application's WebSocket manager."""
    parts = _split(api_url or DEFAULT_API_URL, ("http", "https"), "--api-url")
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    url = base + STATS_PATH
    try:
        status, reason, text = http_get(url, timeout=timeout, insecure=insecure)
    except _Retry as exc:
        raise SourceError(str(exc)) from None
    if status != 200:
        raise SourceError(f"{url} answered HTTP {status} {reason}".rstrip())
    try:
        body = load_json(text)
        users = {escape_unprintable(str(k)): int(v) for k, v in (body.get("users") or {}).items()}
        return WsStats(base, int(body["total_users"]), int(body["total_connections"]), users)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise SourceError(f"{url} did not answer with the stats JSON "
                          f"(expected total_users, total_connections, users): {_snippet(text)}") from None


def probe_stats(base: str, *, timeout: float, insecure: bool = False) -> str | None:
    """None when ``GET {base}/api/ws/stats`` answers like the application; else what happened instead."""
    try:
        fetch_ws_stats(base, timeout=timeout, insecure=insecure)
    except (SourceError, UsageError) as exc:
        return str(exc)
    return None
