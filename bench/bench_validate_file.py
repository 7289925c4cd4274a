"""Benchmark of `tacn validate FILE` on a 1,000,000-row daily-quotes CSV (issue 13).

The CSV (document layout, 1,000 symbols x 1,000 XSHG sessions) has 5% bad
trade_dates of the incident's kinds (row numbers, YYYYMMDD, impossible dates),
0.1% duplicate keys, OHLC and volume errors. In the same run, each a whole
process, interleaved:
(a) `tacn validate FILE --json --rules <row rules,key_unique>` (start-up, imports, read, pandera,
    report; the rules the floors compute);
(b) the polars floor: read_csv with explicit dtypes + the same row-level checks
    and the key-uniqueness check as polars expressions;
(c) the pandas floor: the same with pandas.
Target: (a)/(b) <= 2.0, which also puts (a) ahead of (c). Calendar rules read
the session table cached under TACN_HOME (tacn.validators.calendar), as tacn does.
Also printed: pandera's share of (a) (time inside pandera's validate, measured
in-process on the same file) and the start-up share (`tacn validate --help`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report, row_and_key_rules, scaled  # noqa: E402

ROWS = scaled(1_000_000)
SYMBOLS = 1_000
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))  # best of each: the machine is shared and noisy
TEXT = ("symbol", "code", "full_symbol", "market", "trade_date", "period", "data_source")
NUMBERS = ("open", "high", "low", "close", "pre_close", "volume", "amount", "change", "pct_chg")
ROW_AND_KEY_RULES = row_and_key_rules()  # what the floors compute

FLOOR_POLARS = r'''
import json, sys
sys.path.insert(0, {bench!r})
import polars as pl
from common import polars_rule_counts
TEXT = {TEXT!r}; NUMBERS = {NUMBERS!r}
schema = {{**{{c: pl.Utf8 for c in TEXT}}, **{{c: pl.Float64 for c in NUMBERS}}, "version": pl.Int64}}
print(json.dumps(polars_rule_counts(pl.read_csv(sys.argv[1], schema_overrides=schema))))
'''

FLOOR_PANDAS = r'''
import json, sys
import numpy as np, pandas as pd
from tacn.validators.calendar import session_set
from tacn.validators.dates import ISO_DATE_SHAPE, latest_allowed_trade_date
TEXT = {TEXT!r}; NUMBERS = {NUMBERS!r}
df = pd.read_csv(sys.argv[1], dtype={{**{{c: str for c in TEXT}}, **{{c: "float64" for c in NUMBERS}}}})
latest = latest_allowed_trade_date().isoformat()
td = df["trade_date"]
date_ok = td.str.fullmatch(ISO_DATE_SHAPE).fillna(False) & (td >= "1990-12-19") & (td <= latest)
prices = df[["open", "high", "low", "close", "pre_close"]]
code = df["code"]
suffix = np.select([code.str.startswith("6"), code.str.startswith(("4", "8", "92"))], [".SH", ".BJ"], ".SZ")
created = pd.to_datetime(df["created_at"], errors="coerce", format="ISO8601")
updated = pd.to_datetime(df["updated_at"], errors="coerce", format="ISO8601")
expected = (df["close"] - df["pre_close"]) / df["pre_close"] * 100
fails = {{
    "trade_date_iso": ~date_ok,
    "symbol_format": ~df["symbol"].str.fullmatch(r"[0-9]{{6}}").fillna(False),
    "code_matches_symbol": code != df["symbol"],
    "period_known": ~df["period"].isin(["daily", "weekly", "monthly"]),
    "data_source_known": ~df["data_source"].isin(["akshare", "tushare", "baostock"]),
    "market_known": ~df["market"].isin(["CN", "HK", "US"]),
    "key_unique": df.duplicated(["symbol", "trade_date", "data_source", "period"]),
    "prices_numeric": (prices.notna() & ~np.isfinite(prices)).any(axis=1),
    "prices_positive": (prices <= 0).any(axis=1),
    "high_is_highest": (df["open"] > df["high"]) | (df["close"] > df["high"]) | (df["low"] > df["high"]),
    "low_is_lowest": (df["low"] > df["open"]) | (df["low"] > df["close"]),
    "volume_amount_non_negative": (df[["volume", "amount"]] < 0).any(axis=1),
    "full_symbol_exchange": df["full_symbol"] != code + suffix,
    "pct_chg_consistent": (df["pct_chg"] - expected).abs() > 0.01,
    "trading_day": date_ok & ~td.isin(session_set()),
    "timestamps_valid": created.isna() | updated.isna(),
}}
print(json.dumps({{n: int(m.sum()) for n, m in fails.items()}}))
'''


def write_csv(path: Path) -> None:
    """The dataset, vectorised: row i is symbol i % SYMBOLS on session i // SYMBOLS, then the damage."""
    import numpy as np
    import pandas as pd

    from tacn.validators.calendar import sessions_between

    per_symbol = -(-ROWS // SYMBOLS)  # sessions per symbol, rounded up
    days = np.array(sessions_between("1990-12-19", "2025-10-23")[-per_symbol:], dtype=object)
    i = np.arange(ROWS)
    s, d = i % SYMBOLS, i // SYMBOLS
    codes = np.array([f"{600000 + k:06d}" if k % 2 else f"{k:06d}" for k in range(SYMBOLS)], dtype=object)
    code = codes[s]
    close = 10.0 + (d % 7) * 0.01 + s % 50
    pre_close = close - 0.1
    frame = pd.DataFrame({
        "symbol": code, "code": code,
        "full_symbol": code + np.where(np.char.startswith(code.astype(str), "6"), ".SH", ".SZ"),
        "market": "CN", "trade_date": days[d], "period": "daily", "data_source": "akshare",
        "open": close - 0.05, "high": close + 0.2, "low": close - 0.2, "close": close, "pre_close": pre_close,
        "volume": 1000.0 + d, "amount": 1e4 + d, "change": np.round(close - pre_close, 4),
        "pct_chg": np.round(np.round(close - pre_close, 4) / pre_close * 100, 4),
        "created_at": "2025-10-23T09:00:00.000", "updated_at": "2025-10-23T09:00:00.000", "version": 1,
    })
    rng = np.random.default_rng(13)
    bad = rng.choice(ROWS, ROWS // 20, replace=False)  # 5% bad dates of the incident's kinds
    kinds = bad % 3
    dates = frame["trade_date"].to_numpy().copy()
    dates[bad[kinds == 0]] = bad[kinds == 0].astype(str)  # the row number
    dates[bad[kinds == 1]] = [t.replace("-", "") for t in dates[bad[kinds == 1]]]  # YYYYMMDD
    dates[bad[kinds == 2]] = "2025-02-30"
    frame["trade_date"] = dates
    dup = rng.choice(np.setdiff1d(i, bad), ROWS // 1000, replace=False)  # 0.1% repeat the key of the next symbol
    frame.loc[dup, "symbol"] = frame["symbol"].to_numpy()[(dup + 1) % ROWS]
    frame.loc[dup, "code"] = frame.loc[dup, "symbol"]
    frame.loc[dup, "trade_date"] = frame["trade_date"].to_numpy()[(dup + 1) % ROWS]
    frame.loc[dup, "full_symbol"] = frame["full_symbol"].to_numpy()[(dup + 1) % ROWS]
    ohlc = rng.choice(ROWS, ROWS // 200, replace=False)
    frame.loc[ohlc, "high"] = frame.loc[ohlc, "low"] - 0.01
    vol = rng.choice(ROWS, ROWS // 500, replace=False)
    frame.loc[vol, "volume"] = -1.0
    frame.to_csv(path, index=False)


def timed(args: list[str], env: dict) -> tuple[float, str, int]:
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, proc.stdout, proc.returncode


def pandera_share(path: Path) -> tuple[float, float, tuple[int, int]]:
    """(seconds inside pandera's validate, whole validate_file, (CSV blocks parsed by Arrow, by pandas))
    in this process, same file."""
    import tacn.validators.schemas as schemas
    from tacn.pipelines.sources.csv_blocks import BlockReader
    from tacn.pipelines.validate import ValidateOptions, validate_file

    readers = []
    init = BlockReader.__init__

    def remember(self, *args, **kwargs):
        init(self, *args, **kwargs)
        readers.append(self)

    BlockReader.__init__ = remember

    spent = [0.0]
    original = schemas.judge

    def judge(schema, frame):
        start = time.perf_counter()
        try:
            return original(schema, frame)
        finally:
            spent[0] += time.perf_counter() - start

    import tacn.pipelines.validate as validate

    validate.judge = judge
    start = time.perf_counter()
    validate_file(path, ValidateOptions(rules=tuple(ROW_AND_KEY_RULES.split(","))))
    whole = time.perf_counter() - start
    validate.judge = original
    BlockReader.__init__ = init
    return spent[0], whole, (sum(r.fast_blocks for r in readers), sum(r.pandas_blocks for r in readers))


def main() -> None:
    tacn = os.path.join(os.path.dirname(sys.executable), "tacn")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        path = tmp_path / "quotes.csv"
        started = time.perf_counter()
        write_csv(path)
        built = time.perf_counter() - started
        env = {**os.environ, "TACN_HOME": str(tmp_path / "home")}
        repo = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
        floors = {}
        for name, source in (("polars", FLOOR_POLARS), ("pandas", FLOOR_PANDAS)):
            script = tmp_path / f"floor_{name}.py"
            script.write_text(source.format(TEXT=TEXT, NUMBERS=NUMBERS, bench=str(Path(__file__).resolve().parent)))
            floors[name] = [sys.executable, str(script), str(path)]
        subprocess.run([sys.executable, "-c", "from tacn.validators.calendar import session_set; session_set()"],
                       env=env, check=True)  # the session table cached under TACN_HOME, for all three
        times = {"tacn": [], "polars": [], "pandas": []}
        outputs = {}
        for _ in range(ROUNDS):  # interleaved: the machine is shared
            for name, args in (("tacn", [tacn, "validate", str(path), "--json", "--rules", ROW_AND_KEY_RULES]),
                               *floors.items()):
                seconds, stdout, code = timed(args, env)
                times[name].append(seconds)
                outputs[name] = (stdout, code)
        startup, _, _ = timed([tacn, "validate", "--help"], env)
        inside, whole, (arrow_blocks, pandas_blocks) = pandera_share(path)
    best = {name: min(values) for name, values in times.items()}
    report_json = json.loads(outputs["tacn"][0])
    tacn_counts = {r["name"]: r["failing"] for r in report_json["rules"]}
    polars_counts = json.loads(outputs["polars"][0])
    pandas_counts = json.loads(outputs["pandas"][0])
    differ = {k: (tacn_counts.get(k), v, pandas_counts.get(k)) for k, v in polars_counts.items()
              if tacn_counts.get(k) != v or pandas_counts.get(k) != v}
    ratio = best["tacn"] / best["polars"]
    report(f"tacn validate FILE on a {ROWS:,}-row CSV (5% bad dates, 0.1% duplicate keys), best of {ROUNDS}", [
        ("dataset build", f"{built:.1f} s"),
        ("(b) polars floor (read_csv + expressions)", f"{best['polars']:.2f} s"),
        ("(c) pandas floor (read_csv + vectorised checks)", f"{best['pandas']:.2f} s"),
        ("(a) tacn validate FILE --json", f"{best['tacn']:.2f} s  exit {outputs['tacn'][1]}"),
        ("ratio (a)/(b)", f"{ratio:.2f}  (target <= 2.0) {'OK' if ratio <= 2.0 else 'OVER'}"),
        ("ratio (a)/(c)", f"{best['tacn'] / best['pandas']:.2f}  (target < 1.0)"),
        ("pandera's share of validate (in-process)", f"{inside:.2f} s of {whole:.2f} s ({inside / whole:.0%})"),
        ("start-up share (tacn validate --help)", f"{startup:.2f} s ({startup / best['tacn']:.0%})"),
        ("CSV blocks parsed by Arrow / by pandas", f"{arrow_blocks} / {pandas_blocks}"),
        ("same counts in all three", "yes" if not differ else f"NO: {differ}"),
    ])


if __name__ == "__main__":
    main()
