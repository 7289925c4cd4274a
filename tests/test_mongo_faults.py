"""Faults over a real MongoDB connection: a FerretDB server SIGKILLed or SIGSTOPped under a running tacn.

Each test has its own server process (tests/ferretdb_fixtures.py) and runs ``tacn`` as a
real process. The tests wait on conditions seen through a second connection (documents
written or deleted), then freeze the server with SIGSTOP before killing it, so the command
is always caught with work left to do. A SIGKILLed server is started again on the same
data directory; a SIGSTOPped one must make every command give up with exit 3, the URL
masked, within the limits docs/stores-and-mongodb.md "MongoDB timeouts" documents.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tacn.validators.records import COLLECTION
from tests.clean_fixtures import good_documents, quote
from tests.ferretdb_fixtures import start_ferretdb
from tests.test_sync_file import akshare_rows, write_akshare_csv

ROOT = Path(__file__).resolve().parent.parent
DB = "tradingagents"
SYMBOLS = [f"{600000 + i:06d}" for i in range(24)]
BAD_RECORDS = 1_200
BATCH = 200
COMMAND_TIMEOUT_S = 120
# connect + server selection (tacn's 5 s each), with room for a loaded 2-core machine
STOPPED_SERVER_LIMIT_S = 25
SOCKET_TIMEOUT_MS = 2_000


@pytest.fixture
def server(tmp_path):
    srv = start_ferretdb(tmp_path / "ferretdb")
    yield srv
    srv.stop()


def client(srv):
    import pymongo

    return pymongo.MongoClient(srv.url, serverSelectionTimeoutMS=10_000)


def tacn(*args: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TACN_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "tacn.cli", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = COMMAND_TIMEOUT_S) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"tacn {proc.args[3:5]} still running after {timeout} s: {err[-500:]}")
    return proc.returncode, out + err


def kill_server_when(srv, proc: subprocess.Popen, condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds while ``proc`` runs, then freeze and SIGKILL the server."""
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"tacn exited {proc.returncode} before {what}: {proc.stderr.read()[-500:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {COMMAND_TIMEOUT_S} s")
        try:  # the pause between checks returns at once if tacn exits
            proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            pass
    srv.pause()  # from here tacn cannot advance on the server
    assert proc.poll() is None, f"tacn finished before the server was stopped ({what})"
    srv.kill()


def assert_gave_up(code: int, output: str, srv) -> None:
    assert code == 3, output
    assert f"mongodb://127.0.0.1:{srv.port}" in output, output
    assert "Traceback" not in output and "unexpected" not in output, output


# -- SIGKILL mid-command, restart on the same data directory, rerun -----------------------------


def test_server_killed_mid_sync_loses_nothing_and_a_rerun_finishes(server, tmp_path):
    rows = [row for symbol in SYMBOLS for row in akshare_rows(symbol, "2024-01-01", "2025-10-24")]
    source = write_akshare_csv(tmp_path / "quotes.csv", rows)
    url = f"{server.url}{DB}"
    quotes = client(server)[DB][COLLECTION]

    proc = tacn("sync", "--source", f"file:{source}", "--store", url, home=tmp_path / "home")
    kill_server_when(server, proc, lambda: quotes.estimated_document_count() >= 1_000, "1,000 records written")
    code, output = finish(proc)
    assert_gave_up(code, output, server)

    server.start()
    quotes = client(server)[DB][COLLECTION]
    assert 1_000 <= quotes.estimated_document_count() < len(rows)
    code, output = finish(tacn("sync", "--source", f"file:{source}", "--store", url, home=tmp_path / "home"))
    assert code == 0, output
    keys = {(d["symbol"], d["trade_date"]) for d in quotes.find({}, {"symbol": 1, "trade_date": 1})}
    assert len(keys) == quotes.count_documents({}) == len(rows)


def seed_with_bad_dates(srv, *, unstamped: int = 0) -> dict:
    """Good records and BAD_RECORDS bad ones, the last ``unstamped`` of them without updated_at."""
    from bson import ObjectId

    quotes = client(srv)[DB][COLLECTION]
    docs = [{**d, "_id": ObjectId()} for d in good_documents()]
    docs += [{**quote(symbol=SYMBOLS[i % 3], close=10.0 + i), "_id": ObjectId(), "trade_date": str(i)}
             for i in range(BAD_RECORDS)]
    for doc in docs[len(docs) - unstamped:] if unstamped else ():
        del doc["updated_at"]
    quotes.insert_many(docs)
    return {d["_id"]: d for d in docs}


def backed_up(backup_dir: Path) -> dict:
    from tacn.pipelines.extjson import decode_line

    found = {}
    for path in backup_dir.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                doc = decode_line(line)
                found[doc["_id"]] = doc
    return found


def test_server_killed_mid_clean_loses_nothing_and_a_rerun_finishes(server, tmp_path):
    # On FerretDB the stamped bad records go in one pass; those without updated_at follow by _id in
    # batches, which is where the server dies (after the one pass and the first batch).
    unstamped = BAD_RECORDS // 2
    original = seed_with_bad_dates(server, unstamped=unstamped)
    quotes = client(server)[DB][COLLECTION]
    url, backups = f"{server.url}{DB}", tmp_path / "backups"
    args = ("clean-invalid-trade-date", "--yes", "--store", url, "--backup-dir", str(backups),
            "--batch-size", str(BATCH))

    proc = tacn(*args, home=tmp_path / "home")
    one_pass_and_a_batch = len(original) - (BAD_RECORDS - unstamped) - BATCH
    kill_server_when(server, proc, lambda: quotes.estimated_document_count() <= one_pass_and_a_batch,
                     "the one pass and a first batch deleted")
    code, output = finish(proc)
    assert_gave_up(code, output, server)

    server.start()
    quotes = client(server)[DB][COLLECTION]
    remaining = {d["_id"]: d for d in quotes.find()}
    saved = backed_up(backups)
    assert set(original) <= set(remaining) | set(saved), "a record is neither in the store nor in a backup"
    assert all(saved[i] == original[i] for i in set(original) - set(remaining))

    code, output = finish(tacn(*args, home=tmp_path / "home"))
    assert code == 0, output
    good = {i for i, d in original.items() if d["trade_date"] == d["trade_date"] and len(d["trade_date"]) == 10}
    assert {d["_id"] for d in quotes.find()} == good
    assert set(original) - good <= set(backed_up(backups))


def test_server_killed_mid_restore_loses_nothing_and_a_rerun_finishes(server, tmp_path):
    original = seed_with_bad_dates(server)
    url, backups = f"{server.url}{DB}", tmp_path / "backups"
    code, output = finish(tacn("clean-invalid-trade-date", "--yes", "--store", url, "--backup-dir", str(backups),
                               home=tmp_path / "home"))
    assert code == 0, output
    (manifest,) = backups.glob("*.manifest.json")
    quotes = client(server)[DB][COLLECTION]
    cleaned = quotes.estimated_document_count()

    proc = tacn("restore", str(manifest), "--store", url, home=tmp_path / "home")
    kill_server_when(server, proc, lambda: quotes.estimated_document_count() >= cleaned + 100, "100 records restored")
    code, output = finish(proc)
    assert_gave_up(code, output, server)

    server.start()
    code, output = finish(tacn("restore", str(manifest), "--store", url, home=tmp_path / "home"))
    assert code == 0, output
    quotes = client(server)[DB][COLLECTION]
    assert {d["_id"]: d for d in quotes.find()} == original


# -- SIGSTOP: a server that stops answering ------------------------------------------------------


@pytest.fixture
def stopped_server(server, tmp_path):
    """A seeded server, frozen; the URL carries a password that must never be printed."""
    seed_with_bad_dates(server)
    server.pause()
    yield server, f"mongodb://ops:Sup3rSecretPw@127.0.0.1:{server.port}/{DB}"
    server.resume()


@pytest.mark.parametrize("command", [
    ["sync", "--source", "file:{sample}"],
    ["validate"],
    ["stats"],
    ["clean-invalid-trade-date", "--yes"],
    ["restore", "{backup}"],
    ["verify-fix"],
    ["migrate", "status"],
])
def test_a_stopped_server_makes_each_command_give_up_with_exit_3_and_a_masked_url(stopped_server, tmp_path, command):
    srv, url = stopped_server
    backup = tmp_path / "b.jsonl"
    backup.write_text('{"_id": {"$oid": "65f000000000000000000001"}, "symbol": "000001", "trade_date": "7"}\n')
    sample = ROOT / "examples" / "akshare_quotes_sample.csv"
    args = [a.format(sample=sample, backup=backup) for a in command]
    started = time.monotonic()
    code, output = finish(tacn(*args, "--store", url, home=tmp_path / "home"))
    assert time.monotonic() - started < STOPPED_SERVER_LIMIT_S
    assert code == 3, output
    assert "Sup3rSecretPw" not in output and f"mongodb://ops:***@127.0.0.1:{srv.port}" in output, output


def test_a_server_that_stops_answering_mid_sync_ends_it_within_the_socket_timeout(server, tmp_path):
    rows = [row for symbol in SYMBOLS for row in akshare_rows(symbol, "2024-01-01", "2025-10-24")]
    source = write_akshare_csv(tmp_path / "quotes.csv", rows)
    quotes = client(server)[DB][COLLECTION]
    url = f"{server.url}{DB}?socketTimeoutMS={SOCKET_TIMEOUT_MS}"

    proc = tacn("sync", "--source", f"file:{source}", "--store", url, home=tmp_path / "home")
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while quotes.estimated_document_count() < 1_000:
        assert proc.poll() is None and time.monotonic() < deadline, "sync ended before 1,000 records"
        try:
            proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            pass
    server.pause()
    stopped = time.monotonic()
    code, output = finish(proc)
    assert time.monotonic() - stopped < SOCKET_TIMEOUT_MS / 1000 + STOPPED_SERVER_LIMIT_S
    assert_gave_up(code, output, server)
