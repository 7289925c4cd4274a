"""tacn repair: clean → re-sync exactly the lost pairs over their spans → verify."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from bson import ObjectId
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.errors import SourceError
from tacn.pipelines.recovery.backup import encode_document
from tacn.pipelines.recovery.clean import PairLoss
from tacn.pipelines.recovery.repair import lost_span, repair
from tacn.pipelines.stores.base import RecordFilter
from tacn.validators.calendar import sessions_between
from tests.clean_fixtures import content_hash, quote

WRITTEN = datetime(2025, 10, 23, 9, 0, 0)  # 17:00 in Shanghai, after the AKShare job
runner = CliRunner()


def test_row_numbers_stand_for_consecutive_sessions_ending_on_the_day_written():
    pair = PairLoss("000001", "akshare", "daily", records=30, max_row_number=29, updated_last=WRITTEN)
    start, end, basis = lost_span(pair, "2025-09-01")
    sessions = sessions_between("2025-01-01", "2025-10-23")
    assert (start, end) == (sessions[-30], "2025-10-23") and basis == "rows 0..29"
    late = PairLoss("000001", "akshare", "daily", max_row_number=0, updated_last=datetime(2025, 10, 25, 20, 0))
    assert lost_span(late, None)[:2] == ("2025-10-24", "2025-10-24")  # Sunday 04:00 Shanghai: last session Friday


def test_dates_in_the_values_and_the_fallback_span():
    readable = PairLoss("000001", "akshare", "daily", recoverable_first="2025-10-20", recoverable_last="2025-10-22",
                        updated_last=WRITTEN)
    assert lost_span(readable, None) == ("2025-10-20", "2025-10-22", "dates in the values")
    unknown = PairLoss("000001", "akshare", "daily", updated_last=WRITTEN)
    assert lost_span(unknown, "2025-10-10") == ("2025-10-11", "2025-10-23", "after latest valid")
    assert lost_span(unknown, None)[0] is None  # incremental from whatever is stored


def broken_store(store, *, days: int = 20) -> tuple[list[dict], list[str]]:
    """000001/akshare: the last ``days`` sessions were written with trade_date "0".."N" instead of their dates."""
    sessions = sessions_between("2025-08-01", "2025-10-23")
    truth = [quote(day=d, close=10.0 + i / 100) for i, d in enumerate(sessions)]
    store.upsert(truth[:-days], now=WRITTEN)
    bad = [{**doc, "_id": ObjectId(), "trade_date": str(i), "updated_at": WRITTEN, "created_at": WRITTEN}
           for i, doc in enumerate(truth[-days:])]
    store.put_documents(bad)
    store.upsert([quote(symbol="600000", day=d, source="tushare") for d in sessions[-5:]], now=WRITTEN)
    return truth, sessions[-days:]


def test_repair_from_a_file_refills_exactly_what_was_lost(store, tmp_path):
    truth, lost_days = broken_store(store)
    refill = tmp_path / "refill.jsonl"
    refill.write_text("".join(encode_document(d) + "\n" for d in truth))
    other_before = list(store.iter_documents(RecordFilter(symbols=("600000",))))
    result = repair(store, source=f"file:{refill}", apply=True, backup_dir=tmp_path / "bk")
    assert result.clean.deleted == len(lost_days)
    (target,) = result.targets
    assert (target.symbol, target.data_source, target.start, target.end) == ("000001", "akshare", lost_days[0],
                                                                             lost_days[-1])
    (resync,) = result.resyncs
    assert resync.status == "success" and resync.inserted == len(lost_days) and resync.symbols == ["000001"]
    assert result.verify.ok and result.ok
    stored = sorted(d["trade_date"] for d in store.iter_documents(RecordFilter(symbols=("000001",))))
    assert stored == sorted(d["trade_date"] for d in truth)
    assert list(store.iter_documents(RecordFilter(symbols=("600000",)))) == other_before  # untouched


def test_an_applied_repair_reports_each_step_with_its_total(store, tmp_path):
    from contextlib import contextmanager

    truth, lost_days = broken_store(store)
    refill = tmp_path / "refill.jsonl"
    refill.write_text("".join(encode_document(d) + "\n" for d in truth))
    reports: dict[str, list] = {}

    @contextmanager
    def steps(name):
        reports[name] = []
        yield lambda done, total, unit: reports[name].append((done, total, unit))

    repair(store, source=f"file:{refill}", apply=False, backup_dir=tmp_path / "bk", steps=steps)
    assert reports == {}  # a dry run has nothing to show
    result = repair(store, source=f"file:{refill}", apply=True, backup_dir=tmp_path / "bk", steps=steps)
    assert result.ok and list(reports) == ["clean", "re-sync", "verify-fix"]
    assert reports["clean"][-1] == (len(lost_days), len(lost_days), "records")
    assert reports["re-sync"] == [(1, 1, "symbols")]  # a file re-sync counts its group when it ends
    records = store.count(RecordFilter())
    assert reports["verify-fix"][-1] == (records, records, "records")


class FakeSync:
    """Stands in for tacn.pipelines.sync.run_sync: records each request, answers like a sync result."""

    def __init__(self, fail_for: str | None = None):
        self.requests = []
        self.fail_for = fail_for

    def __call__(self, store, request, now=None):
        from tacn.pipelines.sync import SyncResult

        self.requests.append(request)
        if self.fail_for == request.source:
            raise SourceError(f"{request.source} unreachable")
        return SyncResult(run_id="r", job="j", source=request.source, period=request.period, store="s",
                          dry_run=False, started_at=WRITTEN, status="success", inserted=len(request.symbols))


def test_each_pair_is_resynced_from_its_own_data_source_over_its_span(store, tmp_path):
    broken_store(store, days=10)
    store.put_documents([{**quote(symbol="600000", source="tushare"), "_id": ObjectId(), "trade_date": "20251022",
                          "updated_at": WRITTEN}])
    fake = FakeSync()
    result = repair(store, apply=True, backup_dir=tmp_path, sync=fake)
    requested = sorted((r.source, r.symbols, r.start, r.end, r.period) for r in fake.requests)
    sessions = sessions_between("2025-08-01", "2025-10-23")
    assert requested == [("akshare", ("000001",), sessions[-10], "2025-10-23", "daily"),
                         ("tushare", ("600000",), "2025-10-22", "2025-10-22", "daily")]
    assert result.ok and store.count_invalid_trade_date() == 0


def test_source_akshare_limits_the_repair_to_akshare(store, tmp_path):
    broken_store(store, days=3)
    store.put_documents([{**quote(symbol="600000", source="tushare"), "_id": ObjectId(), "trade_date": "1"}])
    fake = FakeSync()
    result = repair(store, source="akshare", apply=True, backup_dir=tmp_path, sync=fake)
    assert [r.symbols for r in fake.requests] == [("000001",)] and result.clean.deleted == 3
    assert store.count_invalid_trade_date(RecordFilter(data_source="tushare")) == 1
    assert result.verify.invalid_trade_date_total == 0  # verify looks at what was repaired: akshare


def test_a_failed_resync_or_an_unsyncable_pair_is_reported_not_ok(store, tmp_path):
    broken_store(store, days=3)
    store.put_documents([{**quote(symbol="600000", source="baostock"), "_id": ObjectId(), "trade_date": "1"}])
    result = repair(store, apply=True, backup_dir=tmp_path, sync=FakeSync(fail_for="akshare"))
    assert not result.ok
    assert [r.status for r in result.resyncs] == ["error"] and "unreachable" in result.resyncs[0].error
    baostock = next(t for t in result.targets if t.data_source == "baostock")
    assert baostock.source is None and "pass --source" in baostock.note
    assert store.count_invalid_trade_date() == 0 and result.clean.backup  # the clean itself stands, backed up


def test_dry_run_changes_nothing_and_plans(store, tmp_path):
    broken_store(store, days=4)
    before = content_hash(store)
    fake = FakeSync()
    result = repair(store, backup_dir=tmp_path / "bk", sync=fake)
    assert result.dry_run and result.ok and fake.requests == [] and result.resyncs == []
    assert [t.records_lost for t in result.targets] == [4]
    assert content_hash(store) == before and not (tmp_path / "bk").exists()


def test_cli_repair_dry_run_then_yes_from_a_file(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    path = tmp_path / "r.db"
    url = f"sqlite:///{path}"
    with SQLiteStore(path) as opened:
        truth, lost_days = broken_store(opened, days=5)
    refill = tmp_path / "refill.jsonl"
    refill.write_text("".join(encode_document(d) + "\n" for d in truth))
    dry = runner.invoke(app, ["repair", "--store", url])
    assert dry.exit_code == 0 and "re-sync plan" in dry.stdout and "dry run" in dry.stdout
    done = runner.invoke(app, ["repair", "--store", url, "--yes", "--source", f"file:{refill}",
                               "--backup-dir", str(tmp_path / "bk"), "--json"])
    assert done.exit_code == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["ok"] and body["clean"]["deleted"] == 5 and body["resyncs"][0]["inserted"] == 5
    assert runner.invoke(app, ["verify-fix", "--store", url]).exit_code == 0


@pytest.mark.parametrize("args", [["repair", "--source", "yahoo"], ["repair", "--data-source", "x"]])
def test_cli_repair_bad_input_is_a_usage_error(args):
    assert runner.invoke(app, args).exit_code == 2
