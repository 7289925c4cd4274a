"""Helpers shared by the clean / restore / verify-fix / migrate / repair tests."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

from tacn.validators.records import build_document

PAUSE_READY_TIMEOUT_S = 60

T0 = datetime(2025, 10, 23, 9, 0, 0)
GOOD_DAYS = [(date(2025, 9, 1) + timedelta(days=i)).isoformat() for i in range(10)]
SYMBOLS = ("000001", "600000", "300750")
# bad values of every kind: row numbers, other formats, impossible, out of range, missing, wrong type
BAD_VALUES = ["0", "1", "17", "20251023", "2025/10/23", "2024-02-30", "1989-01-01", "", None, 20251023]


def quote(symbol="000001", day="2025-09-01", source="akshare", close=10.5, **extra) -> dict:
    doc = build_document(symbol=symbol, trade_date=day, data_source=source, open=10.0, high=11.0, low=9.5,
                         close=close, pre_close=10.0, volume=1000.0, amount=10500.0, now=T0)
    doc.update(extra)
    return doc


def good_documents() -> list[dict]:
    return [quote(symbol=s, day=d, source=src) for s in SYMBOLS for d in GOOD_DAYS for src in ("akshare", "tushare")]


def bad_documents(kind: str) -> list[dict]:
    """Invalid trade_dates with fresh ObjectIds; on SQLite also the values only it can hold.

    ``kind`` is a store flavour (tests/conftest.py ``store_flavour``): FerretDB v1 gets no NaN.
    """
    from bson import ObjectId

    docs = [{**quote(symbol=SYMBOLS[i % 2], source="akshare", close=20.0 + i), "_id": ObjectId(), "trade_date": bad}
            for i, bad in enumerate(BAD_VALUES)]
    docs.append({**quote(symbol="300750", source="tushare"), "_id": ObjectId(), "trade_date": "5"})
    missing = {**quote(symbol="600000", close=33.0), "_id": ObjectId()}
    del missing["trade_date"]
    docs.append(missing)
    pre_close = 10.0 if kind == "ferretdb" else float("nan")  # FerretDB v1 closes the connection on NaN
    docs.append({**quote(symbol="000001", close=34.0), "_id": ObjectId(), "trade_date": "2", "pre_close": pre_close})
    if kind == "sqlite":
        docs.append({**quote(symbol="000001", close=35.0), "_id": ObjectId(), "trade_date": date(2025, 10, 23)})
        docs.append({**quote(symbol="000001", close=36.0), "_id": "text-id-1", "trade_date": "3",
                     "updated_at": datetime(2025, 10, 23, 9, 0, 0, 123456)})
        docs.append({**quote(symbol="000001", close=37.0), "_id": 42, "trade_date": "4"})
    return docs


def seed(store) -> tuple[int, int]:
    """Good records through upsert, bad ones put as they are; returns (good, bad)."""
    from tests.conftest import store_flavour

    good, bad = good_documents(), bad_documents(store_flavour(store))
    store.upsert(good, now=T0)
    put = store.put_documents(bad)
    assert put.inserted == len(bad) and not put.conflicts
    return len(good), len(bad)


def content_hash(store) -> str:
    """Every document, _id and all values exactly (repr keeps types), order-independent."""
    rows = sorted(repr(sorted(doc.items())) for doc in store.iter_documents())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def run_tacn_until(args: list[str], point: str, ready) -> None:
    """Run ``tacn ARGS`` in a subprocess until it reaches pause point ``point``, then SIGKILL it.

    TACN_TEST_PAUSE_AT makes the process create ``ready`` at that point and block; we wait
    for the file (not for time), then kill.
    """
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import pytest

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "TACN_TEST_PAUSE_AT": point, "TACN_TEST_PAUSE_FILE": str(ready), "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "tacn.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + PAUSE_READY_TIMEOUT_S
    try:
        while not Path(ready).exists():  # the condition we wait on: the process reached the point
            if proc.poll() is not None:
                pytest.fail(f"tacn {args[0]} exited {proc.returncode} before {point}: "
                            f"{proc.stderr.read().decode()[-500:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"tacn {args[0]} did not reach {point} within {PAUSE_READY_TIMEOUT_S} s")
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
