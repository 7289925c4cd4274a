"""ReadAhead (the worker thread behind SQLiteStore.iter_frames) and the columnar read's odd-value flag."""

from __future__ import annotations

import gc
import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tacn.pipelines.read_ahead import ReadAhead


def test_items_come_in_order_and_the_worker_ends():
    reader = ReadAhead(iter(range(5)))
    assert list(reader) == [0, 1, 2, 3, 4]
    assert not reader._thread.is_alive()
    assert list(reader) == []


def test_the_worker_is_at_most_one_item_ahead():
    asked = [threading.Event() for _ in range(4)]

    def source():
        for i in range(4):
            asked[i].set()
            yield i

    reader = ReadAhead(source())
    assert next(reader) == 0
    assert asked[1].wait(timeout=10)  # it reads the next item while this one is worked on …
    assert not asked[2].wait(timeout=0.3)  # … and no further (a bounded look for something that must not happen)
    assert next(reader) == 1
    assert asked[2].wait(timeout=10)
    reader.close()
    assert not reader._thread.is_alive()


def test_an_error_in_the_worker_is_raised_to_the_consumer_in_its_place():
    def failing():
        yield 1
        raise ValueError("driver refused")

    reader = ReadAhead(failing())
    assert next(reader) == 1
    with pytest.raises(ValueError, match="driver refused"):
        next(reader)
    assert not reader._thread.is_alive()
    with pytest.raises(StopIteration):
        next(reader)


def closing_source(closed: threading.Event):
    """1,000 items; ``closed`` is set when the generator is closed."""
    try:
        yield from range(1000)
    finally:
        closed.set()


def test_close_stops_a_worker_waiting_for_its_turn_and_closes_the_source():
    closed = threading.Event()
    reader = ReadAhead(closing_source(closed))
    assert next(reader) == 0
    reader.close()
    assert not reader._thread.is_alive() and closed.is_set()


def test_as_a_context_manager_it_waits_for_the_worker_except_on_ctrl_c():
    started, release = threading.Event(), threading.Event()

    def slow():
        yield 0
        started.set()
        release.wait(timeout=30)  # the item being produced when the consumer leaves
        yield 1

    with ReadAhead(slow()) as reader:
        assert next(reader) == 0
        assert started.wait(timeout=10)
        release.set()
    assert not reader._thread.is_alive()  # a normal way out waits for the item being produced

    started.clear()
    release.clear()
    with pytest.raises(KeyboardInterrupt), ReadAhead(slow()) as reader:
        assert next(reader) == 0
        assert started.wait(timeout=10)
        raise KeyboardInterrupt
    assert reader._thread.is_alive()  # Ctrl-C: not waited for
    release.set()
    reader._thread.join(timeout=10)
    assert not reader._thread.is_alive()


def test_a_reader_dropped_unread_stops_its_worker():
    closed = threading.Event()
    reader = ReadAhead(closing_source(closed))
    thread = reader._thread
    del reader
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive() and closed.is_set()


# -- the odd flag of the columnar select: SQLite's type ordering, checked against typeof --------------
_VALUES = st.one_of(st.none(), st.integers(min_value=-2**63, max_value=2**63 - 1), st.floats(allow_nan=False),
                    st.text(max_size=5), st.binary(max_size=3), st.sampled_from(["", "2025-10-23", "0", "\x00"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(_VALUES, min_size=1, max_size=30))
def test_the_text_or_null_test_agrees_with_typeof(values):
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE t (x)')  # declared without a type, as the store's columns
    conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    rows = conn.execute("SELECT coalesce(x, '') >= '' AND coalesce(x, '') < x'', typeof(x) IN ('text', 'null') "
                        "FROM t").fetchall()
    assert all(bool(ours) == bool(reference) for ours, reference in rows)


# -- Ctrl-C while the worker reads: exit 130 promptly, no hang, no traceback ------------------------------
_SLOW_READ = """
import sys, time
from tacn.pipelines.stores import sqlite
query = sqlite._ColumnarReader.query
calls = []
def slow(self, *args):
    calls.append(1)
    if len(calls) == 2:  # the first chunk is judged; the second read is long: the signal arrives in it
        print("reading", flush=True)
        time.sleep(3)
    return query(self, *args)
sqlite._ColumnarReader.query = slow
sys.argv = ["tacn", "validate", "--store", sys.argv[1], "--batch-size", "2"]
from tacn.cli.app import main
main()
"""


def test_validate_interrupted_while_the_worker_reads_exits_130(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore
    from tests.test_validate import good_docs

    path = tmp_path / "q.db"
    with SQLiteStore(path) as store:
        store.upsert(good_docs(4, ("600000", "000001")))
    assert_interrupted_promptly(_SLOW_READ, f"sqlite:///{path}", tmp_path)


def assert_interrupted_promptly(script: str, target: str, home) -> None:
    """Run ``script`` (a tacn command whose slow read prints "reading") in a child, Ctrl-C it there:
    exit 130 with one line, no traceback, within the read being made, not the whole read."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", script, target], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TACN_HOME": str(home)})
    assert proc.stdout.readline() == "reading\n"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert time.monotonic() - started < 10


def test_validate_freshness_of_a_demo_store_runs_as_a_real_process(tmp_path):
    """The read-ahead thread, then pandas' groupby (acero) in the main thread: pyarrow 25.0.0 segfaulted
    there (exit 139) in a real process, never inside pytest's. pyproject excludes that version; this keeps
    the whole path honest in a child process."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TACN_HOME": str(tmp_path)}
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    seeded = subprocess.run([sys.executable, "-m", "tacn.cli", "demo", "--store", url, "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    run = subprocess.run([sys.executable, "-m", "tacn.cli", "validate", "--store", url, "--freshness", "--json"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])  # stale synthetic data: found problems
