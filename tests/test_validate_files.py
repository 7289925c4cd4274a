"""validate reads files with sync's reader: layouts, conversion rejects, typed reads, streams and hostile input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from bson import json_util
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.stores.sqlite import SQLiteStore
from tacn.pipelines.sync import SyncRequest, run_sync
from tacn.pipelines.validate import TargetUnreadable, ValidateOptions, validate_file, validate_store
from tacn.validators.rules import error_rule_names
from tests.test_sync_file import akshare_rows, write_akshare_csv
from tests.test_validate import NOW, good_docs, write_file

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "akshare_quotes_sample.csv"
runner = CliRunner()


ERROR_ROW_RULES = tuple(name for name in error_rule_names())


def options(**kw) -> ValidateOptions:
    kw.setdefault("now_utc", NOW)
    return ValidateOptions(**kw)


def failing(result) -> dict[str, int]:
    return {r.name: r.failing for r in result.rules if r.failing}


def failure_rows(path: Path) -> dict[int, list[str]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {line["row"]: line["rules"] for line in lines}


def tacn(*args, env=None, timeout=120):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "tacn.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=REPO, timeout=timeout)


# -- one reader: a source-layout file is judged as sync converts and loads it --------------


def sync_rejects(tmp_path: Path, source: str, **kw) -> tuple[set[int], SQLiteStore]:
    """Rows (0-based) sync rejects, and the store it loaded the others into."""
    store = SQLiteStore(tmp_path / f"sync-{len(list(tmp_path.iterdir()))}.db")
    rejects = tmp_path / "rejects.jsonl"
    rejects.unlink(missing_ok=True)
    run_sync(store, SyncRequest(source=source, rejects_path=rejects, **kw), now=NOW)
    rows = {json.loads(line)["row"] for line in rejects.read_text().splitlines()} if rejects.exists() else set()
    return rows, store


def error_rows(result_failures: dict[int, list[str]]) -> set[int]:
    from tacn.validators.rules import RULES_BY_NAME

    return {row - 1 for row, rules in result_failures.items()
            if any(RULES_BY_NAME[r].severity == "error" and r != "key_unique" for r in rules)}


def test_the_shipped_akshare_sample_is_judged_as_sync_loads_it(tmp_path):
    out = tmp_path / "failures.jsonl"
    result = validate_file(SAMPLE, options(failures_out=out))
    assert result.target["layout"] == "akshare" and result.records == 25
    assert failing(result).get("trade_date_iso") == 1 and result.failing_records["error"] == 1
    rejected, store = sync_rejects(tmp_path, f"file:{SAMPLE}")
    assert error_rows(failure_rows(out)) == rejected
    sample = next(r for r in result.rules if r.name == "trade_date_iso").samples[0]
    assert sample["value"] == "0" and "digits" in sample["reason"] and sample["row"] == min(rejected) + 1
    in_store = validate_store(store, options(rules=("trade_date_iso", "prices_positive", "high_is_highest")))
    assert in_store.passed and in_store.records == 24
    store.close()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_source_layout_file_reports_exactly_sync_rejects_plus_rule_failures(tmp_path, suffix):
    rows = akshare_rows("000001") + akshare_rows("600000")
    rows[2][0] = "7"  # a row number as a date
    rows[5][0] = "2025-02-30"
    rows[8][2] = "abc"  # 开盘 not a number
    rows[11][3] = None  # 收盘 missing
    rows[14][4] = rows[14][5] - 1  # high below low
    frame = pd.DataFrame(rows, columns=pd.read_csv(SAMPLE, nrows=0).columns)
    path = tmp_path / f"ak{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.astype({"日期": str, "股票代码": str, "开盘": str}).to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    out = tmp_path / "failures.jsonl"
    result = validate_file(path, options(failures_out=out))
    rejected, store = sync_rejects(tmp_path, f"file:{path}")
    assert error_rows(failure_rows(out)) == rejected == {2, 5, 8, 11, 14}
    found = failure_rows(out)
    assert "row_readable" in found[9] and "row_readable" in found[12] and found[15] == ["high_is_highest"]
    assert found[3] == ["trade_date_iso"] and found[6] == ["trade_date_iso"]
    assert result.records == len(rows) and store.count() == len(rows) - 5
    store.close()


def test_a_document_layout_file_is_judged_strictly_as_stored_records(tmp_path):
    docs = good_docs(3, ("600000",))
    docs[1] = dict(docs[1], trade_date="20251022")  # sync would normalise it; stored, it is a bad record
    result = validate_file(write_file(tmp_path / "d.csv", docs), options(rules=ERROR_ROW_RULES))
    assert failing(result) == {"trade_date_iso": 1}
    assert result.target["layout"] == "document"


def test_layout_is_detected_like_sync_and_forced_with_layout(tmp_path):
    path = tmp_path / "odd.csv"
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(path, index=False)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "(a, b)" in result.stderr and "--layout" in result.stderr
    rows = akshare_rows("000001")[:3]
    ak = write_akshare_csv(tmp_path / "ak.csv", rows)
    forced = runner.invoke(app, ["validate", str(ak), "--layout", "tushare", "--json"])
    assert forced.exit_code == 2 and "lacks the columns" in forced.stderr
    synced = runner.invoke(app, ["sync", "--source", f"file:{ak}", "--layout", "akshare", "--dry-run",
                                 "--store", f"sqlite:///{tmp_path}/s.db"])
    alias = runner.invoke(app, ["sync", "--source", f"file:{ak}", "--format", "akshare", "--dry-run",
                                "--store", f"sqlite:///{tmp_path}/s.db"])
    assert synced.exit_code == alias.exit_code == 0, synced.stderr + alias.stderr


# -- typed reads that never abort and never hide a bad value -------------------------------


def test_a_bad_value_in_a_typed_column_fails_a_type_rule_with_its_row(tmp_path):
    docs = good_docs(4, ("600000",))
    docs[2] = dict(docs[2], close="abc")
    out = tmp_path / "f.jsonl"
    result = validate_file(write_file(tmp_path / "d.csv", docs), options(failures_out=out, chunk_size=2))
    found = failing(result)
    assert found["value_types"] == 1 and found["prices_numeric"] == 1
    assert set(failure_rows(out)) == {3}
    sample = next(r for r in result.rules if r.name == "value_types").samples[0]
    assert sample["row"] == 3 and "close='abc'" in sample["reason"]


def test_an_integer_trade_date_in_json_lines_fails_with_its_row(tmp_path):
    docs = good_docs(3, ("600000",))
    docs[0] = dict(docs[0], trade_date=20251021)
    result = validate_file(write_file(tmp_path / "d.jsonl", docs), options())
    sample = next(r for r in result.rules if r.name == "trade_date_iso").samples[0]
    assert sample["row"] == 1 and sample["value"] == 20251021 and "int" in sample["reason"]


# -- hostile input: nested values, BOM, bad lines ----------------------------------------------


def test_nested_values_fail_value_types_instead_of_crashing(tmp_path):
    docs = good_docs(3, ("600000",))
    path = tmp_path / "n.jsonl"
    with path.open("w") as handle:
        for i, doc in enumerate(docs):
            line = json.loads(json_util.dumps(doc))
            if i == 0:
                line["open"] = {"$gt": 1}
            if i == 1:
                line["symbol"] = ["600000"]
                line["extra"] = {"a": [1, 2]}
            handle.write(json.dumps(line) + "\n")
    result = validate_file(path, options())
    assert failing(result)["value_types"] == 2
    samples = next(r for r in result.rules if r.name == "value_types").samples
    assert "open" in samples[0]["reason"] and "symbol, extra" in samples[1]["reason"]
    cli = runner.invoke(app, ["validate", str(path), "--json"])
    assert cli.exit_code == 1 and "Traceback" not in cli.stderr
    assert "unhashable" not in cli.stdout


def test_json_lines_with_a_byte_order_mark_are_read_by_validate_and_sync_alike(tmp_path):
    docs = good_docs(2, ("600000",))
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(json_util.dumps(d) for d in docs).encode() + b"\n")
    result = validate_file(path, options())
    assert result.passed and result.records == len(docs)
    rejected, store = sync_rejects(tmp_path, f"file:{path}")
    assert rejected == set() and store.count() == len(docs)
    store.close()


def test_a_line_that_is_not_json_fails_row_readable_as_sync_rejects_it(tmp_path):
    docs = good_docs(2, ("600000",))
    path = tmp_path / "broken.jsonl"
    path.write_text(json_util.dumps(docs[0]) + "\n{not json\n" + json_util.dumps(docs[1]) + "\n")
    result = validate_file(path, options(rules=("row_readable",)))
    outcome = result.rules[0]
    assert outcome.failing == 1 and outcome.samples[0]["row"] == 2 and "not valid JSON" in outcome.samples[0]["reason"]
    rejected, store = sync_rejects(tmp_path, f"file:{path}")
    assert rejected == {1}
    store.close()


def test_a_json_array_is_a_usage_error_with_a_hint(tmp_path):
    path = tmp_path / "array.json"
    path.write_text('[{"symbol": "600000"}]\n')
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "JSON array" in result.stderr


def test_timezone_aware_parquet_dates_are_taken_on_the_shanghai_clock(tmp_path):
    rows = akshare_rows("000001")[:2]
    frame = pd.DataFrame(rows, columns=pd.read_csv(SAMPLE, nrows=0).columns)
    # 2025-10-09 00:30 in Shanghai is 2025-10-08 16:30 UTC: the trade date is the 9th
    frame["日期"] = pd.to_datetime(frame["日期"]).dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC") \
        + pd.Timedelta(minutes=30)
    path = tmp_path / "tz.parquet"
    frame.to_parquet(path, index=False)
    out = tmp_path / "f.jsonl"
    validate_file(path, options(failures_out=out, rules=("trade_date_iso",)))
    _, store = sync_rejects(tmp_path, f"file:{path}")
    dates = sorted(d["trade_date"] for d in store.iter_documents())
    assert dates == sorted(str(r[0]) for r in rows)
    store.close()


# -- streams: pipes, FIFOs, process substitution, devices -----------------------------------


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="process substitution needs bash")


@needs_bash
def test_process_substitution_is_read_as_a_stream_by_validate_and_sync(tmp_path):
    docs = good_docs(3, ("600000",))
    docs[1] = dict(docs[1], trade_date="1")
    jsonl = write_file(tmp_path / "d.jsonl", docs)
    csv = write_file(tmp_path / "d.csv", docs)
    py = sys.executable
    script = (f'cd {REPO} && {py} -m tacn.cli validate <(cat {jsonl}) --json; echo "rc=$?"; '
              f'{py} -m tacn.cli validate <(cat {csv}) --json; echo "rc=$?"; '
              f'{py} -m tacn.cli validate <(cat {csv}) --file-type csv --json; echo "rc=$?"; '
              f'{py} -m tacn.cli sync --source file:<(cat {jsonl}) --store sqlite:///{tmp_path}/s.db --json; '
              'echo "rc=$?"')
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "TACN_HOME": str(tmp_path / "home")})
    codes = [line for line in proc.stdout.splitlines() if line.startswith("rc=")]
    assert codes == ["rc=1", "rc=2", "rc=1", "rc=1"], proc.stdout + proc.stderr
    assert "--file-type" in proc.stderr
    assert proc.stdout.count('"records": 3') >= 2  # the JSON stream and the typed CSV stream, all rows read
    store = SQLiteStore(tmp_path / "s.db")
    assert store.count() == 2
    store.close()


def test_a_fifo_nobody_writes_to_gives_up_after_the_connect_timeout(tmp_path):
    fifo = tmp_path / "quotes.jsonl"
    os.mkfifo(fifo)
    started = time.monotonic()
    proc = tacn("validate", str(fifo), env={"TACN_CONNECT_TIMEOUT": "1", "TACN_HOME": str(tmp_path / "h")}, timeout=60)
    assert proc.returncode == 3 and "nothing was written" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 30
    with pytest.raises(TargetUnreadable, match="nothing was written"):
        validate_file(fifo, options(stream_wait_s=0.2))


def test_sync_gives_up_on_a_fifo_nobody_writes_to_after_the_connect_timeout(tmp_path):
    fifo = tmp_path / "quotes.csv"
    os.mkfifo(fifo)
    started = time.monotonic()
    proc = tacn("sync", "--source", f"file:{fifo}", "--store", f"sqlite:///{tmp_path / 'q.db'}",
                env={"TACN_CONNECT_TIMEOUT": "1", "TACN_HOME": str(tmp_path / "h")}, timeout=60)
    assert proc.returncode == 3 and "nothing was written" in proc.stderr and "1 s" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 30


def test_a_bad_connect_timeout_is_a_usage_error(tmp_path):
    path = write_file(tmp_path / "d.jsonl", good_docs(1, ("600000",)))
    for bad in ("abc", "-1", "nan"):
        result = runner.invoke(app, ["validate", str(path)], env={"TACN_CONNECT_TIMEOUT": bad})
        assert result.exit_code == 2 and "TACN_CONNECT_TIMEOUT" in result.stderr, (bad, result.stderr)


def test_a_fifo_with_a_writer_is_read(tmp_path):
    import threading

    fifo = tmp_path / "quotes"
    os.mkfifo(fifo)
    payload = "\n".join(json_util.dumps(d) for d in good_docs(2, ("600000",))) + "\n"

    def writer():
        with open(fifo, "w") as handle:
            handle.write(payload)

    thread = threading.Thread(target=writer)
    thread.start()
    result = validate_file(fifo, options())
    thread.join(10)
    assert result.records == 2 and result.target["format"] == "jsonl"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_stops_at_the_line_limit(tmp_path):
    untyped = runner.invoke(app, ["validate", "/dev/zero"])
    assert untyped.exit_code == 2 and "--file-type" in untyped.stderr
    for kind in ("csv", "jsonl"):
        typed = runner.invoke(app, ["validate", "/dev/zero", "--file-type", kind])
        assert typed.exit_code == 3 and "longer than" in typed.stderr, typed.stderr
    synced = runner.invoke(app, ["sync", "--source", "file:/dev/zero", "--file-type", "jsonl",
                                 "--store", f"sqlite:///{tmp_path}/s.db"])
    assert synced.exit_code == 3 and "longer than" in synced.stderr


def test_a_runaway_line_in_a_regular_file_stops_with_exit_3(tmp_path, monkeypatch):
    from tacn.pipelines.sources import files

    monkeypatch.setattr(files, "MAX_LINE_BYTES", 1000)
    docs = good_docs(3, ("600000",))
    path = tmp_path / "long.jsonl"
    path.write_text(json_util.dumps(docs[0]) + "\n" + json.dumps({"symbol": "6" * 5000}) + "\n")
    with pytest.raises(TargetUnreadable, match="longer than"):
        validate_file(path, options())
