"""Helpers shared by the benchmarks: timing, peak RSS, scaled sizes, synthetic documents."""

from __future__ import annotations

import os
import resource
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta

SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))


def scaled(n: int) -> int:
    return max(1, int(n * SCALE))


@contextmanager
def timer(label: str, results: dict):
    start = time.perf_counter()
    yield
    results[label] = time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024




def run_tacn_json(args: list[str], out_path) -> tuple[float, float, dict, int]:
    """(wall seconds, peak RSS MiB, parsed JSON, exit code) of ``tacn ARGS`` (with --json) as a child.

    Peak RSS is the child's own RSS, polled: ru_maxrss of a child also counts the
    parent's memory at fork, which would hide the child's figure.
    """
    import json
    import subprocess

    import psutil

    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    peak = 0
    with open(out_path, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen([exe, *args], stdout=out, stderr=subprocess.DEVNULL)
        child = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak = max(peak, child.memory_info().rss)
            except psutil.Error:  # exited between poll() and the read
                break
            time.sleep(0.02)  # a sampling interval, not a wait for a race
        proc.wait()
        elapsed = time.perf_counter() - start
    with open(out_path) as handle:
        return elapsed, peak / 2**20, json.load(handle), proc.returncode


def synthetic_documents(n: int, *, symbols: int = 1000, source: str = "akshare") -> list[dict]:
    """n valid documents in the application's shape: `symbols` codes x consecutive days."""
    from validators.records import build_document

    now = datetime(2025, 10, 23, 9, 0)
    start = date(2000, 1, 3)
    docs = []
    per_symbol = -(-n // symbols)
    for s in range(symbols):
        symbol = f"{600000 + s:06d}" if s % 2 else f"{s:06d}"
        price = 10.0 + s % 50
        for d in range(per_symbol):
            if len(docs) >= n:
                return docs
            close = price + (d % 7) * 0.01
            docs.append(build_document(
                symbol=symbol, trade_date=(start + timedelta(days=d)).isoformat(), data_source=source,
                open=price, high=close + 0.1, low=price - 0.1, close=close, pre_close=price,
                volume=1000.0 + d, amount=10000.0 + d, now=now))
    return docs


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(title)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    sys.stdout.flush()
