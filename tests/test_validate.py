"""tacn validate / tacn schema: streaming judgement of stores and files, reports, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bson import ObjectId, json_util
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.errors import UsageError
from tacn.pipelines.stores.base import RecordFilter
from tacn.pipelines.validate import (
    SeenKeys,
    TargetUnreadable,
    ValidateOptions,
    junit_xml,
    key_hashes,
    validate_file,
    validate_store,
)
from tacn.validators.calendar import sessions_between
from tacn.validators.records import build_document
from tacn.validators.rules import RULES, catalogue_markdown, failing_masks
from tacn.validators.schemas import failed_rule_names
from tests.conftest import STORE_KINDS, close_test_store, open_test_store

REPO = Path(__file__).resolve().parents[1]
STAMP = datetime(2025, 10, 23, 9, 0, 0)
NOW = datetime(2025, 10, 24, 8, 0, 0)
SYMBOLS = ("600000", "000001", "300750", "830799", "688981")


def good_docs(days: int, symbols=SYMBOLS) -> list[dict]:
    """Clean documents on real XSHG sessions ending 2025-10-23 (full_symbol with the right exchange)."""
    sessions = sessions_between("2015-01-01", "2025-10-23")[-days:]
    docs = []
    for s_i, symbol in enumerate(symbols):
        for d_i, day in enumerate(sessions):
            close = 10.0 + (d_i % 7) * 0.1 + s_i
            doc = build_document(
                symbol=symbol, trade_date=day, data_source="akshare", open=close - 0.05, high=close + 0.2,
                low=close - 0.2, close=close, pre_close=close - 0.1, volume=1000.0 + d_i, amount=10_000.0 + d_i,
                now=STAMP,
            )
            suffix = {"6": "SH", "8": "BJ"}.get(symbol[0], "SZ")
            doc["full_symbol"] = f"{symbol}.{suffix}"
            docs.append(doc)
    return docs


def one_bad_record_per_rule() -> dict[str, dict]:
    """A record that fails exactly the named rule (and no other), for each row-level rule."""
    base = dict(good_docs(1, ("601398",))[0])  # 2025-10-23, a session
    bad = {
        "trade_date_iso": {"trade_date": "2024-02-30"},
        "symbol_format": {"symbol": "12345", "code": "12345"},  # the full_symbol rule skips bad codes
        "code_matches_symbol": {"code": "699999", "full_symbol": "699999.SH"},
        "period_known": {"period": "hourly"},
        "data_source_known": {"data_source": "yahoo"},
        "market_known": {"market": "XX"},
        "prices_positive": {"pre_close": -1.0, "pct_chg": None},
        "high_is_highest": {"high": base["close"] - 0.01},
        "low_is_lowest": {"low": base["open"] + 0.01},
        "volume_amount_non_negative": {"volume": -5.0},
        "full_symbol_exchange": {},  # given a .SZ suffix below, once the symbol is known
        "pct_chg_consistent": {"pct_chg": 3.0},
        "trading_day": {"trade_date": "2025-10-01"},
    }
    out = {}
    for i, (rule, changes) in enumerate(bad.items()):
        symbol = f"60{i:04d}"  # a distinct key per record
        doc = dict(base, symbol=symbol, code=symbol, full_symbol=f"{symbol}.SH")
        doc.update(changes)
        if rule == "full_symbol_exchange":
            doc["full_symbol"] = f"{symbol}.SZ"
        out[rule] = doc
    return out


def write_file(path: Path, docs: list[dict]) -> Path:
    frame = pd.DataFrame(docs)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        with path.open("w") as handle:
            for doc in docs:
                handle.write(json_util.dumps(doc) + "\n")
    return path


def options(**kw) -> ValidateOptions:
    kw.setdefault("now_utc", NOW)
    return ValidateOptions(**kw)


def counts(result) -> dict[str, int]:
    return {r.name: r.failing for r in result.rules}


runner = CliRunner()


# -- the rules through every target ----------------------------------------------------


def test_each_rule_fails_its_bad_record_in_the_store(store):
    bad = one_bad_record_per_rule()
    store.upsert(good_docs(3, ("600519",)) + list(bad.values()), now=STAMP)
    result = validate_store(store, options())
    found = counts(result)
    for rule in bad:
        assert found[rule] == 1, (rule, found)
    assert found["key_unique"] == 0 and found["timestamps_valid"] == 0
    assert result.records == 3 + len(bad) and not result.passed


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_each_rule_fails_its_bad_record_in_a_file(tmp_path, suffix):
    bad = one_bad_record_per_rule()
    path = write_file(tmp_path / f"quotes{suffix}", good_docs(3, ("600519",)) + list(bad.values()))
    found = counts(validate_file(path, options()))
    assert {rule: found[rule] for rule in bad} == dict.fromkeys(bad, 1)
    assert found["key_unique"] == 0 and found["timestamps_valid"] == 0


def test_same_verdict_in_sqlite_mongomock_and_files(tmp_path, request):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    docs = good_docs(20, SYMBOLS[:3]) + list(one_bad_record_per_rule().values())
    docs.append(dict(docs[0], trade_date="0"))
    docs.append(dict(docs[1], trade_date="20251023"))
    verdicts = {}
    for kind in STORE_KINDS:
        store = SQLiteStore(tmp_path / "v.db") if kind == "sqlite" else open_test_store(kind, request)
        store.upsert(docs, now=STAMP)
        # the store stamped updated_at; files get exactly what the store holds
        exported = [{k: v for k, v in d.items() if k != "_id"} for d in store.iter_documents()]
        verdicts[kind] = validate_store(store, options(chunk_size=7))
        close_test_store(store)
    for suffix in (".csv", ".parquet", ".jsonl"):
        path = write_file(tmp_path / f"v{suffix}", exported)
        verdicts[suffix] = validate_file(path, options(chunk_size=7))
    reference = verdicts["sqlite"]
    assert not reference.passed and reference.records == len(docs)
    for kind, result in verdicts.items():
        assert counts(result) == counts(reference), kind
        assert result.passed == reference.passed and result.failing_records == reference.failing_records, kind


@pytest.mark.parametrize("value", ["0", "1", "20251023", "2025/10/23", "2024-02-30", "2024-1-2", "0001-01-01",
                                   "9999-12-31", "", None, 20251023])
def test_issue_dates_fail_in_the_store(tmp_path, value):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "d.db") as store:
        store.upsert([dict(good_docs(1, ("600000",))[0], trade_date=value)], now=STAMP)
        result = validate_store(store, options(rules=("trade_date_iso",)))
    assert counts(result) == {"trade_date_iso": 1}
    assert result.rules[0].samples[0]["reason"]


def test_good_date_passes_in_the_store(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "d.db") as store:
        store.upsert([dict(good_docs(1, ("600000",))[0], trade_date="2025-10-23")], now=STAMP)
        assert validate_store(store, options()).passed


# -- streaming: chunks, uniqueness across chunks ---------------------------------------------


@pytest.fixture(scope="module")
def ten_thousand_with_five_bad(tmp_path_factory):
    docs = good_docs(1000, ("600000", "000001", "300750", "600036", "000002", "601318", "000858", "002594",
                            "600276", "601012"))
    assert len(docs) == 10_000
    bad_at = [5, 2_400, 4_999, 7_777, 9_998]
    for position, value in zip(bad_at, ["0", "20251023", "2024-02-30", "2025/10/23", "1"], strict=True):
        docs[position] = dict(docs[position], trade_date=value)
    path = tmp_path_factory.mktemp("big") / "quotes.csv"
    write_file(path, docs)
    return path, [p + 1 for p in bad_at]


def test_five_bad_rows_spread_over_chunks_are_exactly_five(ten_thousand_with_five_bad, tmp_path):
    path, rows = ten_thousand_with_five_bad
    failures = tmp_path / "failures.jsonl"
    result = runner.invoke(app, ["validate", str(path), "--batch-size", "1000", "--json", "--max-samples", "10",
                                 "--failures-out", str(failures)])
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    by_name = {r["name"]: r for r in report["rules"]}
    assert report["records"] == 10_000 and report["chunks"] == 10 and report["verdict"] == "fail"
    assert by_name["trade_date_iso"]["failing"] == 5
    assert sorted(s["row"] for s in by_name["trade_date_iso"]["samples"]) == rows
    assert report["failing_records"]["error"] == 5
    lines = [json.loads(line) for line in failures.read_text().splitlines()]
    assert report["failures_out"]["records"] == len(lines) == 5
    assert all(line["rules"] == ["trade_date_iso"] for line in lines)
    assert sorted(line["row"] for line in lines) == rows


def test_duplicates_split_across_chunks_are_found(tmp_path):
    docs = good_docs(300, ("600000", "000001"))
    docs.insert(550, dict(docs[10]))  # a key from chunk 1 again in chunk 6
    docs.append(dict(docs[599]))  # and one at the very end
    path = write_file(tmp_path / "dups.jsonl", docs)
    result = validate_file(path, options(chunk_size=100, rules=("key_unique",)))
    outcome = result.rules[0]
    assert outcome.failing == 2 and not result.passed
    assert sorted(s["row"] for s in outcome.samples) == [551, 602]
    assert outcome.samples[0]["key"]["trade_date"] == docs[10]["trade_date"]


def test_duplicates_inside_one_chunk_count_every_repeat(tmp_path):
    docs = good_docs(5, ("600000",))
    docs += [dict(docs[0]), dict(docs[0]), dict(docs[1])]
    result = validate_file(write_file(tmp_path / "d.csv", docs), options(rules=("key_unique",)))
    assert result.rules[0].failing == 3


def test_seen_keys_matches_a_python_set():
    rng = np.random.default_rng(7)
    seen, reference = SeenKeys(), set()
    for _ in range(20):
        hashes = rng.integers(0, 5_000, size=700, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        expected = []
        for h in hashes.tolist():
            expected.append(h in reference)
            reference.add(h)
        assert seen.add(hashes).tolist() == expected
    assert seen.distinct == len(reference)


def test_key_hashes_keep_types_apart():
    frame = pd.DataFrame({"symbol": ["600000", "600000"], "trade_date": pd.Series([20251023, "20251023"], dtype=object),
                          "data_source": ["akshare"] * 2, "period": ["daily"] * 2})
    hashes = key_hashes(frame)
    assert hashes[0] != hashes[1]
    text_only = pd.DataFrame({k: pd.Series(["600000"], dtype="str") for k in ("symbol", "trade_date", "data_source",
                                                                               "period")})
    as_object = text_only.astype(object)
    assert key_hashes(text_only)[0] == key_hashes(as_object)[0]


# -- filters, thresholds, completeness ---------------------------------------------------


def test_filters_narrow_store_and_file_alike(store, tmp_path):
    docs = good_docs(10, ("600000", "000001"))
    docs[0] = dict(docs[0], trade_date="0")  # 600000
    docs[15] = dict(docs[15], trade_date="0")  # 000001
    store.upsert(docs, now=STAMP)
    only = options(flt=RecordFilter(symbols=("000001",), data_source="akshare", period="daily"))
    in_store = validate_store(store, only)
    in_file = validate_file(write_file(tmp_path / "f.parquet", docs), only)
    assert in_store.records == in_file.records == 10
    assert counts(in_store)["trade_date_iso"] == counts(in_file)["trade_date_iso"] == 1
    assert in_store.filters == {"data_source": "akshare", "period": "daily", "symbols": ["000001"]}


def test_since_filter_on_a_file(tmp_path):
    docs = good_docs(4, ("600000",))
    docs[0] = dict(docs[0], trade_date="0", updated_at=datetime(2020, 1, 1))
    path = write_file(tmp_path / "s.jsonl", docs)
    result = validate_file(path, options(flt=RecordFilter(updated_since=datetime(2025, 1, 1))))
    assert result.records == 3 and result.passed


def test_warnings_fail_only_with_the_warning_threshold(tmp_path):
    docs = good_docs(5, ("600000",))
    docs[2] = dict(docs[2], full_symbol="600000.SZ")
    path = write_file(tmp_path / "w.csv", docs)
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0
    strict = runner.invoke(app, ["validate", str(path), "--severity-threshold", "warning"])
    assert strict.exit_code == 1
    assert "full_symbol_exchange" in strict.stdout and "FAIL" in strict.stdout


def test_completeness_reports_missing_trading_days(tmp_path):
    docs = good_docs(30, ("600000", "000001"))
    del docs[10:13]  # three sessions of 600000
    path = write_file(tmp_path / "c.csv", docs)
    result = validate_file(path, options(completeness=True))
    outcome = {r.name: r for r in result.rules}["completeness"]
    assert outcome.failing == 3 and outcome.checked == 60
    assert outcome.samples[0]["key"]["symbol"] == "600000" and len(outcome.samples[0]["value"]) == 3
    assert result.passed  # a warning
    assert "completeness" in validate_file(path, options()).skipped_rules


def test_pandera_schema_agrees_with_the_masks():
    docs = good_docs(3, ("600000",)) + list(one_bad_record_per_rule().values())
    docs.append(dict(docs[0]))
    frame = pd.DataFrame(docs)
    from tacn.validators.rules import CheckContext

    ctx = CheckContext(now_utc=NOW)
    by_masks = {name for name, mask in failing_masks(frame, context=ctx).items() if mask.any()} | {"key_unique"}
    assert failed_rule_names(frame, context=ctx) == by_masks
    assert failed_rule_names(pd.DataFrame(good_docs(3, ("600000",))), context=ctx) == set()


# -- reports ----------------------------------------------------------------------------------


def test_junit_has_one_testcase_per_rule(tmp_path):
    docs = good_docs(5, ("600000",))
    docs[1] = dict(docs[1], trade_date="0")
    docs[2] = dict(docs[2], full_symbol="600000.SZ")
    path = write_file(tmp_path / "j.csv", docs)
    junit = tmp_path / "reports" / "validate.xml"
    result = runner.invoke(app, ["validate", str(path), "--junit", str(junit), "--json"])
    assert result.exit_code == 1
    json.loads(result.stdout)
    root = ET.parse(junit).getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert sorted(cases) == sorted(r.name for r in RULES)
    failure = cases["trade_date_iso"].find("failure")
    assert failure is not None and failure.get("message").startswith("1 of 5 fail")
    assert '"0"' in failure.text
    assert cases["full_symbol_exchange"].find("failure") is None  # a warning under the error threshold
    assert "1 of 5" in cases["full_symbol_exchange"].find("system-out").text
    assert cases["completeness"].find("skipped") is not None
    assert root.find("testsuite").get("failures") == "1"


def test_junit_of_a_clean_run_has_no_failures(tmp_path):
    path = write_file(tmp_path / "ok.parquet", good_docs(3))
    xml = junit_xml(validate_file(path, options()))
    root = ET.fromstring(xml.split("?>", 1)[1])
    assert root.get("failures") == "0" and not list(root.iter("failure"))


def test_table_output_shows_rules_and_verdict(tmp_path):
    docs = good_docs(5, ("600000",))
    docs[0] = dict(docs[0], trade_date="20251023")
    result = runner.invoke(app, ["validate", str(write_file(tmp_path / "t.csv", docs))])
    assert result.exit_code == 1
    assert "trade_date_iso" in result.stdout and "'20251023'" in result.stdout
    assert "FAIL" in result.stdout and "not run: completeness" in result.stderr


def test_clean_store_passes_and_json_shows_the_masked_store(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "clean.db") as store:
        store.upsert(good_docs(5), now=datetime(2025, 10, 23))
    result = runner.invoke(app, ["validate", "--store", f"sqlite:///{tmp_path}/clean.db", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass" and report["records"] == 25
    assert report["target"] == {"kind": "store", "name": f"sqlite:///{tmp_path}/clean.db", "format": "sqlite"}


def test_password_never_shown_when_mongodb_is_unreachable(monkeypatch):
    monkeypatch.setenv("TACN_CONNECT_TIMEOUT", "0.3")
    result = runner.invoke(app, ["validate", "--store", "mongodb://ops:hunter2secret@127.0.0.1:9/db", "--json"])
    assert result.exit_code == 3
    error = json.loads(result.stdout)["error"]  # --json: one error object on stdout
    assert error["kind"] == "store_unavailable" and error["exit_code"] == 3
    assert "hunter2secret" not in result.stdout + result.stderr and "***" in result.stderr


def test_mongoexport_extended_json(tmp_path):
    lines = [
        {"_id": {"$oid": str(ObjectId())}, **{k: v for k, v in d.items()}} for d in good_docs(3, ("600000",))
    ]
    path = tmp_path / "export.json"
    with path.open("w") as handle:
        for doc in lines:
            doc["created_at"] = {"$date": "2025-10-23T09:00:00.000Z"}
            doc["updated_at"] = {"$date": "2025-10-23T09:00:00.000Z"}
            doc["volume"] = {"$numberLong": "1000"}
            doc.pop("_id")
            doc["_id"] = {"$oid": str(ObjectId())}
            handle.write(json.dumps(doc, default=str) + "\n")
        handle.write(json.dumps({"_id": {"$oid": str(ObjectId())}, **{**lines[0], "_id": None, "trade_date": "7",
                                                                       "created_at": {"$date": "2025-10-23T09:00:00Z"},
                                                                       "updated_at": {"$date": "2025-10-23T09:00:00Z"},
                                                                       "volume": 5.0}}, default=str) + "\n")
    result = validate_file(path, options())
    found = counts(result)
    assert result.records == 4 and found["trade_date_iso"] == 1 and found["timestamps_valid"] == 0
    assert found["volume_amount_non_negative"] == 0


# -- bad input: clear messages and the documented exit codes --------------------------------


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["validate", "--rules", "nope"], 2, "unknown rule"),
        (["validate", "--severity-threshold", "fatal"], 2, "--severity-threshold"),
        (["validate", "--since", "yesterday-ish"], 2, "--since"),
        (["validate", "--symbols", "12"], 2, "6-digit"),
        (["validate", "--batch-size", "0"], 2, "--batch-size"),
        (["validate", "missing.csv"], 3, "does not exist"),
        (["validate", "--store", "sqlite:///"], 2, "sqlite:///PATH"),
    ],
)
def test_bad_input_gets_a_message_and_a_code(args, code, words):
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("broken.parquet", b"PAR1 not really", "cannot read"),
        ("binary.csv", b"\xff\xfe\x00\x81garbage\x00\n\x00\x00", "cannot read"),
    ],
)
def test_unreadable_files_exit_3(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TargetUnreadable, match=words):
        validate_file(path, options())
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 3 and "Traceback" not in result.stderr


def test_a_file_of_unknown_type_is_a_usage_error(tmp_path):
    path = tmp_path / "quotes.xlsx"
    path.write_bytes(b"PK\x03\x04 not ours")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "cannot tell the type" in result.stderr and "--file-type" in result.stderr


def test_a_directory_as_target_exits_3(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    assert runner.invoke(app, ["validate", str(tmp_path / "dir.csv")]).exit_code == 3


def test_unknown_rule_in_the_library_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError):
        validate_file(write_file(tmp_path / "x.csv", good_docs(1)), options(rules=("nope",)))


# -- tacn schema and docs/validate.md ------------------------------------------------------------


def test_schema_json_lists_the_catalogue():
    result = runner.invoke(app, ["schema", "--json"])
    assert result.exit_code == 0
    rules = json.loads(result.stdout)["rules"]
    assert [r["name"] for r in rules] == [r.name for r in RULES]
    assert all(r["severity"] in ("error", "warning") and r["description"] for r in rules)


def test_readme_rule_table_matches_the_catalogue():
    page = (REPO / "docs" / "validate.md").read_text(encoding="utf-8")
    assert catalogue_markdown() in page, (
        "docs/validate.md's rule table drifted from validators/rules.py: paste the output of "
        "`python -c 'from tacn.validators.rules import catalogue_markdown; print(catalogue_markdown())'`"
    )


def test_validate_as_a_real_subprocess(tmp_path):
    docs = good_docs(5, ("600000",))
    docs[3] = dict(docs[3], trade_date="3")
    path = write_file(tmp_path / "p.jsonl", docs)
    env = {**os.environ, "TACN_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "tacn.cli", "validate", str(path), "--json"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr  # pandera's registry at exit
    report = json.loads(proc.stdout)
    assert {r["name"]: r["failing"] for r in report["rules"]}["trade_date_iso"] == 1


def test_a_non_string_key_in_a_later_chunk_does_not_hide_duplicates_of_string_keys(tmp_path):
    docs = good_docs(4, ("600000",))
    later = [dict(docs[0]), dict(docs[1], trade_date=20251023)]  # a repeat, next to an integer date
    frame_a, frame_b = pd.DataFrame(docs), pd.DataFrame(later)
    seen = SeenKeys()
    assert not seen.add(key_hashes(frame_a)).any()
    assert seen.add(key_hashes(frame_b)).tolist() == [True, False]


def test_progress_reports_bytes_of_the_file_per_chunk(tmp_path):
    path = write_file(tmp_path / "p.csv", good_docs(5, ("600000", "000001")))
    seen = []
    result = validate_file(path, options(chunk_size=4), progress=lambda *report: seen.append(report))
    size = path.stat().st_size
    assert len(seen) == 3 and result.chunks == 3
    assert all(total == size and unit == "bytes" for _, total, unit in seen)
    assert seen[-1][0] == size and [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)
