"""tacn sync --source file:PATH, the CLI, the layout conversion, the lock and the run record."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.errors import LockHeld, SourceError, UsageError
from tacn.pipelines.sync import SyncRequest, read_symbols_file, run_sync
from tacn.validators.records import build_document
from tacn.validators.source_layouts import AKSHARE_COLUMNS, convert_frame, documents
from tests.sync_fixtures import TushareFake, synthetic_quotes

runner = CliRunner()
SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "akshare_quotes_sample.csv"  # the demo uses it too
TOKEN = "tk-test-0123456789abcdef"


def akshare_rows(symbol: str, start="2025-09-01", end="2025-10-24") -> list[list]:
    rows = []
    for r in synthetic_quotes(symbol, start, end):
        rows.append([r["date"], symbol, r["open"], r["close"], r["high"], r["low"], r["vol"], r["amount"] * 1000,
                     1.0, r["pct_chg"], r["change"], r["turnover"]])
    return rows


def write_akshare_csv(path: Path, rows: list[list]) -> Path:
    pd.DataFrame(rows, columns=list(AKSHARE_COLUMNS)).to_csv(path, index=False)
    return path


def content(store) -> list[dict]:
    """What a store holds, minus what differs between runs (_id, timestamps)."""
    docs = [{k: v for k, v in d.items() if k not in ("_id", "created_at", "updated_at")} for d in store.iter_documents()]
    return sorted(docs, key=lambda d: (d["symbol"], d["trade_date"], d["data_source"], d["period"]))


def run(*args, env=None):
    return runner.invoke(app, ["sync", *args], env=env)


# -- layouts ------------------------------------------------------------------------


def test_vectorised_conversion_equals_build_document_row_by_row():
    now = datetime(2025, 10, 24, 8, 0)
    raw = pd.DataFrame({
        "ts_code": ["600000.SH", "000001.SZ", "300750.SZ"],
        "trade_date": ["20251023", "20251022", "2025-10-21"],
        "open": [10.0, 11.5, 200.0], "high": [10.5, 11.9, 210.0], "low": [9.9, 11.1, 199.0],
        "close": [10.3, 11.2, 205.55], "pre_close": [10.0, 11.5, 201.2],
        "change": [0.3, -0.3, 4.35], "pct_chg": [3.0, -2.6, 2.16], "vol": [1234.5, 10.0, 7.0],
        "amount": [5678.9, 1.5, 0.25],
    })
    converted = convert_frame(raw, "tushare", now=now)
    assert converted.problems == {}
    for doc, row in zip(documents(converted.frame, now=now), raw.itertuples(), strict=True):
        expected = build_document(
            symbol=row.ts_code[:6], trade_date=doc["trade_date"], data_source="tushare", open=row.open,
            high=row.high, low=row.low, close=row.close, pre_close=row.pre_close, volume=row.vol * 100,
            amount=row.amount * 1000, now=now)
        assert doc == expected and list(doc) == list(expected)


def test_conversion_keeps_akshare_change_when_there_is_no_pre_close():
    now = datetime(2025, 10, 24, 8, 0)
    raw = pd.DataFrame([akshare_rows("000001", "2025-10-20", "2025-10-20")[0]], columns=list(AKSHARE_COLUMNS))
    doc = documents(convert_frame(raw, "akshare", now=now).frame, now=now)[0]
    row = raw.iloc[0]
    assert doc == build_document(
        symbol="000001", trade_date="2025-10-20", data_source="akshare", open=row["开盘"], high=row["最高"],
        low=row["最低"], close=row["收盘"], volume=row["成交量"], amount=row["成交额"], change=row["涨跌额"],
        pct_chg=row["涨跌幅"], now=now)  # no turnover_rate: the application never writes one for AKShare


def test_dates_come_from_the_date_column_never_the_index():
    raw = pd.DataFrame([akshare_rows("000001", "2025-10-20", "2025-10-22")[i] for i in range(3)],
                       columns=list(AKSHARE_COLUMNS))
    raw["日期"] = [date(2025, 10, 20), date(2025, 10, 21), date(2025, 10, 22)]  # as AKShare returns them
    frame = convert_frame(raw, "akshare").frame
    assert list(frame.index) == [0, 1, 2]
    assert frame["trade_date"].tolist() == ["2025-10-20", "2025-10-21", "2025-10-22"]


@pytest.mark.parametrize("value, reason", [
    ("0", "digits that are not YYYYMMDD"), ("2024-02-30", "not a real calendar date"),
    ("1989-01-03", "before the first trading day"), ("2025/1/2", "not one of"), ("", "empty"),
])
def test_bad_dates_are_problems_with_the_normalisers_reason(value, reason):
    raw = pd.DataFrame([akshare_rows("000001", "2025-10-20", "2025-10-20")[0]], columns=list(AKSHARE_COLUMNS))
    raw["日期"] = [value]
    converted = convert_frame(raw, "akshare")
    assert reason in converted.problems[0][0] and pd.isna(converted.frame["trade_date"].iloc[0])


# -- file sources ---------------------------------------------------------------------


def test_shipped_sample_syncs_with_one_rejected_row(sqlite_store, tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    result = run_sync(sqlite_store, SyncRequest(source=f"file:{SAMPLE}", rejects_path=rejects))
    assert result.status == "success_with_errors" and result.rejected == 1
    line = json.loads(rejects.read_text())
    assert line["record"]["日期"] == "0" and line["reasons"][0].startswith("trade_date_iso: digits")
    assert sqlite_store.count_invalid_trade_date() == 0 and sqlite_store.count() == result.inserted > 0


def test_file_sync_is_idempotent_and_rejects_bad_rows(sqlite_store, tmp_path):
    rows = akshare_rows("000001") + akshare_rows("600000")
    bad = [list(rows[0]) for _ in range(4)]
    bad[0][0], bad[1][0] = "7", "2025-02-30"  # a row number and an impossible date
    bad[2][6] = -100  # negative volume
    bad[3][1] = "60000"  # not 6 digits
    path = write_akshare_csv(tmp_path / "q.csv", rows + bad)
    rejects = tmp_path / "rejects.jsonl"
    first = run_sync(sqlite_store, SyncRequest(source=f"file:{path}", rejects_path=rejects))
    assert (first.inserted, first.rejected, first.status) == (len(rows), 4, "success_with_errors")  # exit 1
    reasons = [json.loads(line)["reasons"] for line in rejects.read_text().splitlines()]
    assert reasons[2] == ["volume_amount_non_negative"] and "symbol_format" in reasons[3]
    assert [json.loads(line)["row"] for line in rejects.read_text().splitlines()] == list(range(len(rows), len(rows) + 4))
    snapshot = content(sqlite_store)
    second = run_sync(sqlite_store, SyncRequest(source=f"file:{path}", rejects_path=None))
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, len(rows))
    assert content(sqlite_store) == snapshot
    assert sqlite_store.count_invalid_trade_date() == 0


def test_tushare_layout_csv_with_filters(sqlite_store, tmp_path):
    rows = [[f"{s}.{'SH' if s[0] == '6' else 'SZ'}", r["date"].replace("-", ""), r["open"], r["high"], r["low"],
             r["close"], r["pre_close"], r["change"], r["pct_chg"], r["vol"], r["amount"]]
            for s in ("000001", "600000") for r in synthetic_quotes(s)]
    path = tmp_path / "ts.csv"
    pd.DataFrame(rows, columns=["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "change",
                                "pct_chg", "vol", "amount"]).to_csv(path, index=False)
    result = run_sync(sqlite_store, SyncRequest(source=f"file:{path}", symbols=("600000",), start="2025-10-01",
                                                end="2025-10-10"))
    docs = list(sqlite_store.iter_documents())
    assert result.status == "success" and {d["symbol"] for d in docs} == {"600000"}
    assert min(d["trade_date"] for d in docs) == "2025-10-09" and max(d["trade_date"] for d in docs) == "2025-10-10"
    assert result.skipped == len(rows) - len(docs)
    row = [r for r in synthetic_quotes("600000") if r["date"] == "2025-10-09"][0]
    assert docs[0]["volume"] == row["vol"] * 100 and docs[0]["data_source"] == "tushare"


def test_mongoexport_extended_json_lines_in_document_layout(sqlite_store, tmp_path):
    lines = []
    for i, day in enumerate(["2025-10-20", "2025-10-21", "2025-10-22"]):
        lines.append(json.dumps({
            "_id": {"$oid": f"6720c0ffee0000000000000{i}"}, "symbol": "600519", "code": "600519",
            "full_symbol": "600519.SH", "market": "CN", "trade_date": day, "period": "daily", "data_source": "akshare",
            "open": {"$numberDouble": "1500.5"}, "high": 1510.0, "low": 1490.0, "close": 1505.0, "pre_close": 1500.0,
            "volume": {"$numberLong": "12345"}, "amount": 1.8e9, "change": 5.0, "pct_chg": 0.3333,
            "turnover_rate": 0.25, "created_at": {"$date": "2025-10-23T01:02:03.000Z"}, "version": 1,
        }))
    lines.insert(1, "{not json")
    lines.append(json.dumps({"symbol": "600519", "trade_date": "3", "data_source": "akshare", "open": 1.0,
                             "high": 1.0, "low": 1.0, "close": 1.0}))
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "r.jsonl"
    result = run_sync(sqlite_store, SyncRequest(source=f"file:{path}", rejects_path=rejects))
    assert result.inserted == 3 and result.rejected == 2 and result.status == "success_with_errors"
    doc = sorted(sqlite_store.iter_documents(), key=lambda d: d["trade_date"])[0]
    assert doc["open"] == 1500.5 and doc["volume"] == 12345.0 and doc["turnover_rate"] == 0.25
    assert doc["change"] == 5.0 and doc["pct_chg"] == round(5.0 / 1500.0 * 100, 4)  # recomputed
    reasons = [json.loads(line)["reasons"][0] for line in rejects.read_text().splitlines()]
    assert any("not valid JSON" in r for r in reasons) and any(r.startswith("trade_date_iso") for r in reasons)


def test_parquet_file(sqlite_store, tmp_path):
    frame = pd.DataFrame(akshare_rows("300750", "2025-10-01", "2025-10-24"), columns=list(AKSHARE_COLUMNS))
    frame["日期"] = pd.to_datetime(frame["日期"]).dt.date  # date32 in Parquet, like AKShare's own objects
    path = tmp_path / "q.parquet"
    frame.to_parquet(path)
    result = run_sync(sqlite_store, SyncRequest(source=f"file:{path}"))
    assert result.status == "success" and result.inserted == len(frame)
    assert sqlite_store.count_invalid_trade_date() == 0


def test_dry_run_writes_nothing(sqlite_store, tmp_path):
    path = write_akshare_csv(tmp_path / "q.csv", akshare_rows("000001"))
    result = run_sync(sqlite_store, SyncRequest(source=f"file:{path}", dry_run=True))
    assert result.dry_run and result.inserted == 0 and result.rows_fetched > 0
    assert sqlite_store.count() == 0 and sqlite_store.aux_find("sync_status") == []
    assert not Path(f"{sqlite_store.path}.lock").exists()


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n", "cannot tell the layout"),
    ("日期,开盘\n2025-10-20,1\n", "lacks the columns 收盘"),
])
def test_unreadable_files_are_usage_errors(sqlite_store, tmp_path, text, message):
    path = tmp_path / "x.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        run_sync(sqlite_store, SyncRequest(source=f"file:{path}"))
    with pytest.raises(SourceError, match="does not exist"):  # a source that cannot be read: exit 3
        run_sync(sqlite_store, SyncRequest(source=f"file:{tmp_path / 'missing.csv'}"))
    (tmp_path / "q.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(UsageError, match="extension"):
        run_sync(sqlite_store, SyncRequest(source=f"file:{tmp_path}/q.xlsx"))


def test_symbols_file(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("000001, 600000.SH  # banks\n\n300750\n000001\n", encoding="utf-8")
    assert read_symbols_file(path) == ("000001", "600000", "300750")
    path.write_text("12345\n", encoding="utf-8")
    with pytest.raises(UsageError, match="line 1"):
        read_symbols_file(path)


# -- CLI ----------------------------------------------------------------------------


def test_cli_file_sync_json_and_exit_codes(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = run("--source", f"file:{SAMPLE}", "--store", url, "--json")
    assert result.exit_code == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rejected"] == 1 and summary["exit_code"] == 1 and summary["status"] == "success_with_errors"
    assert Path(summary["rejects_path"]).exists()
    assert Path(summary["rejects_path"]).parent == tmp_path / "tacn-home" / "rejects"
    again = run("--source", f"file:{SAMPLE}", "--store", url, "--rejects", str(tmp_path / "r.jsonl"))
    assert again.exit_code == 1 and "rejected rows:" in again.stdout and "unchanged" in again.stdout
    status = run("--status", "--store", url, "--json")
    assert status.exit_code == 0
    report = json.loads(status.stdout)
    assert len(report["runs"]) == 2 and report["jobs"][0]["job"] == "tacn_sync_file"
    assert report["runs"][0]["inserted"] == 0 and report["runs"][1]["inserted"] == summary["inserted"]
    table = run("--status", "--store", url)
    assert table.exit_code == 0 and "success_with_errors" in table.stdout


@pytest.mark.parametrize("args, message", [
    (["--source", "akshare"], "which symbols"),
    (["--source", "akshare", "--symbols", "1234"], "6-digit"),
    (["--source", "akshare", "--symbols", "000001", "--start", "2025-13-01"], "--start"),
    (["--source", "akshare", "--symbols", "000001", "--all"], "one of"),
    (["--source", "bogus", "--symbols", "000001"], "--source"),
    (["--symbols", "000001"], "--source is required"),
])
def test_cli_usage_errors_exit_2(args, message, tmp_path):
    result = run(*args, "--store", f"sqlite:///{tmp_path / 'u.db'}")
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name, message", [("nope.csv", "does not exist"), (".", "is a directory")])
def test_cli_unreadable_file_source_exits_3(name, message, tmp_path):
    result = run("--source", f"file:{tmp_path / name}", "--store", f"sqlite:///{tmp_path / 'u.db'}")
    assert result.exit_code == 3 and message in result.stderr and "Traceback" not in result.stderr


def test_cli_tushare_without_token_exits_3(tmp_path):
    result = run("--source", "tushare", "--symbols", "000001", "--store", f"sqlite:///{tmp_path / 't.db'}")
    assert result.exit_code == 3 and "TUSHARE_TOKEN" in result.stderr


def test_cli_tushare_bad_token_exits_3_and_never_shows_it(tmp_path):
    fake = TushareFake({"000001": synthetic_quotes("000001")}, token=TOKEN).start()
    try:
        env = {"TUSHARE_TOKEN": "secret-wrong-token-42", "TACN_TUSHARE_URL": fake.url}
        result = run("--source", "tushare", "--symbols", "000001,600000", "--store", f"sqlite:///{tmp_path / 't.db'}",
                     "--start", "2025-10-01", env=env)
    finally:
        fake.stop()
    assert result.exit_code == 3 and "token不对" in result.stderr
    assert "secret-wrong-token-42" not in result.stderr + result.stdout
    assert len(fake.requests) == 1


# -- the run record in MongoDB ----------------------------------------------------------


def test_run_record_in_the_apps_sync_status_shape_in_mongodb(mongo_store, tmp_path):
    store = mongo_store
    path = write_akshare_csv(tmp_path / "q.csv", akshare_rows("000001", "2025-10-01", "2025-10-24"))
    result = run_sync(store, SyncRequest(source=f"file:{path}"))
    status = store.db["sync_status"].find_one({"job": "tacn_sync_file"})
    assert status["status"] == "success" and status["inserted"] == result.inserted
    assert isinstance(status["started_at"], datetime) and status["finished_at"] >= status["started_at"]
    assert status["total"] == 1 and status["errors"] == 0 and status["last_trade_date"] == "2025-10-24"
    assert store.db["tacn_runs"].count_documents({}) == 1
    assert store.db["tacn_locks"].count_documents({}) == 0  # released


# -- locks ----------------------------------------------------------------------------


def test_sqlite_lock_held_refuses_a_second_run_and_names_the_holder(sqlite_store, tmp_path):
    from tacn.pipelines.lock import store_lock

    path = write_akshare_csv(tmp_path / "q.csv", akshare_rows("000001", "2025-10-20", "2025-10-24"))
    holder = store_lock(sqlite_store, "sync", "tacn sync --source akshare").acquire()
    try:
        with pytest.raises(LockHeld, match=r"pid \d+ on .* since \d{4}-\d\d-\d\d"):
            run_sync(sqlite_store, SyncRequest(source=f"file:{path}"))
        assert sqlite_store.count() == 0 and sqlite_store.aux_find("sync_status") == []
    finally:
        holder.release()
    assert run_sync(sqlite_store, SyncRequest(source=f"file:{path}")).inserted == 5


def test_mongodb_lock_expired_is_taken_over_live_one_is_not(mongo_store, tmp_path):
    from datetime import timedelta

    from tacn.validators.records import utc_now

    store = mongo_store
    path = write_akshare_csv(tmp_path / "q.csv", akshare_rows("000001", "2025-10-20", "2025-10-24"))
    store.db["tacn_locks"].insert_one({"_id": "sync", "name": "sync", "pid": 4242, "host": "cron-box",
                                       "started_at": "2025-10-23 09:00:00", "purpose": "tacn sync",
                                       "expires_at": utc_now() + timedelta(minutes=5)})
    with pytest.raises(LockHeld, match="pid 4242 on cron-box .* since 2025-10-23 09:00:00"):
        run_sync(store, SyncRequest(source=f"file:{path}"))
    store.db["tacn_locks"].update_one({"_id": "sync"}, {"$set": {"expires_at": utc_now() - timedelta(minutes=1)}})
    result = run_sync(store, SyncRequest(source=f"file:{path}"))
    assert result.inserted == 5 and "took over a stale lock left by pid 4242" in result.warnings[0]
    assert store.db["tacn_locks"].count_documents({}) == 0


def test_cli_logs_plain_progress_lines_when_not_on_a_terminal(tmp_path, monkeypatch):
    from tacn.cli import progress

    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # every update, instead of every 5 s
    result = run("--source", f"file:{SAMPLE}", "--store", f"sqlite:///{tmp_path / 'p.db'}", "--json")
    size = progress.human_count(SAMPLE.stat().st_size, "bytes")
    assert f"sync: {size} of {size} (100%), 24 rows written, 1 rejected, 0 failed" in result.stderr
    assert json.loads(result.stdout)["inserted"] == 24  # stdout stays pure JSON
