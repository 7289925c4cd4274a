"""tacn watch: throughput and delay on loopback, then a soak with server restarts.

1. Burst: the dev server (pipelines/watch/dev_server.py, in this process) sends 10,000 notifications
   as fast as it can to `tacn watch --json --type notification --limit N > file`; each carries its
   send time. Reported: messages/s and the median / p99 delay from send to the line appearing
   in the file (a thread tails the file). Floor: a bare websocket-client loop writing each frame
   to a file (no parsing, filtering or rendering), same server, same run.
2. Soak: 50 messages/s to `tacn watch --json` for BENCH_SOAK_SECONDS (default 60) with a server
   restart every BENCH_SOAK_RESTART seconds (default 20; the server stays down
   BENCH_SOAK_DOWNTIME, default 2 s). Reported: RSS of the watch process at start and end
   (target: growth <= 10%) and messages lost, split into "published while no connection was
   open" (expected) and "delivered to a connection but not written" (must be 0).
   The issue's full soak: BENCH_SOAK_SECONDS=600 BENCH_SOAK_RESTART=120 python bench/bench_watch.py
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report, scaled  # noqa: E402

from tacn.pipelines.watch.dev_server import DevWsServer, notification_message  # noqa: E402

SECRET = "bench-jwt-secret-0123456789abcdef0123456789abcdef"
N = scaled(10_000)
SOAK_SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "60"))
SOAK_RESTART = float(os.environ.get("BENCH_SOAK_RESTART", "20"))
SOAK_DOWNTIME = float(os.environ.get("BENCH_SOAK_DOWNTIME", "2"))
SOAK_RATE = 50.0
TACN = os.path.join(os.path.dirname(sys.executable), "tacn")

FLOOR_CLIENT = """
import sys, websocket
ws = websocket.create_connection(sys.argv[1], skip_utf8_validation=True)
n, out = int(sys.argv[2]), open(sys.argv[3], "w")
while n:
    frame = ws.recv()
    if '"notification"' in frame:
        out.write(frame + "\\n"); out.flush(); n -= 1
ws.close()
"""


class FileTail(threading.Thread):
    """Records when each line appears in a file that another process writes."""

    def __init__(self, path: Path, expected: int | None = None):
        super().__init__(daemon=True)
        self.path, self.expected = path, expected
        self.seen: list[tuple[float, dict]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        buffer = b""
        with open(self.path, "rb") as f:
            while not self.stop.is_set():
                chunk = f.read()
                if not chunk:
                    if self.expected is not None and len(self.seen) >= self.expected:
                        return
                    time.sleep(0.0005)  # polling a file: the only way to see it grow
                    continue
                now = time.time()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                self.seen.extend((now, json.loads(line)) for line in lines if line)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def burst(server: DevWsServer, tmp: Path, command: list[str], env: dict, label: str) -> dict:
    out_path = tmp / f"{label}.ndjson"
    out_path.touch()
    opened_before = server.sessions_opened
    tail = FileTail(out_path, expected=N)
    tail.start()
    with open(out_path, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, env=env)
    if not server.wait_sessions(opened_before + 1, timeout=60):
        proc.kill()
        raise SystemExit(f"{label}: the client never connected: {proc.stderr.read().decode()}")
    start = time.time()
    for i in range(N):
        server.publish(notification_message(i, sent_at=time.time()))
    proc.wait(timeout=300)
    tail.join(timeout=60)
    tail.stop.set()
    seen = tail.seen
    if proc.returncode != 0 or len(seen) != N:
        raise SystemExit(f"{label}: exit {proc.returncode}, {len(seen)} of {N} lines: {proc.stderr.read().decode()}")
    delays = [(at - message["data"]["sent_at"]) * 1000 for at, message in seen]
    elapsed = seen[-1][0] - start
    in_order = [m["data"]["id"] for _, m in seen] == [f"n{i}" for i in range(N)]
    return {"rate": N / elapsed, "elapsed": elapsed, "median": statistics.median(delays),
            "p99": percentile(delays, 0.99), "in_order": in_order}


def soak(server: DevWsServer, tmp: Path, env: dict) -> list[tuple[str, str]]:
    import psutil

    out_path = tmp / "soak.ndjson"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([TACN, "watch", "--api-url", server.api_url, "--json", "--type", "notification"],
                                stdout=out, stderr=subprocess.PIPE, env=env)
    server.wait_sessions(server.sessions_opened + 1, timeout=60)
    watcher = psutil.Process(proc.pid)
    delivered, undelivered, downtime, restarts = set(), set(), 0.0, 0
    started = time.monotonic()
    next_send, next_restart, seq = started, started + SOAK_RESTART, 0
    rss_start = None
    while time.monotonic() - started < SOAK_SECONDS:
        now = time.monotonic()
        if rss_start is None and now - started >= min(5.0, SOAK_SECONDS / 4):
            rss_start = watcher.memory_info().rss  # after start-up imports and the first messages
        if now >= next_restart:
            down = time.monotonic()
            server.stop()
            time.sleep(SOAK_DOWNTIME)  # the server is down: this is the point of the soak
            # messages the application would have published meanwhile reach no one
            missed = int(SOAK_DOWNTIME * SOAK_RATE)
            undelivered.update(range(seq, seq + missed))
            seq += missed
            server.start()
            downtime += time.monotonic() - down
            restarts += 1
            next_restart += SOAK_RESTART
            next_send = time.monotonic()
            continue
        if now < next_send:
            time.sleep(next_send - now)
            continue
        targets = server.publish(notification_message(seq, sent_at=time.time()))
        (delivered if targets else undelivered).add(seq)
        seq += 1
        next_send += 1 / SOAK_RATE
    rss_end = watcher.memory_info().rss
    # SIGTERM, not SIGINT: a job started with `&` by a non-interactive shell inherits SIGINT ignored
    proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    written = set()
    for line in out_path.read_text().splitlines():
        written.add(int(json.loads(line)["data"]["id"][1:]))
    lost_connected = delivered - written
    growth = (rss_end - rss_start) / rss_start * 100
    reconnects = stderr.decode().count("reconnected to")
    return [
        ("soak", f"{SOAK_SECONDS:.0f} s at {SOAK_RATE:.0f} msg/s, restart every {SOAK_RESTART:.0f} s "
                 f"(down {SOAK_DOWNTIME:g} s each)"),
        ("published / written", f"{seq:,} / {len(written):,}  (restarts {restarts}, reconnects {reconnects}, "
                                f"exit {proc.returncode})"),
        ("lost while no connection was open", f"{len(undelivered - written):,}  (server down {downtime:.1f} s "
                                              f"in total = {downtime * SOAK_RATE:.0f} msgs at the rate)"),
        ("lost although delivered to a connection", f"{len(lost_connected):,}  (target 0) "
                                                    f"{'OK' if not lost_connected else 'LOST'}"),
        ("watch RSS start -> end", f"{rss_start / 2**20:.1f} MiB -> {rss_end / 2**20:.1f} MiB  ({growth:+.1f}%, "
                                   f"target <= +10%) {'OK' if growth <= 10 else 'OVER'}"),
    ]


def main() -> None:
    env = {**os.environ, "TACN_TOKEN": ""}
    with tempfile.TemporaryDirectory() as tmp_name, DevWsServer(SECRET, close_timeout=1.0) as server:
        tmp = Path(tmp_name)
        env["TACN_TOKEN"] = token = server.token(ttl_seconds=SOAK_SECONDS + 3600)
        floor = burst(server, tmp, [sys.executable, "-c", FLOOR_CLIENT, f"{server.ws_url()}?token={token}", str(N),
                                    str(tmp / "floor.ndjson")], env, "floor")
        watch = burst(server, tmp, [TACN, "watch", "--api-url", server.api_url, "--json", "--type", "notification",
                                    "--limit", str(N)], env, "watch")
        ratio = floor["rate"] / watch["rate"]
        rows = [
            ("floor: bare websocket-client loop", f"{floor['rate']:,.0f} msg/s  median {floor['median']:.1f} ms  "
                                                  f"p99 {floor['p99']:.1f} ms"),
            ("tacn watch --json > file", f"{watch['rate']:,.0f} msg/s  median {watch['median']:.1f} ms  "
                                         f"p99 {watch['p99']:.1f} ms  in order: {watch['in_order']}"),
            ("throughput ratio floor / watch", f"{ratio:.2f}"),
        ]
        report(f"tacn watch, {N:,} notifications on loopback", rows)
        report("tacn watch soak", soak(server, tmp, env))


if __name__ == "__main__":
    main()
