"""tacn watch / ws-stats against a real WebSocket server speaking the application's protocol.

The server (pipelines/watch/dev_server.py) runs on a free port of 127.0.0.1 in a thread, verifies
JWTs like the application, sends `connected`, heartbeats at a short interval and what the test
publishes. Tests wait on the server's and the client's events, never on sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tacn.cli.app import app
from tacn.cli.commands.watch import message_line, severity
from tacn.pipelines.errors import AuthRefused, SourceError
from tacn.pipelines.watch.client import (
    Backoff,
    WatchConfig,
    api_base,
    endpoint_url,
    follow_task,
    is_ws_endpoint,
    mint_token,
    shown_url,
)
from tacn.pipelines.watch.dev_server import DevWsServer, notification_message, progress_message
from tests.watch_fixtures import SECRET, Watching, free_port, in_background, json_lines, run_cli, runner


@pytest.fixture
def server():
    with DevWsServer(SECRET, heartbeat_interval=0.1, close_timeout=0.3) as started:
        yield started


def config_for(server: DevWsServer, **overrides) -> WatchConfig:
    fields = {"url": server.ws_url(), "token": server.token(), "backoff": Backoff(base=0.2, cap=1.0)}
    fields.update(overrides)
    return WatchConfig(**fields)


# -- output: order, JSON equality, filters, count ----------------------------------------------

def test_notifications_arrive_in_order_and_json_lines_equal_what_was_sent(server):
    sent = [notification_message(i, content=f"第{i}条 \"quoted\"\nmultiline") for i in range(5)]

    def script():
        assert server.wait_sessions(1)
        for message in sent:
            server.publish(message)

    in_background(script)
    result = run_cli("--url", server.ws_url(), "--token", server.token(), "--json", "--type", "notification",
                     "--limit", "5")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == sent
    assert "connected to ws://127.0.0.1" in result.stderr and "token=***" in result.stderr


def test_terminal_lines_show_connected_once_hide_heartbeats_and_severity_only_when_sent(server):
    def script():
        assert server.wait_sessions(1)
        assert server.wait_for(lambda s: s.heartbeats_sent >= 2)  # heartbeats reached the client first
        server.publish(notification_message(1, title="Sync failed", content="at 99%", link="/sync/1"))
        server.publish(notification_message(2, title="Disk full", kind="system", severity="error"))

    in_background(script)
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--limit", "3")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert "CONNECTED" in lines[0] and "admin" in lines[0]
    # the application's notification has no severity: none is shown or invented from its text
    assert "NOTIFICATION  analysis  Sync failed  — at 99%  </sync/1>" in lines[1]
    assert not any(level in lines[1] for level in ("ERROR", "INFO", "WARNING"))
    assert "NOTIFICATION  system  ERROR  Disk full" in lines[2]
    assert "HEARTBEAT" not in result.stdout
    assert "times in Asia/Shanghai" in result.stderr


def test_verbose_shows_heartbeats(server):
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--limit", "3", "--verbose")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("HEARTBEAT") == 2


def test_type_filter_keeps_only_listed_types(server):
    def script():
        assert server.wait_sessions(1)
        for i in range(3):
            server.publish(notification_message(i))
            server.publish(progress_message("t1", "running", i * 10))

    in_background(script)
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--json", "--type", "progress",
                     "--limit", "3")
    assert result.exit_code == 0, result.stderr
    assert [m["data"]["progress"] for m in json_lines(result.stdout)] == [0, 10, 20]
    assert {m["type"] for m in json_lines(result.stdout)} == {"progress"}


def test_timeout_exits_0(server):
    started = time.monotonic()
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--json", "--timeout", "0.5")
    assert result.exit_code == 0, result.stderr
    assert 0.5 <= time.monotonic() - started < 5
    assert json_lines(result.stdout)[0]["type"] == "connected"
    assert "ended by timeout" in result.stderr


def test_token_minted_from_dotenv(server, tmp_path):
    (tmp_path / ".env").write_text(f"JWT_SECRET={SECRET}\n")
    result = run_cli("--api-url", server.api_url, "--mint-token", "--user", "ops", "--ttl", "5m", "--limit", "1",
                     "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout)[0]["data"]["user_id"] == "admin"  # the application ignores sub
    assert SECRET not in result.stdout + result.stderr


def test_token_from_tacn_token_env(server):
    token = server.token("envuser")
    result = run_cli("--api-url", server.api_url, "--limit", "1", "--json", env={"TACN_TOKEN": token})
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout)[0]["type"] == "connected"
    assert token not in result.stdout + result.stderr


# -- staying connected ----------------------------------------------------------------------------

def test_server_restart_on_the_same_port_reconnects_within_the_backoff_schedule(server):
    watching = Watching(config_for(server, types=frozenset({"notification"})))
    try:
        assert server.wait_sessions(1)
        server.publish(notification_message(1))
        assert watching.wait(lambda ev: any(e.kind == "message" for e in ev))
        server.stop()
        # down long enough for at least two retries to fail
        assert watching.wait(lambda ev: sum(e.kind == "retry" for e in ev) >= 3)
        restarted = time.monotonic()
        server.start()
        assert watching.wait(lambda ev: any(e.kind == "connected" and "reconnected" in e.text for e in ev))
        assert server.wait_sessions(2)
        server.publish(notification_message(2))
        assert watching.wait(lambda ev: sum(e.kind == "message" for e in ev) == 2)
    finally:
        watching.finish()
    assert watching.error is None
    retries = watching.of("retry")
    backoff = watching.config.backoff
    for event in retries:  # each delay within its slot of the schedule: ceiling x [0.8, 1]
        ceiling = backoff.ceiling(event.attempt)
        assert 0.8 * ceiling - 1e-9 <= event.delay <= ceiling
    assert [e.attempt for e in retries] == list(range(1, len(retries) + 1))
    reconnected = next(e for e in watching.events if e.kind == "connected" and "reconnected" in e.text)
    last_retry = max((e for e in retries if e.at <= reconnected.at), key=lambda e: e.at)
    assert reconnected.at - restarted <= last_retry.delay + 1.0  # the retry pending at restart succeeded
    assert [m.message["data"]["id"] for m in watching.of("message")] == ["n1", "n2"]
    assert watching.result.reconnects == 1


def test_cli_restart_reports_reconnects_on_stderr_and_shows_later_messages(server):
    def script():
        assert server.wait_sessions(1)
        server.publish(notification_message(1))
        server.restart()
        assert server.wait_sessions(2)
        server.publish(notification_message(2))

    in_background(script)
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--json", "--type", "notification",
                     "--limit", "2")
    assert result.exit_code == 0, result.stderr
    assert [m["data"]["id"] for m in json_lines(result.stdout)] == ["n1", "n2"]
    assert "server closed the connection (1012 server shutdown)" in result.stderr
    assert "reconnecting in" in result.stderr and "reconnected to" in result.stderr


def test_silent_server_is_detected_by_the_watchdog(server):
    def script():
        assert server.wait_sessions(1)
        server.silence()  # socket open, no heartbeat
        assert server.wait_sessions(2)
        server.publish(notification_message(7))

    in_background(script)
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--json", "--type", "notification",
                     "--limit", "1", "--heartbeat-timeout", "0.5")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout)[0]["data"]["id"] == "n7"
    assert "heartbeat timeout" in result.stderr and "reconnected to" in result.stderr


def test_a_connection_that_lived_resets_the_retry_counter(server):
    # base 0.5 s: the restart (milliseconds) is over long before the first retry is due
    watching = Watching(config_for(server, stable_after=0.0, backoff=Backoff(base=0.5, cap=1.0)))
    try:
        for n in (1, 2, 3):
            assert server.wait_sessions(n)
            server.restart()
        assert server.wait_sessions(4)
        assert watching.wait(lambda ev: sum(e.kind == "connected" for e in ev) == 4)
    finally:
        watching.finish()
    assert {e.attempt for e in watching.of("retry")} == {1}  # never escalated: each connection lived


def test_max_retries_then_gives_up():
    url = f"ws://127.0.0.1:{free_port()}/api/ws/notifications"
    watching = Watching(WatchConfig(url=url, token="x" * 20, max_retries=2, backoff=Backoff(base=0.05, cap=0.1)))
    watching.thread.join(10)
    assert isinstance(watching.error, SourceError) and "after 2 retries" in str(watching.error)
    assert [e.attempt for e in watching.of("retry")] == [1, 2]
    assert len(watching.of("disconnected")) == 3  # the first attempt and two retries


def test_unreachable_host_cli_exit_3_after_max_retries():
    result = run_cli("--api-url", f"http://127.0.0.1:{free_port()}", "--token", "tok-secret-123", "--retries", "0")
    assert result.exit_code == 3
    assert "gave up" in result.stderr and "ConnectionRefusedError" in result.stderr
    assert "tok-secret-123" not in result.stderr


# -- fatal cases -------------------------------------------------------------------------------

def test_bad_token_is_refused_with_403_before_the_handshake_and_the_probe_blames_the_token(server):
    bad = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.not-a-valid-signature"
    result = run_cli("--api-url", server.api_url, "--token", bad, "--retries", "5")
    assert result.exit_code == 3
    error = result.stderr
    assert "token refused or wrong endpoint" in error and "HTTP 403" in error
    assert f"{server.ws_url()}?token=***" in error  # the URL, its token masked
    assert "the server refused the token given with --token" in error and "endpoint is right" in error
    assert server.handshakes == 1 and server.unauthorized == 1 and server.sessions_opened == 0
    assert server.stats_requests == 1  # the probe
    assert bad not in result.stdout + result.stderr


def test_token_minted_with_the_wrong_secret_says_it_was_minted(server):
    result = run_cli("--api-url", server.api_url, "--mint-token", env={"JWT_SECRET": "another-secret-" + "x" * 32})
    assert result.exit_code == 3
    assert "refused the token minted locally for user 'admin'" in result.stderr and "JWT_SECRET" in result.stderr
    assert server.handshakes == 1


def test_expired_token_is_refused_and_says_when_it_expired(server):
    import jwt

    expired = jwt.encode({"sub": "admin", "exp": 1_700_000_000}, SECRET, algorithm="HS256")
    result = run_cli("--api-url", server.api_url, "--token", expired)
    assert result.exit_code == 3 and "refused the token" in result.stderr
    assert "expired at 2023-11-14 22:13:20 UTC" in result.stderr
    assert expired not in result.stdout + result.stderr


@pytest.mark.parametrize("status", [401, 403])
def test_handshake_refused_exits_3_after_one_attempt(status):
    with DevWsServer(SECRET, refuse_status=status, close_timeout=0.3) as refusing:
        token = refusing.token()
        result = run_cli("--api-url", refusing.api_url, "--token", token, "--verbose")
        assert result.exit_code == 3
        assert f"HTTP {status}: token refused or wrong endpoint" in result.stderr
        assert "the server refused the token" in result.stderr
        assert refusing.handshakes == 1
    assert token not in result.stdout + result.stderr


@pytest.mark.parametrize("path", ["/wrong/path", "/api/ws/notification", "/api/ws/tasks/"])
def test_unknown_path_is_403_like_the_application_and_the_probe_says_wrong_endpoint_path(server, path):
    result = run_cli("--url", server.ws_url(path), "--token", server.token(), "--retries", "3")
    assert result.exit_code == 3
    assert "token refused or wrong endpoint" in result.stderr and "wrong endpoint path" in result.stderr
    assert f"expected {server.ws_url()}?token=***" in result.stderr
    assert "refused the token" not in result.stderr
    assert server.handshakes == 1 and server.unauthorized == 0


def test_wrong_base_url_is_told_apart_from_a_bad_token(server):
    token = server.token()
    result = run_cli("--api-url", server.api_url + "/tradingagents", "--token", token)
    assert result.exit_code == 3
    assert "token refused or wrong endpoint" in result.stderr and "wrong base URL" in result.stderr
    assert f"{server.api_url}/tradingagents/api/ws/stats answered HTTP 404" in result.stderr
    assert "refused the token" not in result.stderr and token not in result.stderr


def test_handshake_404_from_another_server_is_not_retried(http_endpoint):
    base = http_endpoint(404, b'{"detail": "Not Found"}')
    result = run_cli("--api-url", base, "--token", "t0ken-value", "--retries", "3")
    assert result.exit_code == 3 and "HTTP 404" in result.stderr and "check the URL" in result.stderr


# -- bad input -----------------------------------------------------------------------------------

def test_malformed_frames_are_warnings_and_the_stream_goes_on(server):
    def script():
        assert server.wait_sessions(1)
        for frame in ("not json {", "[1, 2, 3]", '"a string"', '{"data": {}}', '{"type": 5}',
                      '{"type": "bogus", "data": {}}', json.dumps({"type": "notification", "pad": "x" * (1 << 20)}),
                      b"\x00\x01binary", b"\xff\xfe"):
            server.publish_raw(frame)
        server.publish(notification_message(42))

    in_background(script)
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--json", "--type", "notification",
                     "--limit", "1")
    assert result.exit_code == 0, result.stderr
    assert [m["data"]["id"] for m in json_lines(result.stdout)] == ["n42"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 9, result.stderr
    for expected in ("not JSON", "JSON list", "JSON str", "without a type", "unknown type 'bogus'",
                     "bytes (limit", "binary frame"):
        assert expected in result.stderr
    assert "9 warning(s)" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--url", "http://127.0.0.1:1/api/ws/notifications"], "--url: expected ws://HOST or wss://HOST"),
    (["--api-url", "ftp://x"], "--api-url: expected http://HOST or https://HOST"),
    (["--api-url", "http://127.0.0.1:notaport"], "not a valid URL"),
    (["--url", "ws://h/x", "--api-url", "http://h"], "not both"),
    (["--url", "ws://h/api/ws/notifications?token=abcd1234"], "not inside --url"),
    (["--type", "notification,bogus"], "--type"),
    (["--limit", "0"], "--limit"),
    (["--ttl", "soon", "--mint-token"], "--ttl"),
    (["--mint-token", "--token", "abcd"], "not both"),
])
def test_bad_input_is_a_usage_error(args, message):
    result = run_cli(*args) if "--token" in args or "--mint-token" in args else run_cli(*args, "--token", "t0ken")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "abcd1234" not in result.stderr


def test_no_token_is_a_usage_error_and_missing_jwt_secret_cannot_run():
    result = run_cli("--api-url", "http://127.0.0.1:1")
    assert result.exit_code == 2 and "no token" in result.stderr
    result = run_cli("--api-url", "http://127.0.0.1:1", "--mint-token")
    assert result.exit_code == 3 and "JWT_SECRET" in result.stderr


# -- --task ----------------------------------------------------------------------------------

@pytest.mark.parametrize("final, code", [("completed", 0), ("failed", 1), ("cancelled", 1)])
def test_task_polls_the_status_endpoint_and_shows_its_progress_frames(server, final, code):
    token = server.token()
    server.set_task("t-42", "pending", publish=False)

    def script():
        assert server.wait_sessions(1)  # the progress stream is open
        assert server.wait_for(lambda s: len(s.status_requests) >= 1)  # and the first poll answered pending
        server.publish(notification_message(1))  # not the task's: not shown
        server.set_task("other", "failed", 100)  # another task's progress: not shown
        server.set_task("t-42", "running", 50, "halfway", current_step="news")
        polled = len(server.status_requests)
        assert server.wait_for(lambda s: len(s.status_requests) > polled + 1)
        server.set_task("t-42", final, 100, "the end")

    in_background(script)
    result = run_cli("--api-url", server.api_url, "--token", token, "--task", "t-42", "--json",
                     "--poll-interval", "0.1")
    assert result.exit_code == code, result.stderr
    lines = json_lines(result.stdout)
    statuses = [m["data"]["status"] for m in lines if m["type"] == "task_status"]
    assert statuses[0] == "pending" and statuses[-1] == final and "running" in statuses
    assert all(m["type"] in ("task_status", "progress") for m in lines)
    progress = [m for m in lines if m["type"] == "progress"]
    assert {m["data"]["task_id"] for m in progress} <= {"t-42"} and 50 in [m["data"]["progress"] for m in progress]
    assert set(server.status_requests) == {f"Bearer {token}"}
    assert server.task_sessions_opened == 0  # the task socket is never used: the application sends nothing there
    assert "/api/analysis/tasks/t-42/status" in result.stderr
    assert f"task t-42 {final}: the end" in result.stderr
    assert token not in result.stderr


def test_task_terminal_lines(server):
    server.set_task("t-7", "completed", 100, "报告已生成", publish=False)
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--task", "t-7")
    assert result.exit_code == 0, result.stderr
    assert "TASK  t-7  completed  100%  报告已生成" in result.stdout


def test_unknown_task_is_404_and_exits_3(server):
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--task", "nope", "--json")
    assert result.exit_code == 3
    assert "task nope does not exist" in result.stderr and "HTTP 404 任务不存在" in result.stderr
    assert result.stdout == ""  # streaming --json: errors on stderr only


def test_task_against_a_wrong_base_url_says_so(server):
    result = run_cli("--api-url", server.api_url + "/prefix", "--token", server.token(), "--task", "t-1")
    assert result.exit_code == 3
    assert "answered HTTP 404 Not Found" in result.stderr and "base URL is wrong" in result.stderr
    assert "does not exist" not in result.stderr


def test_task_status_refuses_a_bad_token(server):
    server.set_task("t-1", "running", publish=False)
    result = run_cli("--api-url", server.api_url, "--token", "not-a-jwt-0123456789", "--task", "t-1")
    assert result.exit_code == 3
    assert "/api/analysis/tasks/t-1/status refused the token given with --token (HTTP 401" in result.stderr
    assert "not-a-jwt-0123456789" not in result.stderr


def test_task_status_unavailable_is_polled_again_with_a_warning(server):
    server.set_task("t-9", "completed", 100, "done", publish=False)
    server.status_unavailable = 2
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--task", "t-9", "--json",
                     "--poll-interval", "0.1")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("answered HTTP 503") == 2 and "asking again in" in result.stderr
    assert [m["data"]["status"] for m in json_lines(result.stdout)] == ["completed"]


def test_task_poll_gives_up_after_max_retries(server):
    server.set_task("t-9", "running", publish=False)
    server.status_unavailable = 10
    watching = Watching(config_for(server, task_id="t-9", max_retries=1, backoff=Backoff(base=0.05, cap=0.1)),
                        run=follow_task, poll_interval=0.05)
    watching.thread.join(20)
    assert isinstance(watching.error, SourceError) and "after 1 retry" in str(watching.error)
    assert "HTTP 503" in str(watching.error)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_task_follow_interrupted_exits_130_and_closes_the_stream(server, signum):
    server.set_task("t-5", "running", 5, publish=False)
    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    proc = subprocess.Popen([exe, "watch", "--api-url", server.api_url, "--task", "t-5", "--json",
                             "--poll-interval", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TACN_TOKEN": server.token()})
    try:
        assert server.wait_sessions(1, timeout=30)
        assert json.loads(proc.stdout.readline())["type"] == "task_status"  # polling
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert server.wait_client_close(1) and server.client_close_codes == [1000]


def test_task_timeout_without_a_final_status_cannot_run(server):
    server.set_task("t-1", "running", 10, publish=False)
    started = time.monotonic()
    result = run_cli("--api-url", server.api_url, "--token", server.token(), "--task", "t-1", "--timeout", "0.5",
                     "--poll-interval", "0.1")
    assert result.exit_code == 3 and "task t-1 did not finish within 0.5 s" in result.stderr
    assert time.monotonic() - started < 10
    assert len(server.status_requests) >= 2


# -- Ctrl-C and SIGTERM in a real process -----------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_closes_with_1000_and_exits_130(server, signum):
    token = server.token()
    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    proc = subprocess.Popen([exe, "watch", "--api-url", server.api_url, "--json", "--type", "notification"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TACN_TOKEN": token})
    try:
        assert server.wait_sessions(1, timeout=30)
        server.publish(notification_message(1))
        first = proc.stdout.readline()  # the process is in its read loop
        assert json.loads(first)["data"]["id"] == "n1"
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "closed the connection (1000)" in stderr
    assert server.wait_client_close(1) and server.client_close_codes == [1000]
    assert token not in stderr


# -- the dev server behaves like the application --------------------------------------------------

def test_dev_server_speaks_like_the_application(server):
    import websocket

    for query in ("", "?token=", "?token=garbage"):  # missing, empty, bad: refused before accepting
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(server.ws_url() + query, timeout=5)
        assert refused.value.status_code == 403
    token = server.token("someone")
    notifications = websocket.create_connection(f"{server.ws_url()}?token={token}", timeout=5)
    task_socket = websocket.create_connection(f"{server.ws_url('/api/ws/tasks/t1')}?token={token}", timeout=5)
    try:
        for ws in (notifications, task_socket):
            connected = json.loads(ws.recv())
            assert connected["type"] == "connected" and connected["data"]["user_id"] == "admin"
            assert "+" not in connected["data"]["timestamp"]  # naive UTC
        assert server.wait_for(lambda s: s.task_sessions_opened == 1)
        server.set_task("t1", "running", 30, "x")  # progress goes to the notification sockets
        server.publish(notification_message(1))
        frames = []
        while len(frames) < 2:
            frame = json.loads(notifications.recv())
            if frame["type"] != "heartbeat":
                frames.append(frame)
        assert [f["type"] for f in frames] == ["progress", "notification"]
        assert frames[0]["data"]["task_id"] == "t1"
        published = frames[1]["data"]
        assert "severity" not in published and published["status"] == "unread"
        assert published["created_at"].endswith("+08:00")
        task_socket.settimeout(0.5)
        with pytest.raises(websocket.WebSocketTimeoutException):  # the task socket gets nothing more
            task_socket.recv()
    finally:
        notifications.close()
        task_socket.close()


# -- ws-stats ----------------------------------------------------------------------------------

def test_ws_stats_reports_users_and_connections(server):
    import websocket

    sockets = [websocket.create_connection(f"{server.ws_url()}?token={server.token(user)}", timeout=5)
               for user in ("admin", "admin", "bob")]
    sockets.append(websocket.create_connection(f"{server.ws_url('/api/ws/tasks/t1')}?token={server.token()}",
                                               timeout=5))
    try:
        assert server.wait_for(lambda s: s.stats()["total_connections"] == 3)
        result = runner.invoke(app, ["ws-stats", "--api-url", server.api_url, "--json"])
        assert result.exit_code == 0, result.stderr
        # the application counts every connection under "admin" and never registers task sockets
        assert json.loads(result.stdout) == {"api_url": server.api_url, "total_users": 1, "total_connections": 3,
                                             "users": {"admin": 3}}
        table = runner.invoke(app, ["ws-stats", "--api-url", server.api_url])
        assert table.exit_code == 0 and "admin" in table.stdout and "1 user(s), 3 connection(s)" in table.stdout
    finally:
        for ws in sockets:
            ws.close()


class _Answer(BaseHTTPRequestHandler):
    status, body = 200, b"{}"

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_endpoint():
    def serve(status: int, body: bytes) -> str:
        handler = type("Handler", (_Answer,), {"status": status, "body": body})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    started = []
    yield serve
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def test_ws_stats_against_a_plain_http_endpoint(http_endpoint):
    url = http_endpoint(200, b'{"total_users": 1, "total_connections": 4, "users": {"ops": 4}}')
    result = runner.invoke(app, ["ws-stats", "--json"], env={"TACN_API_URL": url})
    assert result.exit_code == 0 and json.loads(result.stdout)["users"] == {"ops": 4}


@pytest.mark.parametrize("status, body, message", [
    (500, b"boom", "HTTP 500"),
    (200, b"<html>not json</html>", "did not answer with the stats JSON"),
    (200, b'{"total_users": "many"}', "did not answer with the stats JSON"),
])
def test_ws_stats_bad_answers_exit_3(http_endpoint, status, body, message):
    result = runner.invoke(app, ["ws-stats", "--api-url", http_endpoint(status, body)])
    assert result.exit_code == 3 and message in result.stderr and "Traceback" not in result.stderr


def test_ws_stats_unreachable_exits_3():
    result = runner.invoke(app, ["ws-stats", "--api-url", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 3 and "cannot reach" in result.stderr


# -- units ---------------------------------------------------------------------------------------

def test_backoff_doubles_from_1_s_to_30_s_with_jitter_below_the_ceiling():
    backoff = Backoff()
    assert [backoff.ceiling(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(3, rng=lambda: 0.0) == 4 and backoff.delay(3, rng=lambda: 1.0) == pytest.approx(3.2)


def test_endpoint_urls():
    assert endpoint_url() == "ws://localhost:8000/api/ws/notifications"
    assert endpoint_url(api_url="https://app.example.com/base/") == "wss://app.example.com/base/api/ws/notifications"
    assert shown_url("ws://h/api/ws/notifications") == "ws://h/api/ws/notifications?token=***"
    assert api_base("wss://h:8443/base/api/ws/notifications") == "https://h:8443/base"
    assert api_base("ws://h/elsewhere") == "http://h"
    assert is_ws_endpoint("ws://h/p/api/ws/notifications") and is_ws_endpoint("ws://h/api/ws/tasks/t1")
    assert not is_ws_endpoint("ws://h/api/ws/tasks/") and not is_ws_endpoint("ws://h/api/ws/notification")


def test_minted_token_is_hs256_with_sub_and_exp():
    import jwt

    claims = jwt.decode(mint_token(SECRET, "ops", 60), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "ops" and 0 < claims["exp"] - time.time() <= 60


def test_severity_only_when_the_message_has_one_and_lines():
    assert severity({"status": "failed", "type": "alert"}) is None
    assert severity({"severity": "Warning"}) == "warning" and severity({"level": "error"}) == "error"
    line, style = message_line({"type": "progress", "data": {"task_id": "t", "status": "running", "progress": 12.5}})
    assert "PROGRESS  t  running  12.5%" in line and style is None
    line, _ = message_line({"type": "notification"})  # no data at all: still a line
    assert "NOTIFICATION" in line
    line, _ = message_line({"type": "task_status", "data": {"task_id": "t", "status": "running", "progress": 10**400}})
    assert "TASK  t  running  1000000" in line  # JSON allows an integer too large for a float


def test_auth_refused_from_the_library_names_the_origin(server):
    watching = Watching(config_for(server, token="bad-token-value", token_origin="given in TACN_TOKEN"))
    watching.thread.join(10)
    assert isinstance(watching.error, AuthRefused) and "given in TACN_TOKEN" in str(watching.error)
    assert all("bad-token-value" not in e.text for e in watching.events)


def test_cli_knows_the_library_message_types():
    from tacn.cli.commands.watch import MESSAGE_TYPES
    from tacn.pipelines.watch.client import KNOWN_TYPES

    assert MESSAGE_TYPES == KNOWN_TYPES  # the command may not import pipelines at module level


def test_a_frame_far_over_the_limit_is_not_read_and_the_stream_goes_on(server):
    watching = Watching(config_for(server, max_frame_bytes=1000, types=frozenset({"notification"})))
    try:
        assert server.wait_sessions(1)
        server.publish_raw("x" * 5000)  # over the limit: read, skipped
        server.publish_raw("y" * 100_000)  # over 64 x the limit: refused unread, connection dropped
        assert server.wait_sessions(2)
        server.publish(notification_message(1, content=""))
        assert watching.wait(lambda ev: any(e.kind == "message" for e in ev))
    finally:
        watching.finish()
    warnings = [e.text for e in watching.of("warning")]
    assert "skipped a frame of 5,000 bytes" in warnings[0] and "announced 100,000 bytes" in warnings[1]
    assert watching.result.reconnects == 1


# -- TLS: certificates are verified unless --insecure ------------------------------------------

@pytest.fixture
def tls_server(tmp_path):
    import shutil
    import ssl

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with DevWsServer(SECRET, close_timeout=0.3, ssl_context=context) as started:
        yield started


def test_wss_with_an_unverifiable_certificate_exits_3_unless_insecure(tls_server):
    assert tls_server.ws_url().startswith("wss://")
    result = run_cli("--url", tls_server.ws_url(), "--token", tls_server.token(), "--retries", "3")
    assert result.exit_code == 3 and "could not be verified" in result.stderr and "--insecure" in result.stderr
    assert tls_server.handshakes == 0  # refused at the TLS layer, not retried
    result = run_cli("--api-url", tls_server.api_url, "--token", tls_server.token(), "--insecure", "--limit", "1",
                     "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout)[0]["type"] == "connected"


def test_ws_stats_over_https_verifies_unless_insecure(tls_server):
    result = runner.invoke(app, ["ws-stats", "--api-url", tls_server.api_url])
    assert result.exit_code == 3 and "could not be verified" in result.stderr
    result = runner.invoke(app, ["ws-stats", "--api-url", tls_server.api_url, "--insecure", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["total_connections"] == 0
