"""A local stand-in for TradingAgents-CN's WebSocket endpoints, for tests, `make demo` and benchmarks.

It behaves like the application (see docs/watch.md and the reference notes):

- ``WS /api/ws/notifications?token=JWT`` and ``WS /api/ws/tasks/{task_id}?token=JWT``;
- the token is a JWT signed HS256 with the shared secret, ``exp`` checked; a bad, expired or
  missing token is refused *before* the handshake is accepted, so the client sees HTTP 403
  (not a 1008 close frame). A WebSocket request for any other path is also HTTP 403, as the
  application's framework answers it. The user is "admin" whatever ``sub`` says;
- ``connected`` on open (``timestamp`` naive UTC), ``heartbeat`` every ``heartbeat_interval``
  seconds (naive UTC), then what is published: ``notification`` payloads without ``severity``,
  ``status`` "unread", ``created_at`` with +08:00;
- task sockets are not registered with the connection manager: they get ``connected`` and
  nothing else (no heartbeat, no progress, not counted by ``/api/ws/stats``); ``progress`` frames
  go to the notification sockets;
- ``GET /api/analysis/tasks/{task_id}/status`` with ``Authorization: Bearer JWT`` →
  ``{"success": true, "data": {...}, "message"}``, HTTP 404 ``{"detail": "任务不存在"}`` for an
  unknown task, 403 without a token, 401 with a bad one; other plain GETs are 404 Not Found;
- ``GET /api/ws/stats`` (no auth): ``{"total_users", "total_connections", "users"}``;
- closes every connection with 1012 on shutdown.

Test hooks: ``refuse_status`` refuses every handshake with that HTTP status; ``silence()``
stops the frames of the open connections while keeping their sockets open; ``publish_raw``
sends any text or bytes frame; ``client_close_codes`` records the close codes clients sent;
``set_task`` sets what the status endpoint answers (and publishes the progress frame);
``status_unavailable = N`` answers the next N status requests with 503.

Needs the ``websockets`` package (the ``dev`` extra, which the ``test`` extra includes), imported
only when a server starts: without it, starting one raises :class:`MissingExtraError` naming
``pip install 'tacn[dev]'``, and the stand-alone server says so in one line and exits 3.
Run ``python -m tacn.pipelines.watch.dev_server --help`` for the stand-alone demo server.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

NOTIFICATIONS_PATH = "/api/ws/notifications"
TASKS_PREFIX = "/api/ws/tasks/"
STATS_PATH = "/api/ws/stats"
TASK_STATUS_PREFIX, TASK_STATUS_SUFFIX = "/api/analysis/tasks/", "/status"
SHUTDOWN_CODE = 1012  # the application's close code on shutdown or restart
_CLOSE = object()  # queue sentinel: close this session
DEV_EXTRA_INSTALL = "pip install 'tacn[dev]'"


class MissingExtraError(ImportError):
    """The dev server needs an optional extra that is not installed; the message names the extra."""


def _now_iso() -> str:
    """Naive UTC, as the application's connected/heartbeat timestamps."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


def _now_shanghai_iso() -> str:
    """+08:00, as the application's notification created_at."""
    from tacn.validators.dates import SHANGHAI

    return datetime.now(SHANGHAI).isoformat()


def notification_message(n: int, *, title: str | None = None, content: str | None = None,
                         kind: str = "analysis", status: str = "unread", link: str | None = None,
                         source: str = "dev_ws_server", **extra: Any) -> dict:
    """A ``notification`` message in the application's published shape (no severity); ``extra``
    keys go into ``data``."""
    return {"type": "notification", "data": {
        "id": f"n{n}", "type": kind, "title": title or f"Notification {n}",
        "content": content if content is not None else f"demo notification number {n}",
        "link": link if link is not None else f"/notifications/n{n}", "source": source,
        "status": status, "created_at": _now_shanghai_iso(), **extra}}


def progress_message(task_id: str, status: str, progress: float, message: str = "", **extra: Any) -> dict:
    return {"type": "progress", "data": {"task_id": task_id, "status": status, "progress": progress,
                                         "message": message, **extra}}


@dataclass(eq=False)
class _Session:
    connection: Any
    user: str
    task_id: str | None
    outbox: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    silent: bool = False


class DevWsServer:
    """The application's WebSocket endpoints on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, jwt_secret: str, *, host: str = "127.0.0.1", port: int = 0,
                 heartbeat_interval: float = 30.0, close_timeout: float = 0.5,
                 refuse_status: int | None = None, ssl_context=None):
        self.jwt_secret = jwt_secret
        self.host, self.port = host, port
        self.heartbeat_interval = heartbeat_interval
        self.close_timeout = close_timeout
        self.refuse_status = refuse_status
        self.ssl_context = ssl_context  # wss:// and https:// when set
        self.handshakes = 0  # every WebSocket upgrade request, refused ones included
        self.sessions_opened = 0  # authorized notification sessions
        self.task_sessions_opened = 0  # authorized task sockets (never registered, as in the application)
        self.unauthorized = 0  # handshakes refused with 403 for the token
        self.heartbeats_sent = 0
        self.status_requests: list[str | None] = []  # the Authorization header of each task status GET
        self.stats_requests = 0
        self.client_close_codes: list[int | None] = []
        self.client_messages: list[str] = []
        self.tasks: dict[str, dict] = {}
        self.status_unavailable = 0  # test hook: answer this many task status requests with 503
        self._sessions: set[_Session] = set()  # the connection manager: notification sockets only
        self._task_sessions: set[_Session] = set()
        self._cond = threading.Condition()
        self._server = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> DevWsServer:
        try:
            from websockets.sync.server import serve
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("websockets"):
                raise
            raise MissingExtraError("the dev WebSocket server needs the websockets package, which is not "
                                    f"installed: {DEV_EXTRA_INSTALL}") from exc

        self._server = serve(self._handle, self.host, self.port, process_request=self._process_request,
                             close_timeout=self.close_timeout, ping_interval=None, max_size=None,
                             ssl=self.ssl_context)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="dev-ws-server", daemon=True)
        self._thread.start()
        return self

    def stop(self, code: int = SHUTDOWN_CODE, reason: str = "server shutdown") -> None:
        """Close every connection with ``code`` (1012 like the application) and stop listening."""
        if self._server is None:
            return
        with self._cond:
            sessions = list(self._sessions | self._task_sessions)
        for session in sessions:  # after what was already published: nothing queued is lost
            session.outbox.put((_CLOSE, code, reason))
        self.wait_for(lambda s: not s._sessions and not s._task_sessions, timeout=2 * self.close_timeout + 2)
        self._server.shutdown(code=code, reason=reason)
        self._thread.join(timeout=10)
        self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> DevWsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    def ws_url(self, path: str = NOTIFICATIONS_PATH) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.port}{path}"

    def token(self, user: str = "admin", ttl_seconds: float = 3600) -> str:
        from tacn.pipelines.watch.client import mint_token

        return mint_token(self.jwt_secret, user, ttl_seconds)

    # publishing
    def publish(self, message: dict, *, user: str | None = None) -> int:
        """Send ``message`` to the open notification streams (of ``user``); returns how many."""
        return self.publish_raw(json.dumps(message, ensure_ascii=False), user=user)

    def publish_raw(self, frame: str | bytes, *, user: str | None = None) -> int:
        with self._cond:
            targets = [s for s in self._sessions if user is None or s.user == user]
        for session in targets:
            session.outbox.put(frame)
        return len(targets)

    def set_task(self, task_id: str, status: str, progress: float = 0, message: str = "", *,
                 current_step: str | None = None, publish: bool = True) -> dict:
        """What the status endpoint answers for ``task_id`` from now on; with ``publish``, also the
        ``progress`` frame the application sends to the notification sockets."""
        now = _now_iso()
        with self._cond:
            task = self.tasks.setdefault(task_id, {"task_id": task_id, "start_time": now})
            task.update(status=status, progress=progress, message=message, current_step=current_step,
                        end_time=now if status in ("completed", "failed", "cancelled") else None,
                        elapsed_time=0.0)
            self._cond.notify_all()
        if publish:
            self.publish(progress_message(task_id, status, progress, message, current_step=current_step))
        return task

    def silence(self) -> None:
        """The open connections send nothing more (no heartbeat either); their sockets stay open."""
        with self._cond:
            for session in self._sessions:
                session.silent = True

    def stats(self) -> dict:
        with self._cond:
            users: dict[str, int] = {}
            for session in self._sessions:
                users[session.user] = users.get(session.user, 0) + 1
        return {"total_users": len(users), "total_connections": sum(users.values()), "users": users}

    # waiting on conditions (tests never sleep to hope)
    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout=timeout)

    def wait_sessions(self, opened: int, timeout: float = 10.0) -> bool:
        """Until ``opened`` authorized sessions have been opened in total (and are still registered)."""
        return self.wait_for(lambda s: s.sessions_opened >= opened and s._sessions, timeout)

    def wait_client_close(self, count: int = 1, timeout: float = 10.0) -> bool:
        return self.wait_for(lambda s: len(s.client_close_codes) >= count, timeout)

    # protocol
    def _process_request(self, connection, request):
        url = urlsplit(request.path)
        path = url.path
        if path == STATS_PATH:
            with self._cond:
                self.stats_requests += 1
            return self._json(connection, 200, self.stats())
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            if path.startswith(TASK_STATUS_PREFIX) and path.endswith(TASK_STATUS_SUFFIX):
                return self._task_status(connection, request,
                                         unquote(path[len(TASK_STATUS_PREFIX):-len(TASK_STATUS_SUFFIX)]))
            return self._json(connection, 404, {"detail": "Not Found"})
        with self._cond:
            self.handshakes += 1
            self._cond.notify_all()
        if self.refuse_status is not None:
            return connection.respond(self.refuse_status, "Unauthorized")
        if path != NOTIFICATIONS_PATH and not (path.startswith(TASKS_PREFIX) and len(path) > len(TASKS_PREFIX)):
            return connection.respond(403, "Forbidden")  # the framework's answer to an unknown WebSocket path
        if self._user_of((parse_qs(url.query).get("token") or [None])[0]) is None:
            with self._cond:
                self.unauthorized += 1
                self._cond.notify_all()
            return connection.respond(403, "Forbidden")  # closed before accept: HTTP 403
        return None

    @staticmethod
    def _json(connection, status: int, body: dict):
        response = connection.respond(status, json.dumps(body, ensure_ascii=False))
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    def _task_status(self, connection, request, task_id: str):
        authorization = request.headers.get("Authorization")
        with self._cond:
            self.status_requests.append(authorization)
            task = dict(self.tasks[task_id]) if task_id in self.tasks else None
            self._cond.notify_all()
        if not authorization or not authorization.startswith("Bearer "):
            return self._json(connection, 403, {"detail": "Not authenticated"})
        if self._user_of(authorization[len("Bearer "):]) is None:
            return self._json(connection, 401, {"detail": "Invalid token"})
        with self._cond:
            unavailable, self.status_unavailable = self.status_unavailable > 0, max(0, self.status_unavailable - 1)
        if unavailable:
            return self._json(connection, 503, {"detail": "Service Unavailable"})
        if task is None:
            return self._json(connection, 404, {"detail": "任务不存在"})
        return self._json(connection, 200, {"success": True, "data": task, "message": "获取任务状态成功"})

    def _user_of(self, token: str | None) -> str | None:
        import jwt

        if not token:
            return None
        try:
            jwt.decode(token, self.jwt_secret, algorithms=["HS256"], options={"require": ["exp"]})
        except jwt.PyJWTError:
            return None
        return "admin"  # the application uses "admin" whatever sub says

    def _handle(self, connection) -> None:
        from websockets.exceptions import ConnectionClosed

        path = urlsplit(connection.request.path).path
        task_id = path[len(TASKS_PREFIX):] if path.startswith(TASKS_PREFIX) else None
        session = _Session(connection, "admin", task_id)
        reader = threading.Thread(target=self._read_client, args=(session,), daemon=True)
        registry = self._task_sessions if task_id is not None else self._sessions
        with self._cond:
            registry.add(session)
            if task_id is None:
                self.sessions_opened += 1
            else:
                self.task_sessions_opened += 1
        try:
            connection.send(json.dumps({"type": "connected", "data": {
                "user_id": session.user, "timestamp": _now_iso(), "message": "WebSocket connected"}}))
            reader.start()
            with self._cond:
                self._cond.notify_all()  # registered and greeted: tests may publish now
            heartbeats = task_id is None and self.heartbeat_interval > 0
            next_beat = time.monotonic() + self.heartbeat_interval
            while True:
                wait = max(0.0, next_beat - time.monotonic()) if heartbeats else None
                try:
                    item = session.outbox.get(timeout=wait)
                except queue.Empty:
                    next_beat = time.monotonic() + self.heartbeat_interval
                    if not session.silent:
                        connection.send(json.dumps({"type": "heartbeat", "data": {"timestamp": _now_iso()}}))
                        with self._cond:
                            self.heartbeats_sent += 1
                            self._cond.notify_all()
                    continue
                if isinstance(item, tuple) and item[0] is _CLOSE:
                    connection.close(item[1], item[2])
                    break
                if not session.silent:
                    connection.send(item)
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                registry.discard(session)
                self._cond.notify_all()
        reader.join(timeout=5)

    def _read_client(self, session: _Session) -> None:
        """Messages from the client are only logged, as in the application; records its close code."""
        from websockets.exceptions import ConnectionClosed

        try:
            for message in session.connection:
                with self._cond:
                    self.client_messages.append(message if isinstance(message, str) else repr(message))
        except ConnectionClosed:
            pass
        received = session.connection.protocol.close_rcvd  # None: the TCP connection ended without one
        with self._cond:
            self.client_close_codes.append(received.code if received else None)
            self._cond.notify_all()
        session.outbox.put((_CLOSE, 1000, ""))  # wake the sender; close() on a closed connection is a no-op


def main(argv: list[str] | None = None) -> int:
    """Stand-alone demo server: publishes a demo notification every --interval seconds."""
    import argparse
    import os
    import signal
    import sys

    parser = argparse.ArgumentParser(prog="python -m tacn.pipelines.watch.dev_server", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between demo notifications")
    parser.add_argument("--heartbeat-interval", type=float, default=30.0)
    parser.add_argument("--demo-task", metavar="TASK_ID",
                        help="a task that, once its status is first asked for, runs for ten intervals (progress on the "
                        "notification stream), then completes")
    args = parser.parse_args(argv)
    secret = os.environ.get("JWT_SECRET")
    if not secret:
        parser.error("set JWT_SECRET (the demo server verifies tokens with it)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server = DevWsServer(secret, port=args.port, heartbeat_interval=args.heartbeat_interval).start()
    except MissingExtraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3  # could not run, as for every tacn command
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.port))
        os.replace(args.port_file + ".tmp", args.port_file)
    kinds = [("analysis", "Analysis finished", "000001 平安银行: report ready"),
             ("alert", "Price alert", "600000 crossed 10.50"),
             ("system", "Sync failed", "akshare daily sync failed at 99%; re-run tacn sync")]
    n = step = 0
    if args.demo_task:
        server.set_task(args.demo_task, "pending", 0, "queued", publish=False)
    try:
        while not stop.wait(args.interval):
            n += 1
            if args.demo_task and server.status_requests and step < 10:  # the task starts once someone asks
                step += 1
                done = step == 10
                server.set_task(args.demo_task, "completed" if done else "running", step * 10,
                                "report ready" if done else f"analysing, step {step} of 10",
                                current_step=f"step {step}")
            kind, title, content = kinds[n % len(kinds)]
            server.publish(notification_message(n, title=title, content=content, kind=kind))
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
