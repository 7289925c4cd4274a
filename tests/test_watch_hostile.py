"""tacn watch against a hostile WebSocket server, and the escaping that keeps a terminal safe.

The hostile server speaks WebSocket by hand on a raw socket of 127.0.0.1, so it can do what the
application never would: escape sequences and bidi overrides in every field, JSON nested 100,000
deep, frames announcing exabytes, floods of fragments, frames and handshakes dripped a byte at a
time, close frames with hostile reasons, redirects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tacn.cli.commands.watch import message_line, shown_time
from tacn.pipelines.errors import AuthRefused
from tacn.pipelines.safe_text import escape_unprintable, json_safe, unescape
from tacn.pipelines.watch.client import MAX_FRAME_DEPTH, FrameTooDeep, json_depth, load_json
from tests.terminal_fixtures import read_terminal
from tests.watch_fixtures import UNSAFE_CATEGORIES, Watching, config_for, json_lines, run_cli, unsafe_chars

TOKEN = "hostile-test-token-0123456789"
HOSTILE = "\x1b[31mRED\x1b[0m \x1b]0;pwned\x07 \u202egnp.exe \u200bzero\u200d \x9b2J \r\x08 \ufeff \u2028 \U000e0041"
ESCAPED = [r"\x1b[31mRED\x1b[0m", r"\x1b]0;pwned\x07", r"\u202egnp.exe", r"\u200bzero\u200d", r"\x9b2J",
           r"\r\x08", r"\ufeff", r"\u2028", r"\U000e0041"]
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes | str, opcode: int = 1, fin: bool = True, length: int | None = None) -> bytes:
    """A server frame (unmasked); ``length`` may announce more than is sent."""
    data = payload.encode() if isinstance(payload, str) else payload
    n = len(data) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        header = bytes([first, n])
    elif n < 1 << 16:
        header = bytes([first, 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([first, 127]) + n.to_bytes(8, "big")
    return header + data


def text(message: dict) -> bytes:
    return frame(json.dumps(message))  # non-ASCII as \u escapes: a lone surrogate too


class Connection:
    def __init__(self, sock: socket.socket, request: str):
        self.sock, self.request = sock, request

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def drip(self, data: bytes, delay: float, stop: threading.Event) -> None:
        for i in range(len(data)):
            if stop.wait(delay):
                return
            self.sock.sendall(data[i:i + 1])

    def accept(self) -> None:
        key = re.search(r"(?im)^sec-websocket-key:\s*(\S+)", self.request)[1]
        digest = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()  # noqa: S324 - RFC 6455
        self.send(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {digest}\r\n\r\n".encode())


class HostileServer:
    """Runs ``scripts[n]`` for the n-th connection (the last one for any later); each script gets a
    Connection (call ``accept()`` to complete the handshake) and the server's stop event."""

    def __init__(self, *scripts):
        self.scripts, self.connections, self.requests = scripts, 0, []
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/ws/notifications"

    def _accept_loop(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.socks.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        request = b""
        try:
            while b"\r\n\r\n" not in request:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                request += chunk
            with self.cond:
                index = self.connections
                self.connections += 1
                self.requests.append(request.decode("latin-1"))
                self.cond.notify_all()
            script = self.scripts[min(index, len(self.scripts) - 1)]
            script(Connection(sock, request.decode("latin-1")), self.stop)
            while not self.stop.is_set() and sock.recv(65536):  # hold the connection until the client goes
                pass
        except OSError:
            pass
        finally:
            sock.close()

    def wait_connections(self, n: int, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.connections >= n, timeout)

    def close(self) -> None:
        self.stop.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the accepting thread
        except OSError:
            pass
        self.listener.close()
        for sock in self.socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self.threads:
            thread.join(timeout=5)


@pytest.fixture
def hostile():
    servers = []

    def make(*scripts) -> HostileServer:
        servers.append(HostileServer(*scripts))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def hostile_messages() -> list[dict]:
    return [
        {"type": "connected", "data": {"user_id": "admin" + HOSTILE, "timestamp": "2026-11-30T01:00:00",
                                       "message": HOSTILE}},
        {"type": "notification", "data": {"id": "n1", "type": "alert\x1b[2J", "title": HOSTILE, "content": HOSTILE,
                                          "link": "/x\u202e", "source": "s", "status": "unread",
                                          "created_at": "2026-11-30T09:00:00+08:00", "severity": "error\x1b[5m"}},
        {"type": "progress", "data": {"task_id": "t\u200b1", "status": "running\x07", "progress": 5,
                                      "message": HOSTILE}},
        {"type": "notification", "data": {"id": "n2", "title": "lone surrogate \ud800 and \\ backslash",
                                          "created_at": "2026-11-30T09:00:01+08:00"}},
    ]


def send_hostile(conn: Connection, stop) -> None:
    conn.accept()
    conn.send(frame(json.dumps({"type": "bogus\x1b]52;c;ZXZpbA==\x07"})))  # unknown type: a warning, escaped
    for message in hostile_messages():
        conn.send(text(message))
    conn.send(frame(b"\x03\xe8" + "bye\x1b[2J\u202e".encode(), opcode=8))  # close 1000 with a hostile reason


# -- terminal injection ----------------------------------------------------------------------------

def test_plain_output_shows_every_unsafe_character_escaped(hostile):
    server = hostile(send_hostile, lambda conn, stop: None)  # a second connection is refused at once
    result = run_cli("--url", server.url, "--token", TOKEN, "--limit", "4", "--verbose")
    assert result.exit_code == 0, result.stderr
    assert unsafe_chars(result.stdout.replace("\n", "")) == set()
    assert unsafe_chars(result.stderr.replace("\n", "")) == set()
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    for escaped in ESCAPED:
        assert escaped in lines[1]  # title and content of the notification, as escapes
    assert r"alert\x1b[2J" in lines[1] and r"ERROR\x1b[5M" in lines[1] and r"</x\u202e>" in lines[1]
    assert r"t\u200b1  running\x07  5%" in lines[2]
    assert r"lone surrogate \ud800 and \\ backslash" in lines[3]
    assert r"unknown type 'bogus\x1b]52;c;ZXZpbA==\x07'" in result.stderr


def test_json_output_is_the_exact_json_of_each_frame_and_still_safe_to_cat(hostile):
    server = hostile(send_hostile, lambda conn, stop: None)
    result = run_cli("--url", server.url, "--token", TOKEN, "--limit", "4", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == hostile_messages()  # the same JSON values, the lone surrogate too
    assert unsafe_chars(result.stdout.replace("\n", "")) == set()
    assert "\\u001b[31mRED" in result.stdout and "\\u202e" in result.stdout


def test_a_terminal_gets_only_rich_styles_never_the_servers_sequences(hostile):
    import pty

    server = hostile(send_hostile, lambda conn, stop: None)
    leader, follower = pty.openpty()
    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    proc = subprocess.Popen([exe, "watch", "--url", server.url, "--token", TOKEN, "--limit", "4"],
                            stdout=follower, stderr=subprocess.PIPE, env={**os.environ, "TERM": "xterm-256color"})
    os.close(follower)
    try:
        output = read_terminal(leader, timeout=30)
        _, stderr = proc.communicate(timeout=30)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    shown = output.decode("utf-8").replace("\r\n", "\n")
    assert "\x1b[" in shown  # rich styled the lines: this is a terminal
    styles_removed = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert unsafe_chars(styles_removed.replace("\n", "")) == set()
    for escaped in ESCAPED:
        assert escaped in styles_removed


# -- deep nesting and huge frames ------------------------------------------------------------------

def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deep_nesting_is_a_warning_and_the_stream_goes_on(hostile):
    nested_ok = {"type": "notification", "data": {"id": "ok", "metadata": json.loads(deep(MAX_FRAME_DEPTH - 2))}}

    def script(conn, stop):
        conn.accept()
        conn.send(frame('{"type": "notification", "data": ' + deep(100_000) + "}"))
        conn.send(frame('{"type": "notification", "data": {"x": ' + deep(MAX_FRAME_DEPTH) + "}}"))
        conn.send(frame(json.dumps({"type": "notification", "data": {"title": "[[[[" * 100}})))  # brackets in text
        conn.send(text(nested_ok))

    server = hostile(script)
    result = run_cli("--url", server.url, "--token", TOKEN, "--limit", "2", "--json")
    assert result.exit_code == 0, result.stderr
    assert [m["data"].get("id") for m in json_lines(result.stdout)] == [None, "ok"]
    assert json_lines(result.stdout)[1] == nested_ok
    assert result.stderr.count(f"nested deeper than {MAX_FRAME_DEPTH} levels") == 2
    assert "unexpected" not in result.stderr and "RecursionError" not in result.stderr


def test_a_frame_announcing_exabytes_is_not_read_and_the_next_connection_goes_on(hostile):
    def huge(conn, stop):
        conn.accept()
        conn.send(frame(b"", length=1 << 62))

    def good(conn, stop):
        conn.accept()
        conn.send(text({"type": "notification", "data": {"id": "after"}}))

    server = hostile(huge, good)
    result = run_cli("--url", server.url, "--token", TOKEN, "--type", "notification", "--limit", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout)[0]["data"]["id"] == "after"
    assert "announced 4,611,686,018,427,387,904 bytes" in result.stderr and "reconnected" in result.stderr


def test_fragments_are_assembled_with_a_size_limit_and_pings_between_them_answered(hostile):
    good = json.dumps({"type": "notification", "data": {"id": "frag", "title": "x" * 300}}).encode()
    big = json.dumps({"type": "notification", "data": {"title": "y" * 3000}}).encode()

    def script(conn, stop):
        conn.accept()
        chunks = [good[i:i + 50] for i in range(0, len(good), 50)]
        conn.send(frame(chunks[0], opcode=1, fin=False))
        conn.send(frame(b"are you there", opcode=9))  # a ping between fragments (RFC 6455 allows it)
        for chunk in chunks[1:-1]:
            conn.send(frame(chunk, opcode=0, fin=False))
        conn.send(frame(chunks[-1], opcode=0, fin=True))
        conn.send(frame(big[:100], opcode=1, fin=False))  # over the limit in total: skipped
        conn.send(frame(big[100:], opcode=0, fin=True))
        conn.send(frame(b"", opcode=1, fin=False))  # a flood of fragments: dropped at 64 x the limit
        piece = frame(b"z" * 1000, opcode=0, fin=False)
        for _ in range(100):
            conn.send(piece)

    def after(conn, stop):
        conn.accept()
        conn.send(text({"type": "notification", "data": {"id": "after"}}))

    server = hostile(script, after)
    watching = Watching(config_for(server.url, TOKEN, max_frame_bytes=1000, types=frozenset({"notification"})))
    try:
        assert watching.wait(lambda ev: sum(e.kind == "message" for e in ev) == 2)
    finally:
        watching.finish()
    assert [e.message["data"]["id"] for e in watching.of("message")] == ["frag", "after"]
    warnings = [e.text for e in watching.of("warning")]
    assert f"skipped a frame of {len(big):,} bytes (limit 1,000)" in warnings[0]
    assert "a fragmented message grew past 64,000 bytes: not read" in warnings[1]
    assert watching.result.reconnects == 1


@pytest.mark.parametrize("bad", [
    frame(b"lost", opcode=0),  # a continuation without a start
    frame(b'{"type"', opcode=1, fin=False) + frame(b"{}", opcode=1),  # a new message inside a fragmented one
    bytes([0x8F, 0]),  # a reserved opcode
])
def test_protocol_errors_drop_the_connection_and_reconnect(hostile, bad):
    def script(conn, stop):
        conn.accept()
        conn.send(bad)

    def after(conn, stop):
        conn.accept()
        conn.send(text({"type": "notification", "data": {"id": "after"}}))

    server = hostile(script, after)
    result = run_cli("--url", server.url, "--token", TOKEN, "--type", "notification", "--limit", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout)[0]["data"]["id"] == "after"
    assert "reconnected" in result.stderr and "protocol error" in result.stderr and "TACN_DEBUG" not in result.stderr


# -- slow drip ----------------------------------------------------------------------------------

def test_a_dripped_frame_arrives_whole(hostile):
    message = {"type": "notification", "data": {"id": "drip", "title": "一字一字"}}

    def script(conn, stop):
        conn.accept()
        conn.drip(text(message), 0.01, stop)  # ~0.7 s, longer than the client's read tick

    server = hostile(script)
    result = run_cli("--url", server.url, "--token", TOKEN, "--type", "notification", "--limit", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == [message]


def endless_drip(conn, stop):
    conn.drip(frame(b"x" * 100_000), 0.05, stop)


def endless_fragments(conn, stop):
    conn.send(frame(b"", opcode=1, fin=False))
    piece = frame(b"", opcode=0, fin=False) * 1000
    while not stop.is_set():
        conn.send(piece)


@pytest.mark.parametrize("flood", [endless_drip, endless_fragments])
def test_an_endless_frame_does_not_hold_the_deadline(hostile, flood):
    def script(conn, stop):
        conn.accept()
        flood(conn, stop)

    server = hostile(script)
    started = time.monotonic()
    result = run_cli("--url", server.url, "--token", TOKEN, "--timeout", "0.7", "--json")
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - started < 5 and "ended by timeout" in result.stderr


def test_a_dripped_handshake_gives_up_after_the_connect_timeout(hostile):
    def script(conn, stop):
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\n")
        conn.drip(b"X-Slow: " + b"a" * 10_000 + b"\r\n", 0.02, stop)

    server = hostile(script)
    started = time.monotonic()
    result = run_cli("--url", server.url, "--token", TOKEN, "--retries", "0",
                     env={"TACN_CONNECT_TIMEOUT": "1"})
    assert result.exit_code == 3, result.stderr
    assert "the handshake did not complete within 1 s" in result.stderr
    assert time.monotonic() - started < 6


# -- closes, redirects, errors with --json ------------------------------------------------------

def test_close_1008_with_a_hostile_reason_is_a_refused_token_and_the_reason_is_escaped(hostile):
    def script(conn, stop):
        conn.accept()
        conn.send(frame(b"\x03\xf0" + "Unauthorized\x1b[2J\u202e".encode(), opcode=8))

    server = hostile(script)
    watching = Watching(config_for(server.url, TOKEN))
    watching.thread.join(10)
    assert isinstance(watching.error, AuthRefused)
    assert r"closed with 1008 Unauthorized\x1b[2J\u202e" in str(watching.error)
    assert unsafe_chars(str(watching.error)) == set() and server.connections == 1


def test_a_redirect_is_not_followed_with_the_token(hostile):
    def script(conn, stop):
        conn.send(b"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:9/elsewhere\x1b[2J\r\nContent-Length: 0\r\n\r\n")

    server = hostile(script)
    result = run_cli("--url", server.url, "--token", TOKEN, "--retries", "3")
    assert result.exit_code == 3
    assert "redirects (HTTP 302) to ws://127.0.0.1:9/elsewhere" in result.stderr and "not follow" in result.stderr
    assert server.connections == 1 and TOKEN not in result.stderr


def test_json_stream_errors_go_to_stderr_only(hostile):
    def script(conn, stop):
        conn.accept()
        conn.send(text({"type": "notification", "data": {"id": "n1"}}))
        conn.send(frame(b"\x03\xf0Unauthorized", opcode=8))

    server = hostile(script)
    result = run_cli("--url", server.url, "--token", TOKEN, "--json")
    assert result.exit_code == 3
    assert [m["data"]["id"] for m in json_lines(result.stdout)] == ["n1"]  # one message per line, nothing else
    assert "refused the token" in result.stderr and '"error"' not in result.stdout


# -- the escaping, for any text --------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()))  # surrogates, controls, unassigned: everything


@given(any_text)
@settings(max_examples=500)
def test_escaping_is_printable_and_reversible(value):
    escaped = escape_unprintable(value)
    assert unsafe_chars(escaped) == set()
    assert unescape(escaped) == value  # reversible, hence injective


@given(st.text(st.characters(exclude_categories=tuple(UNSAFE_CATEGORIES))))
def test_printable_text_is_left_alone_except_backslashes(value):
    assert escape_unprintable(value) == value.replace("\\", "\\\\")


@given(st.recursive(st.none() | st.booleans() | st.integers() | any_text,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
                    max_leaves=10))
def test_json_lines_keep_the_value_and_carry_no_unsafe_character(value):
    line = json_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    assert unsafe_chars(line) == set() and "\n" not in line
    assert json.loads(line) == value


@given(st.dictionaries(st.sampled_from(["title", "content", "link", "type", "severity", "task_id", "status",
                                        "message", "user_id", "created_at", "timestamp", "progress"]),
                       any_text | st.integers() | st.floats(allow_nan=False)),
       st.sampled_from(["notification", "progress", "task_status", "connected", "heartbeat"]))
def test_no_terminal_line_carries_an_unsafe_character(data, kind):
    line, _ = message_line({"type": kind, "data": data})
    assert unsafe_chars(line) == set()


def test_json_depth_ignores_brackets_in_strings_and_load_json_refuses_deep_text():
    assert json_depth('{"a": "[[[{{{", "b": [[1], {"c": [2]}]}') == 4
    assert json_depth(r'["\"[[[", []]') == 2
    assert load_json(deep(MAX_FRAME_DEPTH)) == json.loads(deep(MAX_FRAME_DEPTH))
    with pytest.raises(FrameTooDeep):
        load_json(deep(MAX_FRAME_DEPTH + 1))
    with pytest.raises(FrameTooDeep):
        load_json(deep(1_000_000))


# -- one time zone -----------------------------------------------------------------------------------

def test_naive_timestamps_are_utc_and_aware_ones_are_converted_into_one_zone():
    from datetime import UTC

    naive_utc = {"timestamp": "2026-11-30T01:00:00.123456"}  # connected / heartbeat
    shanghai = {"created_at": "2026-11-30T09:00:00+08:00"}  # notification
    zulu = {"created_at": "2026-11-30T01:00:00Z"}
    assert shown_time(naive_utc) == shown_time(shanghai) == shown_time(zulu) == "2026-11-30 09:00:00"
    assert shown_time(naive_utc, UTC) == shown_time(shanghai, UTC) == shown_time(zulu, UTC) == "2026-11-30 01:00:00"
    assert shown_time({"created_at": "yesterday"}) == "yesterday"


@pytest.mark.parametrize("args, zone_note, hour", [([], "Asia/Shanghai", "09:00"), (["--utc"], "UTC", "01:00")])
def test_one_stream_shows_one_zone(hostile, args, zone_note, hour):
    def script(conn, stop):
        conn.accept()
        conn.send(text({"type": "connected", "data": {"user_id": "admin", "timestamp": "2026-11-30T01:00:00.5"}}))
        conn.send(text({"type": "heartbeat", "data": {"timestamp": "2026-11-30T01:00:01"}}))
        conn.send(text({"type": "notification", "data": {"title": "t", "created_at": "2026-11-30T09:00:02+08:00"}}))

    server = hostile(script)
    result = run_cli("--url", server.url, "--token", TOKEN, "--limit", "3", "--verbose", *args)
    assert result.exit_code == 0, result.stderr
    assert [line[:19] for line in result.stdout.splitlines()] == [
        f"2026-11-30 {hour}:00", f"2026-11-30 {hour}:01", f"2026-11-30 {hour}:02"]
    assert f"times in {zone_note}" in result.stderr


def test_category_table_matches_unicodedata():
    # the tests' notion of unsafe is the module's: the categories, and nothing printable
    from tacn.pipelines.safe_text import is_unsafe

    for code in range(0, 0x110000, 7):
        char = chr(code)
        assert is_unsafe(char) == (unicodedata.category(char) in UNSAFE_CATEGORIES), hex(code)


# -- numeric options at parse time ----------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--timeout", "inf"], ["--timeout", "nan"], ["--timeout", "-1"], ["--heartbeat-timeout", "nan"],
    ["--heartbeat-timeout", "inf"], ["--poll-interval", "0"], ["--poll-interval", "nan"], ["--limit", "-3"],
    ["--retries", "-1"], ["--ttl", "9999999999d", "--mint-token"], ["--task", "t1", "--limit", "2"],
    ["--task", "t1", "--type", "progress"], ["--task", "a/b"], ["--task", " "],
])
def test_bad_numbers_and_combinations_are_usage_errors(args):
    token = [] if "--mint-token" in args else ["--token", "t0ken-value"]
    result = run_cli("--api-url", "http://127.0.0.1:9", *token, *args, env={"JWT_SECRET": "x" * 32})
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
