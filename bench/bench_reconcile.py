"""Benchmark of `tacn reconcile` on the SQLite store (issue 14).

1,000,000 documents per source (akshare in lots, tushare in shares; 2M in all):
2,000 symbols x 500 XSHG sessions, with a few planted disagreements (a bad
close, a 100x volume, a missing day). In the same run:
(a) `tacn reconcile --json` end to end, as a subprocess;
(b) the floor: read both sources with the same reader (the store's iter_frames,
    one source at a time, whole), one pandas merge on (symbol, trade_date) and
    the same comparisons (returns, volume after the unit, amount, missing days),
    in this process.
Target: (a)/(b) <= 2.0. Peak RSS of (a) at 1,000,000 per source at most 1.3x its
peak at a quarter of that (it streams by symbol, so memory does not grow with
the store), and below the floor's, which holds everything.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import peak_rss_mb, report, run_tacn_json, scaled  # noqa: E402

from tacn.pipelines.stores.sqlite import TABLE, SQLiteStore, _encode_row  # noqa: E402
from tacn.validators.calendar import sessions_between  # noqa: E402
from tacn.validators.records import FIELD_NAMES, build_document  # noqa: E402

SYMBOLS = 2_000
PER_SOURCE = scaled(1_000_000)
BATCH = 50_000
SOURCES = (("akshare", 100.0), ("tushare", 1.0))  # (data_source, shares per stored volume unit)


def _rows(source: str, per_unit: float, symbols: range, days: list[str]):
    import numpy as np
    from bson import ObjectId

    stamp = __import__("datetime").datetime(2025, 10, 23, 9, 0)
    index = {name: 1 + FIELD_NAMES.index(name) for name in
             ("open", "high", "low", "close", "pre_close", "volume", "amount", "trade_date")}
    n = len(days)
    for s in symbols:
        symbol = f"{600000 + s:06d}" if s % 2 else f"{s:06d}"
        doc = build_document(symbol=symbol, trade_date=days[0], data_source=source, open=1.0, high=1.0, low=1.0,
                             close=1.0, pre_close=1.0, volume=1.0, amount=1.0, now=stamp)
        template = list(_encode_row(doc, ""))
        rng = np.random.default_rng(s)
        close = np.round(10 * np.cumprod(1 + rng.normal(0, 0.01, n)), 2)
        high, low = np.round(close * 1.01, 2), np.round(close * 0.99, 2)
        shares = np.round(rng.uniform(1e5, 1e6, n) / 100) * 100
        amount = np.round(shares * close, 2)
        if source == "tushare" and s % 50 == 0:  # planted: one bad close, one 100x volume
            close[n // 2] = round(close[n // 2] * 1.05, 2)
            shares[n // 3] *= 100
        for d in range(n):
            if source == "akshare" and s % 50 == 1 and d == n // 4:
                continue  # planted: a day akshare lacks
            row = template.copy()
            row[0] = str(ObjectId())
            row[index["trade_date"]] = days[d]
            for name, value in (("open", close[d]), ("high", high[d]), ("low", low[d]), ("close", close[d]),
                                ("pre_close", close[d - 1] if d else close[d]), ("volume", shares[d] / per_unit),
                                ("amount", amount[d])):
                row[index[name]] = float(value)
            yield tuple(row)


def build(path: Path, per_source: int) -> None:
    SQLiteStore(path).close()  # the store's schema and indexes
    days = sessions_between("1990-12-19", "2025-10-23")[-(per_source // SYMBOLS):]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    columns = ", ".join(f'"{c}"' for c in ("_id", *FIELD_NAMES, "extra"))
    sql = f"INSERT INTO {TABLE} ({columns}) VALUES ({', '.join('?' for _ in range(len(FIELD_NAMES) + 2))})"
    for source, per_unit in SOURCES:
        rows = _rows(source, per_unit, range(SYMBOLS), days)
        while True:
            batch = [row for _, row in zip(range(BATCH), rows, strict=False)]
            if not batch:
                break
            conn.execute("BEGIN")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
    conn.close()


def run_reconcile(path: Path, workdir: Path) -> tuple[float, float, dict, int]:
    """(wall seconds, peak RSS MiB, parsed JSON, exit code) of `tacn reconcile --json` as a child."""
    return run_tacn_json(["reconcile", "--store", f"sqlite:///{path}", "--json"], workdir / "reconcile.json")


def floor(path: Path) -> tuple[float, dict]:
    """Both sources whole through the same reader, one merge, the same comparisons."""
    import numpy as np
    import pandas as pd

    from tacn.pipelines.stores.base import RecordFilter
    from tacn.validators.calendar import session_set

    start = time.perf_counter()
    store = SQLiteStore(path)
    a, b = (pd.concat(list(store.iter_frames(RecordFilter(data_source=s, period="daily"))), ignore_index=True)
            for s, _ in SOURCES)
    store.close()
    sessions = session_set()
    a, b = a[a["trade_date"].isin(sessions)], b[b["trade_date"].isin(sessions)]
    m = a.merge(b, on=["symbol", "trade_date"], how="outer", suffixes=("_a", "_b"), indicator=True)
    m = m.sort_values(["symbol", "trade_date"], kind="stable")
    both = m[m["_merge"] == "both"]
    same = both["symbol"].eq(both["symbol"].shift())
    q = both["close_a"] / both["close_b"]
    ret_bad = same & ((both["close_a"] - q.shift() * both["close_b"]).abs()
                      > np.maximum(0.005 * both["close_a"].abs(), 0.01))

    def differ(x, y, rel, floor_):
        return (x - y).abs() > np.maximum(rel * np.maximum(x.abs(), y.abs()), floor_)

    counts = {
        "price_return": int(ret_bad.sum()),
        "volume": int(differ(both["volume_a"] * 100, both["volume_b"], 0.005, 100).sum()),
        "amount": int(differ(both["amount_a"], both["amount_b"], 0.005, 1).sum()),
        "missing_day": int((m["_merge"] != "both").sum()),
    }
    return time.perf_counter() - start, counts


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        quarter, full = tmp_path / "quarter.db", tmp_path / "full.db"
        started = time.perf_counter()
        build(quarter, PER_SOURCE // 4)
        q_s, q_rss, _, _ = run_reconcile(quarter, tmp_path)
        quarter.unlink()
        build(full, PER_SOURCE)
        built = time.perf_counter() - started
        a_s, a_rss, a_json, a_code = run_reconcile(full, tmp_path)
        rss_before = peak_rss_mb()
        floor_s, floor_counts = floor(full)
        floor_rss = peak_rss_mb()
    counts = {c["name"]: c["failing"] for c in a_json["checks"]}
    # the floor blames both days of a spike (the bad day and the day that undoes it); reconcile only the first
    agree = all(counts[k] == v for k, v in floor_counts.items() if k != "price_return") and \
        counts["price_return"] * 2 == floor_counts["price_return"]
    ratio, rss_ratio = a_s / floor_s, a_rss / q_rss
    report(f"tacn reconcile on the SQLite store, {PER_SOURCE:,} documents per source ({2 * PER_SOURCE:,} in all)", [
        ("dataset build", f"{built:.1f} s (both sizes)"),
        ("(b) floor: iter_frames x2 + one merge", f"{floor_s:.2f} s  peak RSS ~{floor_rss:.0f} MiB "
         f"(process, {rss_before:.0f} before)"),
        ("(a) tacn reconcile --json (subprocess)", f"{a_s:.2f} s  exit {a_code}  peak RSS {a_rss:.0f} MiB"),
        ("ratio (a)/(b)", f"{ratio:.2f}  (target <= 2.0) {'OK' if ratio <= 2.0 else 'OVER'}"),
        ("(a) at a quarter of the size", f"{q_s:.2f} s  peak RSS {q_rss:.0f} MiB"),
        ("peak RSS full / quarter", f"{rss_ratio:.2f}  (target <= 1.3) {'OK' if rss_ratio <= 1.3 else 'OVER'}"),
        ("same findings as the floor", f"{'yes' if agree else 'NO'}  {counts}"),
    ])
    if not agree:
        print("  floor counts:", floor_counts)


if __name__ == "__main__":
    main()
