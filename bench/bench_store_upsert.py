"""Foundation benchmark: upsert 1,000,000 records into the SQLite store vs a bare executemany floor.

Floor: the same rows (one tuple per document, the store's columns) inserted with
one executemany into an unindexed table, no conflict handling. Target: ratio <= 2.0.
Also: the median start-up time of `tacn --help` (target <= 0.3 s).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import peak_rss_mb, report, scaled, synthetic_documents  # noqa: E402

from tacn.pipelines.stores.sqlite import UPSERT_BATCH, SQLiteStore  # noqa: E402
from tacn.validators.records import FIELD_NAMES  # noqa: E402

N = scaled(1_000_000)


def floor(path: Path, docs: list[dict]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    columns = ", ".join(f'"{c}"' for c in FIELD_NAMES)
    conn.execute(f"CREATE TABLE t ({columns})")
    sql = f"INSERT INTO t VALUES ({', '.join('?' for _ in FIELD_NAMES)})"
    start = time.perf_counter()
    for i in range(0, len(docs), UPSERT_BATCH):  # same batch size and transactions as the store
        conn.execute("BEGIN")
        conn.executemany(sql, [tuple(d.get(c) for c in FIELD_NAMES) for d in docs[i:i + UPSERT_BATCH]])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    docs = synthetic_documents(N)
    for d in docs:  # the floor binds datetimes as text, like the store
        d["created_at"] = d["updated_at"] = d["created_at"].isoformat(sep=" ")
    with tempfile.TemporaryDirectory() as tmp:
        floor_s = floor(Path(tmp) / "floor.db", docs)
        for d in docs:
            d.pop("created_at"), d.pop("updated_at")
        store = SQLiteStore(Path(tmp) / "store.db")
        start = time.perf_counter()
        result = store.upsert(docs)
        upsert_s = time.perf_counter() - start
        start = time.perf_counter()
        again = store.upsert(docs)
        rerun_s = time.perf_counter() - start
        store.close()
    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    help_times = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run([exe, "--help"], stdout=subprocess.DEVNULL, check=True)
        help_times.append(time.perf_counter() - start)
    ratio = upsert_s / floor_s
    help_median = statistics.median(help_times)
    report(f"SQLite store upsert, {N:,} records", [
        ("floor: bare executemany, unindexed", f"{floor_s:.2f} s"),
        ("store.upsert (new rows)", f"{upsert_s:.2f} s  inserted={result.inserted:,}"),
        ("ratio upsert / floor", f"{ratio:.2f}  (target <= 2.0) {'OK' if ratio <= 2.0 else 'OVER'}"),
        ("store.upsert again (unchanged)", f"{rerun_s:.2f} s  unchanged={again.unchanged:,}"),
        ("peak RSS", f"{peak_rss_mb():.0f} MiB"),
        ("tacn --help median of 7", f"{help_median:.3f} s  (target <= 0.3) {'OK' if help_median <= 0.3 else 'OVER'}"),
    ])


if __name__ == "__main__":
    main()
