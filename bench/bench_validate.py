"""Benchmark of `tacn validate` on the SQLite store (issue 4).

1,000,000 records (1,000 symbols x 1,000 XSHG sessions) with 5% bad trade_dates
(the 2025-10-23 bug: the row number as the date). In the same run:
(a) `tacn validate --json --rules <row rules,key_unique>` (the rules the floor computes;
    volume_unit is in (c)) end to end, as a subprocess (start-up, import, read,
    every rule, report);
(b) the floor: one columnar read of the same rows (ADBC's SQLite driver into
    Arrow) and the same checks as plain polars expressions, in this process.
Target: (a)/(b) <= 1.5 ((a), (b) and (c) at 1M: best of 2, interleaved). Then 5,000,000 records: peak RSS of (a) at most 1.2x its
peak at 1,000,000 (bounded memory). (c) `tacn validate --json` with the default rules
(volume_unit included, which the floor does not compute) at both sizes: its time
next to (a) is volume_unit's cost, and its RSS 5M/1M is held to the same 1.2x.
Peak RSS of a child is its RSS, polled.

The datasets are written once into a temporary directory through the store's own
row encoding (tacn.pipelines.stores.sqlite._encode_row), in batches.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bson import ObjectId  # noqa: E402
from common import polars_rule_counts, report, row_and_key_rules, run_tacn_json, scaled  # noqa: E402

from tacn.pipelines.stores.sqlite import TABLE, SQLiteStore, _encode_row  # noqa: E402
from tacn.validators.calendar import sessions_between  # noqa: E402
from tacn.validators.records import FIELD_NAMES, build_document  # noqa: E402

SYMBOLS = 1_000
N_SMALL = scaled(1_000_000)
N_LARGE = scaled(5_000_000)
BAD_EVERY = 20  # 5%
BATCH = 50_000


def _symbol(s: int) -> str:
    return f"{600000 + s:06d}" if s % 2 else f"{s:06d}"


def _rows(start: int, stop: int, days: list[str]):
    """Rows start..stop-1 of the dataset, as the store encodes them. Row i: symbol i % SYMBOLS, day i // SYMBOLS."""
    from datetime import datetime

    stamp = datetime(2025, 10, 23, 9, 0)
    templates = {}
    for i in range(start, stop):
        s, d = i % SYMBOLS, i // SYMBOLS
        template = templates.get(s)
        if template is None:
            doc = build_document(symbol=_symbol(s), trade_date=days[0], data_source="akshare", open=10.0,
                                 high=10.3, low=9.8, close=10.1, pre_close=10.0, volume=1000.0, amount=1e4, now=stamp)
            doc["full_symbol"] = f"{doc['code']}.{'SH' if doc['code'].startswith('6') else 'SZ'}"
            template = templates[s] = _encode_row(doc, "")
            assert template[-1] is None  # plain values only: the tuple below is the store's encoding
        close = 10.0 + (d % 7) * 0.01 + s % 50
        trade_date = str(i) if i % BAD_EVERY == 0 else days[d]
        row = list(template)
        row[0] = str(ObjectId())
        row[1 + FIELD_NAMES.index("trade_date")] = trade_date
        for name, value in (("open", close - 0.05), ("high", close + 0.2), ("low", close - 0.2), ("close", close),
                            ("pre_close", close - 0.1), ("change", 0.1),
                            ("pct_chg", round(0.1 / (close - 0.1) * 100, 4)), ("volume", 1000.0 + d)):
            row[1 + FIELD_NAMES.index(name)] = value
        yield tuple(row)


def build(path: Path, start: int, stop: int, days: list[str]) -> None:
    SQLiteStore(path).close()  # the store's schema and indexes
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    columns = ", ".join(f'"{c}"' for c in ("_id", *FIELD_NAMES, "extra"))
    sql = f"INSERT INTO {TABLE} ({columns}) VALUES ({', '.join('?' for _ in range(len(FIELD_NAMES) + 2))})"
    for lo in range(start, stop, BATCH):
        conn.execute("BEGIN")
        conn.executemany(sql, _rows(lo, min(lo + BATCH, stop), days))
        conn.execute("COMMIT")
    conn.close()


def run_validate(path: Path, workdir: Path, rules: str | None = None) -> tuple[float, float, dict, int]:
    """(wall seconds, peak RSS MiB, parsed JSON, exit code) of `tacn validate --json [--rules RULES]` as a child."""
    args = ["validate", "--store", f"sqlite:///{path}", "--json"] + (["--rules", rules] if rules else [])
    return run_tacn_json(args, workdir / "validate.json")


def floor(path: Path) -> tuple[float, dict]:
    """One columnar read of the same rows (ADBC into Arrow, in C) + the same checks as plain polars expressions."""
    import adbc_driver_sqlite.dbapi as adbc
    import polars as pl

    start = time.perf_counter()
    conn = adbc.connect(str(path))
    cursor = conn.cursor()
    columns = ", ".join(f'"{c}"' for c in FIELD_NAMES)
    cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "100000"})
    cursor.execute(f"SELECT _id, {columns} FROM {TABLE}")
    df = pl.from_arrow(cursor.fetch_arrow_table())
    cursor.close()
    conn.close()
    counts = polars_rule_counts(df)
    return time.perf_counter() - start, counts


def main() -> None:
    days_small, days_large = -(-N_SMALL // SYMBOLS), -(-N_LARGE // SYMBOLS)  # sessions per symbol
    days = sessions_between("1990-12-19", "2025-10-23")[-days_large:]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        small, large = tmp_path / "small.db", tmp_path / "large.db"
        started = time.perf_counter()
        build(small, 0, N_SMALL, days[-days_small:])
        built_small = time.perf_counter() - started
        a_s, a_rss, a_json, a_code = run_validate(small, tmp_path, row_and_key_rules())
        floor_s, floor_counts = floor(small)
        c_s, c_rss, _, c_code = run_validate(small, tmp_path)
        # (a), (b) and (c) again, interleaved, best of 2 each (the machine is shared; the first read is colder)
        a_s = min(a_s, run_validate(small, tmp_path, row_and_key_rules())[0])
        floor_s = min(floor_s, floor(small)[0])
        c_s = min(c_s, run_validate(small, tmp_path)[0])
        a_counts = {r["name"]: r["failing"] for r in a_json["rules"]}
        agree = all(a_counts[name] == count for name, count in floor_counts.items())
        started = time.perf_counter()
        build(large, 0, N_LARGE, days)
        built_large = time.perf_counter() - started
        small.unlink()
        l_s, l_rss, l_json, l_code = run_validate(large, tmp_path, row_and_key_rules())
        cl_s, cl_rss, _, cl_code = run_validate(large, tmp_path)
    ratio, rss_ratio, c_rss_ratio = a_s / floor_s, l_rss / a_rss, cl_rss / c_rss
    report(f"tacn validate on the SQLite store, {N_SMALL:,} records, 5% bad trade_dates", [
        ("dataset build (store encoding)", f"{built_small:.1f} s, then {built_large:.1f} s for {N_LARGE:,}"),
        ("(b) floor: ADBC into Arrow + polars checks", f"{floor_s:.2f} s"),
        ("(a) tacn validate --json (subprocess)", f"{a_s:.2f} s  exit {a_code}  peak RSS {a_rss:.0f} MiB"),
        ("ratio (a)/(b)", f"{ratio:.2f}  (target <= 1.5) {'OK' if ratio <= 1.5 else 'OVER'}"),
        ("same counts as the floor", f"{'yes' if agree else 'NO'}  trade_date_iso={a_counts['trade_date_iso']:,}"),
        (f"(a) at {N_LARGE:,} records", f"{l_s:.2f} s  exit {l_code}  peak RSS {l_rss:.0f} MiB"),
        ("peak RSS large / small", f"{rss_ratio:.2f}  (target <= 1.2) {'OK' if rss_ratio <= 1.2 else 'OVER'}"),
        ("(c) default rules (+ volume_unit)", f"{c_s:.2f} s  exit {c_code}  peak RSS {c_rss:.0f} MiB; "
                                              f"volume_unit adds {c_s - a_s:+.2f} s (best of 2)"),
        (f"(c) at {N_LARGE:,} records", f"{cl_s:.2f} s  exit {cl_code}  peak RSS {cl_rss:.0f} MiB; "
                                        f"{cl_s - l_s:+.2f} s vs (a) (single runs)"),
        ("(c) peak RSS large / small", f"{c_rss_ratio:.2f}  (target <= 1.2) {'OK' if c_rss_ratio <= 1.2 else 'OVER'}"),
    ])
    if not agree:
        print("  counts differ:", {k: (a_counts[k], v) for k, v in floor_counts.items() if a_counts[k] != v})


if __name__ == "__main__":
    main()
