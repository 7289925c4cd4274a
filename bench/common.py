"""Helpers shared by the benchmarks: timing, peak RSS, scaled sizes, synthetic documents."""

from __future__ import annotations

import os
import resource
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta

SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))


def _compile_tacn() -> None:
    """Byte-compile tacn's sources, as installing a wheel does. The editable install compiles them on first
    import, unless PYTHONDONTWRITEBYTECODE is set (it is on some machines): then every timed tacn child
    would compile ~50 modules again (~0.07 s), a cost no installed tacn pays."""
    import compileall
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for folder in ("tacn_cli", "pipelines", "validators", "migrations", "examples"):
        compileall.compile_dir(root / folder, quiet=1)  # up-to-date files are skipped


_compile_tacn()


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
    from tacn.validators.records import build_document

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


def polars_rule_counts(df) -> dict[str, int]:
    """The row-level rules and key uniqueness as plain polars expressions: the floors' checks."""
    return df.select([expr.sum().alias(name) for name, expr in polars_rule_fails().items()]).row(0, named=True)


def polars_rule_fails() -> dict:
    """{rule: a polars expression, True where the row FAILS}: the row-level rules and key uniqueness."""
    import polars as pl

    from tacn.validators.calendar import session_set
    from tacn.validators.dates import ISO_DATE_SHAPE, latest_allowed_trade_date

    latest = latest_allowed_trade_date().isoformat()
    col, td = pl.col, pl.col("trade_date")
    date_ok = td.str.contains(f"^(?:{ISO_DATE_SHAPE})$").fill_null(False) & (td >= "1990-12-19") & (td <= latest)
    code = col("code")
    suffix = (pl.when(code.str.starts_with("6")).then(pl.lit(".SH"))
              .when(code.str.starts_with("4") | code.str.starts_with("8") | code.str.starts_with("92"))
              .then(pl.lit(".BJ")).otherwise(pl.lit(".SZ")))

    def stamp(name):
        return col(name).cast(pl.Utf8).str.to_datetime(strict=False)

    prices = ["open", "high", "low", "close", "pre_close"]
    expected_pct = (col("close") - col("pre_close")) / col("pre_close") * 100
    checks = {
        "trade_date_iso": ~date_ok,
        "symbol_format": ~col("symbol").str.contains(r"^[0-9]{6}$").fill_null(False),
        "code_matches_symbol": (code != col("symbol")).fill_null(True),
        "period_known": ~col("period").is_in(["daily", "weekly", "monthly"]).fill_null(False),
        "data_source_known": ~col("data_source").is_in(["akshare", "tushare", "baostock"]).fill_null(False),
        "market_known": ~col("market").is_in(["CN", "HK", "US"]).fill_null(False),
        "key_unique": pl.struct(["symbol", "trade_date", "data_source", "period"]).is_first_distinct().not_(),
        "prices_numeric": pl.any_horizontal([col(p).is_infinite().fill_null(False) for p in prices]),
        "prices_positive": pl.any_horizontal([(col(p) <= 0).fill_null(False) for p in prices]),
        "high_is_highest": pl.any_horizontal([(col(p) > col("high")).fill_null(False) for p in ("open", "close", "low")]),
        "low_is_lowest": pl.any_horizontal([(col("low") > col(p)).fill_null(False) for p in ("open", "close")]),
        "volume_amount_non_negative": pl.any_horizontal([(col(p) < 0).fill_null(False) for p in ("volume", "amount")]),
        "full_symbol_exchange": (col("full_symbol") != code + suffix).fill_null(True),
        "pct_chg_consistent": ((col("pct_chg") - expected_pct).abs() > 0.01).fill_null(False),
        "trading_day": date_ok & ~td.is_in(sorted(session_set())),
        "timestamps_valid": stamp("created_at").is_null() | stamp("updated_at").is_null(),
    }
    return checks


def row_and_key_rules() -> str:
    """The rules the validate floors compute, for ``tacn validate --rules``: every row-level rule and key
    uniqueness (the series-wide volume_unit needs each symbol's whole history; bench_validate times it
    and measures its memory in a run with the default rules)."""
    from tacn.validators.rules import RULES

    return ",".join(r.name for r in RULES if r.scope == "row" or r.name == "key_unique")
