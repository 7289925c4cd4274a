"""Real `tacn sync` processes: SIGKILL part-way then resume; two runs started together on one store.

The processes talk to the Tushare fake on 127.0.0.1. The fake blocks a chosen
request until the test releases it, so "part-way" and "holding the lock" are
conditions the test waits for (events, with timeouts), never sleeps.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tacn.pipelines.stores.sqlite import SQLiteStore
from tacn.pipelines.sync import SyncRequest, run_sync
from tests.sync_fixtures import TushareFake, synthetic_quotes

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tk-test-0123456789abcdef"
SYMBOLS = ("000001", "000002", "600000", "600036", "300750", "002415")
START, END = "2025-09-01", "2025-10-24"
WAIT_S = 60


def content(store) -> list[tuple]:
    docs = [{k: v for k, v in d.items() if k not in ("_id", "created_at", "updated_at")} for d in store.iter_documents()]
    return sorted(tuple(sorted(d.items())) for d in docs)


def sync_process(fake: TushareFake, store_path: Path, tmp_path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TUSHARE_TOKEN": TOKEN, "TACN_TUSHARE_URL": fake.url,
           "TACN_HOME": str(tmp_path / "home")}
    return subprocess.Popen(
        [sys.executable, "-m", "tacn.cli", "sync", "--source", "tushare", "--symbols", ",".join(SYMBOLS),
         "--end", END, "--tushare-rate", "100000", "--store", f"sqlite:///{store_path}", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )


@pytest.fixture
def fake():
    server = TushareFake({s: synthetic_quotes(s, START, END) for s in SYMBOLS}, token=TOKEN).start()
    yield server
    server.stop()


def test_sigkill_part_way_then_rerun_equals_one_uninterrupted_run(fake, tmp_path):
    reference_path = tmp_path / "reference.db"
    with SQLiteStore(reference_path) as reference:
        run_sync(reference, SyncRequest(source="tushare", symbols=SYMBOLS, start=START, end=END, tushare_token=TOKEN,
                                        tushare_url=fake.url, tushare_calls_per_minute=100_000))
        expected = content(reference)
    fake.requests.clear()

    store_path = tmp_path / "killed.db"
    fake.faults[SYMBOLS[3]] = ["block"]  # the 4th symbol's request hangs: three symbols are written by then
    proc = sync_process(fake, store_path, tmp_path, "--default-start", START)
    reached = threading.Event()
    watcher = threading.Thread(target=lambda: _wait_for_request(fake, SYMBOLS[3], reached), daemon=True)
    watcher.start()
    assert reached.wait(WAIT_S), "the sync never reached the 4th symbol"
    with SQLiteStore(store_path) as partial:
        written = partial.count()
    assert 0 < written < len(expected)  # part-way: some symbols in, some not
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=WAIT_S)
    fake.release.set()

    resumed = sync_process(fake, store_path, tmp_path, "--default-start", START, "--json")
    out, err = resumed.communicate(timeout=WAIT_S)
    assert resumed.returncode == 0, err
    assert "took over a stale lock left by pid" in out  # the dead holder's flock went with it
    with SQLiteStore(store_path) as store:
        assert content(store) == expected  # the same records, no duplicates, nothing missing
        assert store.count() == len(expected)
        history = {r["run_id"]: r["status"] for r in store.aux_find("tacn_runs")}
        assert sorted(history.values()) == ["failed", "success"]  # the killed run is marked, not left "running"


def _wait_for_request(fake: TushareFake, symbol: str, reached: threading.Event) -> None:
    code = f"{symbol}.{'SH' if symbol.startswith('6') else 'SZ'}"
    while not reached.is_set():
        fake.received.wait(timeout=WAIT_S)
        with fake.lock:
            fake.received.clear()
            if any(r.get("ts_code") == code for r in fake.requests):
                reached.set()


def test_two_syncs_started_together_one_runs_the_other_exits_3(fake, tmp_path):
    store_path = tmp_path / "shared.db"
    SQLiteStore(store_path).close()  # both find the store in place
    fake.faults["*"] = ["block"]  # whichever run gets the lock hangs on its first request
    procs = [sync_process(fake, store_path, tmp_path, "--start", START) for _ in range(2)]
    ended: queue.Queue = queue.Queue()
    for proc in procs:
        threading.Thread(target=lambda p=proc: ended.put((p, *p.communicate())), daemon=True).start()

    loser, _, loser_err = ended.get(timeout=WAIT_S)  # the one without the lock ends first
    assert loser.returncode == 3, loser_err
    winner = next(p for p in procs if p is not loser)
    assert "holds the lock" in loser_err and f"pid {winner.pid}" in loser_err and "since" in loser_err
    assert fake.received.wait(WAIT_S)  # the winner is fetching, holding the lock

    fake.release.set()
    done, out, err = ended.get(timeout=WAIT_S)
    assert done is winner and winner.returncode == 0, err
    with SQLiteStore(store_path) as store:
        assert store.count() == sum(len(synthetic_quotes(s, START, END)) for s in SYMBOLS)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_sync_is_recorded_failed_interrupted_never_running(fake, tmp_path, sig):
    store_path = tmp_path / "signalled.db"
    fake.faults[SYMBOLS[2]] = ["block"]  # the 3rd symbol's request hangs: two symbols are written by then
    # --request-timeout 2: the worker stuck in that request gives up soon after the signal, so the interpreter can exit
    proc = sync_process(fake, store_path, tmp_path, "--default-start", START, "--request-timeout", "2")
    reached = threading.Event()
    threading.Thread(target=lambda: _wait_for_request(fake, SYMBOLS[2], reached), daemon=True).start()
    assert reached.wait(WAIT_S), "the sync never reached the 3rd symbol"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=WAIT_S)
    fake.release.set()
    assert proc.returncode == 130 and "interrupted" in err
    with SQLiteStore(store_path) as store:
        [status] = store.aux_find("sync_status")
        assert status["status"] == "failed" and status["message"].endswith("interrupted")
        assert [r["status"] for r in store.aux_find("tacn_runs")] == ["failed"]
        assert store.count() > 0  # the symbols finished before the signal stay written
