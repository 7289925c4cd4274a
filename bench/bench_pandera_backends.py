"""Where the pandas/polars boundary should be (issue 13): pandera's pandas backend, as tacn runs it,
against pandera's polars backend running the same rules as polars expressions, in one process.

The data: bench_validate_file's 1,000,000-row CSV (BENCH_SCALE scales it), read once per backend
(pandas frames through tacn's reader, which validate judges; a polars frame with explicit dtypes),
then judged in chunks of 100,000 rows with lazy validation, failure cases kept short (5 per check).
Printed: seconds per backend for reading and for judging, pandera.polars' import, and whether the
failing-row counts agree.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import polars_rule_fails, report, row_and_key_rules  # noqa: E402

CHUNK = 100_000


def pandas_backend(path: Path) -> tuple[float, float, dict[str, int]]:
    from tacn.pipelines.validate import ValidateOptions, _open_file, file_documents
    from tacn.validators.rules import CheckContext
    from tacn.validators.schemas import judge, quote_schema

    options = ValidateOptions(chunk_size=CHUNK)
    started = time.perf_counter()
    frames = [f.reset_index(drop=True) for f in file_documents(_open_file(path, options), options)]
    read = time.perf_counter() - started
    rules = [r for r in row_and_key_rules().split(",") if r in polars_rule_fails() and r != "key_unique"]
    schema = quote_schema(rules=rules, context=CheckContext(), samples=5)
    counts = dict.fromkeys(rules, 0)
    started = time.perf_counter()
    for frame in frames:
        verdict = judge(schema, frame)
        for name, mask in verdict.failing.items():
            counts[name] += int(mask.sum())
    return read, time.perf_counter() - started, counts


def polars_backend(path: Path) -> tuple[float, float, float, dict[str, int]]:
    import polars as pl

    started = time.perf_counter()
    import pandera.polars as pap
    from pandera.errors import SchemaErrors

    imported = time.perf_counter() - started
    text = ("symbol", "code", "full_symbol", "market", "trade_date", "period", "data_source")
    numbers = ("open", "high", "low", "close", "pre_close", "volume", "amount", "change", "pct_chg")
    started = time.perf_counter()
    frame = pl.read_csv(path, schema_overrides={**{c: pl.Utf8 for c in text}, **{c: pl.Float64 for c in numbers},
                                                 "version": pl.Int64})
    read = time.perf_counter() - started
    fails = {name: expr for name, expr in polars_rule_fails().items() if name != "key_unique"}

    def check(name, expr):
        return pap.Check(lambda data: data.lazyframe.select((~expr).alias(name)), name=name, n_failure_cases=5)

    schema = pap.DataFrameSchema(checks=[check(n, e) for n, e in fails.items()])
    counts = dict.fromkeys(fails, 0)
    started = time.perf_counter()
    for offset in range(0, frame.height, CHUNK):
        chunk = frame.slice(offset, CHUNK)
        try:
            schema.validate(chunk, lazy=True)
        except SchemaErrors as exc:
            for error in exc.schema_errors:
                name = error.check.name
                # pandera.polars keeps the failing rows' check output: count them
                counts[name] += int((~error.check_output[error.check_output.columns[-1]]).sum())
    return imported, read, time.perf_counter() - started, counts


def main() -> None:
    from bench_validate_file import ROWS, write_csv

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "quotes.csv"
        write_csv(path)
        pandas_read, pandas_judge, pandas_counts = pandas_backend(path)
        polars_import, polars_read, polars_judge, polars_counts = polars_backend(path)
    differ = {k: (v, polars_counts.get(k)) for k, v in pandas_counts.items() if polars_counts.get(k) != v}
    report(f"pandera backends on a {ROWS:,}-row CSV, chunks of {CHUNK:,}, in process", [
        ("pandas backend (tacn): read (tacn's reader, documents)", f"{pandas_read:.2f} s"),
        ("pandas backend (tacn): judge (pandera lazy, the rule catalogue)", f"{pandas_judge:.2f} s"),
        ("polars backend: import pandera.polars", f"{polars_import:.2f} s"),
        ("polars backend: read (pl.read_csv, explicit dtypes)", f"{polars_read:.2f} s"),
        ("polars backend: judge (pandera lazy, the same rules as expressions)", f"{polars_judge:.2f} s"),
        ("same failing counts", "yes" if not differ else f"NO: {differ}"),
    ])


if __name__ == "__main__":
    main()
