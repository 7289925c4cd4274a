"""tacn sync against AKShare and Tushare: the real library code parses recorded responses.

AKShare is intercepted at the requests layer (``responses``); Tushare talks to a
real HTTP server on 127.0.0.1. Faults are injected per symbol. No test sleeps:
the sync's sleep and clock are injected and recorded.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
import responses

from tacn.pipelines.errors import AuthRefused, ConfigError, UsageError
from tacn.pipelines.sources.calling import (
    CallFailed,
    MinInterval,
    RetryingCaller,
    RetryPolicy,
    classify_error,
)
from tacn.pipelines.sync import SyncRequest, run_sync
from tests.sync_fixtures import EastmoneyFake, FakeClock, TushareFake, free_closed_port_url, synthetic_quotes

END = "2025-10-24"
TOKEN = "tk-test-0123456789abcdef"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def eastmoney():
    fake = EastmoneyFake({s: synthetic_quotes(s) for s in ("000001", "600000", "300750")})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        yield fake


@pytest.fixture
def tushare():
    fake = TushareFake({s: synthetic_quotes(s) for s in ("000001", "600000")}, token=TOKEN).start()
    yield fake
    fake.stop()


def sync(store, clock, **kwargs):
    kwargs.setdefault("end", END)
    kwargs.setdefault("rejects_path", None)
    request = SyncRequest(**kwargs)
    return run_sync(store, request, sleep=clock.sleep, clock=clock.clock, rand=lambda: 0.5)


def stored(store, **flt):
    from tacn.pipelines.stores.base import RecordFilter

    return sorted(store.iter_documents(RecordFilter(**flt)), key=lambda d: (d["symbol"], d["trade_date"]))


# -- AKShare ------------------------------------------------------------------------


def test_akshare_sync_writes_the_apps_document_shape(sqlite_store, clock, eastmoney):
    result = sync(sqlite_store, clock, source="akshare", symbols=("000001", "600000"), start="2025-09-01")
    assert result.status == "success"
    expected = synthetic_quotes("000001")
    assert result.inserted == len(expected) + len(synthetic_quotes("600000"))
    docs = stored(sqlite_store, symbols=("000001",))
    assert [d["trade_date"] for d in docs] == [r["date"] for r in expected]
    first, row = docs[0], expected[0]
    assert first["full_symbol"] == "000001.SZ" and first["market"] == "CN" and first["period"] == "daily"
    assert first["data_source"] == "akshare" and first["version"] == 1 and first["code"] == "000001"
    assert first["volume"] == row["vol"]  # AKShare's values are stored as AKShare returns them
    assert first["close"] == row["close"] and first["pre_close"] is None
    assert first["change"] == row["change"] and first["pct_chg"] == row["pct_chg"]  # no pre_close: the source's own
    assert "turnover_rate" not in first  # the app renames 换手率 to turnover, which its writer never reads
    assert stored(sqlite_store, symbols=("600000",))[0]["full_symbol"] == "600000.SH"
    # the library asked for the right thing
    sent = {r["secid"]: r for r in eastmoney.requests}
    assert sent["0.000001"]["beg"] == "20250901" and sent["0.000001"]["end"] == "20251024"
    assert sent["1.600000"]["klt"] == "101" and sent["1.600000"]["fqt"] == "1"  # qfq, as the application asks


def test_regression_2025_10_23_rangeindex_frame_gives_iso_dates_from_the_date_column(sqlite_store, clock, eastmoney):
    import akshare as ak

    frame = ak.stock_zh_a_hist(symbol="000001", start_date="20251020", end_date="20251024", timeout=5)
    assert type(frame.index).__name__ == "RangeIndex"  # the shape that broke the application
    result = sync(sqlite_store, clock, source="akshare", symbols=("000001",), start="2025-10-20")
    assert result.inserted == 5
    dates = [d["trade_date"] for d in stored(sqlite_store)]
    assert dates == ["2025-10-20", "2025-10-21", "2025-10-22", "2025-10-23", "2025-10-24"]
    assert not any(re.fullmatch(r"\d{1,7}", d) for d in dates)
    assert sqlite_store.count_invalid_trade_date() == 0


def test_rerun_is_incremental_and_changes_nothing(sqlite_store, clock, eastmoney):
    sync(sqlite_store, clock, source="akshare", symbols=("000001",), end="2025-10-10", default_start="2025-09-01")
    eastmoney.requests.clear()
    second = sync(sqlite_store, clock, source="akshare", symbols=("000001",), default_start="2025-09-01")
    assert eastmoney.requests[0]["beg"] == "20251010"  # the latest stored session again: the basis check
    assert second.inserted == len([r for r in synthetic_quotes("000001") if r["date"] > "2025-10-10"])
    assert second.unchanged == 1 and second.rebased == {}
    eastmoney.requests.clear()
    third = sync(sqlite_store, clock, source="akshare", symbols=("000001",))
    assert third.symbols_up_to_date == 1 and eastmoney.requests == []  # nothing left to ask for
    again = sync(sqlite_store, clock, source="akshare", symbols=("000001",), start="2025-09-01")
    assert (again.inserted, again.updated) == (0, 0) and again.unchanged == len(synthetic_quotes("000001"))


def test_incremental_start_ignores_bad_stored_dates(sqlite_store, clock, eastmoney):
    from tacn.validators.records import build_document

    sqlite_store.upsert([build_document(symbol="000001", trade_date="2025-10-01", data_source="akshare", close=1.0)])
    sqlite_store.upsert([{**build_document(symbol="000001", trade_date="x", data_source="akshare"), "trade_date": "9"}])
    sync(sqlite_store, clock, source="akshare", symbols=("000001",))
    assert eastmoney.requests[0]["beg"] == "20251001"  # "9" sorts above any ISO date as text: not used


@pytest.mark.parametrize("fault, label", [
    (requests.exceptions.ConnectionError("[Errno 111] Connection refused"), "refused"),
    (requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"),
     "RemoteDisconnected"),
    (requests.exceptions.ReadTimeout("read timed out"), "timeout"),
    (500, "http 500"),
])
def test_akshare_transient_faults_are_retried_with_backoff(sqlite_store, clock, eastmoney, fault, label):
    eastmoney.faults["000001"] = [fault, fault]
    result = sync(sqlite_store, clock, source="akshare", symbols=("000001", "600000"), start="2025-10-01",
                  akshare_min_interval=0)
    assert result.status == "success", result.errors
    outcome = {o.symbol: o for o in result.outcomes}["000001"]
    assert outcome.status == "ok" and outcome.attempts == 3
    assert clock.sleeps == [0.75, 1.5]  # 1 s then 2 s, with the jitter fixed at 0.5: half + half * 0.5


def test_akshare_symbol_that_keeps_failing_does_not_stop_the_others(sqlite_store, clock, eastmoney):
    eastmoney.faults["000001"] = [requests.exceptions.ReadTimeout("read timed out")] * 10
    result = sync(sqlite_store, clock, source="akshare", symbols=("000001", "600000", "300750"), start="2025-10-01",
                  max_attempts=3, akshare_min_interval=0)
    assert result.status == "success_with_errors"
    assert result.symbols_failed == 1 and result.symbols_ok == 2
    assert result.errors[0]["symbol"] == "000001" and "after 3 attempts" in result.errors[0]["error"]
    assert len(eastmoney.faults["000001"]) == 7  # exactly 3 attempts
    assert {d["symbol"] for d in stored(sqlite_store)} == {"600000", "300750"}


def test_akshare_malformed_rows_are_rejected_and_never_stored(sqlite_store, clock, eastmoney, tmp_path):
    eastmoney.extra_lines["000001"] = [
        "2025-13-45,11.0,11.1,11.2,10.9,100,1000.0,1.0,0.5,0.05,0.1",  # impossible date: NaT in AKShare
        "2025-10-27,11.0,11.1,11.2,10.9,-100,1000.0,1.0,0.5,0.05,0.1",  # negative volume
        "2025-10-28,11.0,11.1,10.0,10.9,100,1000.0,1.0,0.5,0.05,0.1",  # high below low
    ]
    rejects = tmp_path / "rejects.jsonl"
    result = sync(sqlite_store, clock, source="akshare", symbols=("000001",), start="2025-10-20", end="2025-10-31",
                  rejects_path=rejects)
    assert result.status == "success_with_errors" and result.rejected == 3 and result.inserted == 5
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    reasons = {tuple(line["reasons"]) for line in lines}
    assert ("trade_date_iso: missing (NaT)",) in reasons
    assert ("volume_amount_non_negative",) in reasons
    assert any("high_is_highest" in r for r in reasons)
    assert all(line["symbol"] == "000001" and line["source"] == "akshare" for line in lines)
    assert sqlite_store.count_invalid_trade_date() == 0
    assert [d["trade_date"] for d in stored(sqlite_store)][-1] == "2025-10-24"


def test_akshare_reply_with_missing_columns_fails_that_symbol_without_retry(sqlite_store, clock, eastmoney):
    eastmoney.data["000001"] = []
    eastmoney.extra_lines["000001"] = ["2025-10-27,11.0,11.1"] * 3  # the library cannot name the columns
    result = sync(sqlite_store, clock, source="akshare", symbols=("000001", "600000"), start="2025-10-20",
                  end="2025-10-31", akshare_min_interval=0)
    failed = {o.symbol: o for o in result.outcomes}["000001"]
    assert failed.status == "failed" and failed.attempts == 1 and clock.sleeps == []
    assert "ValueError" in failed.error
    assert result.symbols_ok == 1 and result.status == "success_with_errors"


def test_akshare_row_with_missing_fields_is_rejected(sqlite_store, clock, eastmoney, tmp_path):
    eastmoney.extra_lines["000001"] = ["2025-10-27,11.0,11.1"]  # padded with NaN by pandas: no high, low, volume
    result = sync(sqlite_store, clock, source="akshare", symbols=("000001",), start="2025-10-20", end="2025-10-31",
                  rejects_path=tmp_path / "r.jsonl")
    assert result.rejected == 1 and result.inserted == 5 and result.status == "success_with_errors"
    line = json.loads((tmp_path / "r.jsonl").read_text())
    assert line["reasons"] == ["最高 is missing", "最低 is missing", "成交量 is missing"]


def test_akshare_empty_reply_for_trading_days_is_a_warning(sqlite_store, clock, eastmoney):
    eastmoney.faults["000001"] = ["null"]
    result = sync(sqlite_store, clock, source="akshare", symbols=("000001",), start="2025-10-20")
    assert result.symbols_empty == 1 and result.status == "success"
    assert "a range with 5 trading days" in result.warnings[0]


def test_akshare_min_interval_is_shared_by_workers(sqlite_store, clock, eastmoney):
    result = sync(sqlite_store, clock, source="akshare", symbols=("000001", "600000", "300750"), start="2025-10-20",
                  workers=3, akshare_min_interval=0.5)
    assert result.symbols_ok == 3
    assert sum(clock.sleeps) == pytest.approx(1.0)  # three calls, two gaps of 0.5 s between their starts


# -- Tushare ------------------------------------------------------------------------


def test_tushare_sync_converts_units_and_recomputes_change(sqlite_store, clock, tushare):
    result = sync(sqlite_store, clock, source="tushare", symbols=("000001", "600000"), start="2025-09-01",
                  tushare_token=TOKEN, tushare_url=tushare.url)
    assert result.status == "success"
    docs = stored(sqlite_store, symbols=("600000",))
    rows = synthetic_quotes("600000")
    assert [d["trade_date"] for d in docs] == [r["date"] for r in rows]  # YYYYMMDD normalised, oldest first
    doc, row = docs[3], rows[3]
    assert doc["volume"] == row["vol"] * 100 and doc["amount"] == pytest.approx(row["amount"] * 1000)
    assert doc["pre_close"] == row["pre_close"]
    assert doc["change"] == round(row["close"] - row["pre_close"], 4)
    assert doc["pct_chg"] == round((row["close"] - row["pre_close"]) / row["pre_close"] * 100, 4)
    assert doc["data_source"] == "tushare" and doc["full_symbol"] == "600000.SH"
    assert {r["ts_code"] for r in tushare.requests} == {"000001.SZ", "600000.SH"}
    assert all(r["token"] == TOKEN for r in tushare.requests)
    assert sorted(r["api"] for r in tushare.requests) == ["adj_factor", "adj_factor", "daily", "daily"]


def test_tushare_long_history_is_fetched_in_windows_and_resumes(sqlite_store, clock, tushare):
    first = sync(sqlite_store, clock, source="tushare", symbols=("000001",), tushare_token=TOKEN,
                 tushare_url=tushare.url, end="2025-10-10")
    daily = [r for r in tushare.requests if r["api"] == "daily"]
    assert len(daily) == 4  # 1990-12-19 .. 2025-10-10 in windows of at most 3650 days
    factors = [r for r in tushare.requests if r["api"] == "adj_factor"]
    assert factors[-1]["end_date"] >= daily[-1]["end_date"]  # factors up to today: qfq on the latest factor
    assert first.inserted == len([r for r in synthetic_quotes("000001") if r["date"] <= "2025-10-10"])
    tushare.requests.clear()
    sync(sqlite_store, clock, source="tushare", symbols=("000001",), tushare_token=TOKEN, tushare_url=tushare.url)
    assert [(r["start_date"], r["end_date"]) for r in tushare.requests if r["api"] == "daily"] == [
        ("20251010", "20251024")]  # from the latest stored session: the overlap that checks the basis


def test_tushare_bad_token_stops_the_run_without_retry(sqlite_store, clock, tushare):
    with pytest.raises(AuthRefused, match="token不对"):
        sync(sqlite_store, clock, source="tushare", symbols=("000001", "600000"), start="2025-10-01",
             tushare_token="wrong-token-123456", tushare_url=tushare.url)
    assert len(tushare.requests) == 1 and clock.sleeps == []
    from tacn.pipelines.runs import statuses

    status = statuses(sqlite_store)[0]
    assert status["status"] == "failed" and "token" in status["message"]
    assert "wrong-token-123456" not in json.dumps(status, default=str)


def test_tushare_missing_permission_is_not_retried(sqlite_store, clock, tushare):
    tushare.faults["000001"] = ["抱歉，您没有接口访问权限，权限的具体详情访问：https://tushare.pro/document/1?doc_id=108。"]
    with pytest.raises(AuthRefused, match="没有接口访问权限"):
        sync(sqlite_store, clock, source="tushare", symbols=("000001",), start="2025-10-01",
             tushare_token=TOKEN, tushare_url=tushare.url)
    assert len(tushare.requests) == 1


def test_tushare_rate_limit_message_waits_a_minute_and_retries(sqlite_store, clock, tushare):
    tushare.faults["000001"] = ["抱歉，您每分钟最多访问该接口1次，权限的具体详情访问：https://tushare.pro/document/1?doc_id=108。"]
    result = sync(sqlite_store, clock, source="tushare", symbols=("000001",), start="2025-10-01",
                  tushare_token=TOKEN, tushare_url=tushare.url, tushare_calls_per_minute=6000)
    assert result.status == "success" and result.outcomes[0].attempts == 3  # daily twice, adj_factor once
    assert max(clock.sleeps) >= 60


def test_tushare_calls_per_minute_budget_spaces_calls(sqlite_store, clock, tushare):
    sync(sqlite_store, clock, source="tushare", symbols=("000001", "600000"), start="2025-10-01",
         tushare_token=TOKEN, tushare_url=tushare.url, tushare_calls_per_minute=2, workers=2, adjust="none")
    assert len(tushare.requests) == 2 and sum(clock.sleeps) == pytest.approx(30.0)


def test_tushare_http_500_gives_an_empty_frame_reported_as_a_warning(sqlite_store, clock, tushare):
    tushare.faults["000001"] = [500]
    result = sync(sqlite_store, clock, source="tushare", symbols=("000001", "600000"), start="2025-10-01",
                  tushare_token=TOKEN, tushare_url=tushare.url)
    assert result.symbols_empty == 1 and result.symbols_ok == 1 and result.status == "success"
    assert "000001: no rows from tushare" in result.warnings[0] and "silent server error" in result.warnings[0]
    assert stored(sqlite_store, symbols=("000001",)) == []


def test_tushare_connection_refused_everywhere_fails_the_run(sqlite_store, clock):
    result = sync(sqlite_store, clock, source="tushare", symbols=("000001", "600000"), start="2025-10-01",
                  tushare_token=TOKEN, tushare_url=free_closed_port_url(), max_attempts=2)
    assert result.status == "failed" and result.symbols_failed == 2
    assert "connection refused" in result.errors[0]["error"] and clock.sleeps.count(0.75) == 2  # one retry each


def test_tushare_timeout_is_retried_then_reported(sqlite_store, clock, tushare):
    tushare.faults["000001"] = ["block", "block"]
    result = sync(sqlite_store, clock, source="tushare", symbols=("000001", "600000"), start="2025-10-01",
                  tushare_token=TOKEN, tushare_url=tushare.url, timeout=0.3, max_attempts=2)
    failed = {o.symbol: o for o in result.outcomes}["000001"]
    assert failed.status == "failed" and "timed out" in failed.error and failed.attempts == 2
    assert result.symbols_ok == 1 and result.status == "success_with_errors"


def test_tushare_needs_a_token(sqlite_store, clock):
    with pytest.raises(ConfigError, match="TUSHARE_TOKEN"):
        sync(sqlite_store, clock, source="tushare", symbols=("000001",))


def test_tushare_hfq_multiplies_prices_by_adj_factor(sqlite_store, clock, tushare):
    original = tushare.answer

    def answer(path, body):
        if path.endswith("/adj_factor"):
            items = [["000001.SZ", r["date"].replace("-", ""), 2.0] for r in synthetic_quotes("000001")]
            return 200, {"code": 0, "msg": "", "data": {"fields": ["ts_code", "trade_date", "adj_factor"], "items": items}}
        return original(path, body)

    tushare.answer = answer
    sync(sqlite_store, clock, source="tushare", symbols=("000001",), start="2025-10-01", adjust="hfq",
         tushare_token=TOKEN, tushare_url=tushare.url)
    doc, row = stored(sqlite_store)[0], [r for r in synthetic_quotes("000001") if r["date"] >= "2025-10-01"][0]
    assert doc["close"] == pytest.approx(row["close"] * 2) and doc["volume"] == row["vol"] * 100


# -- --all ---------------------------------------------------------------------------


def test_all_symbols_come_from_stock_basic_info_when_the_store_has_it(clock, tushare, mongo_store):
    store = mongo_store
    store.db["stock_basic_info"].insert_many([{"code": "600000", "source": "tushare"}, {"code": "bad"}])
    result = sync(store, clock, source="tushare", all_symbols=True, start="2025-10-20", tushare_token=TOKEN,
                  tushare_url=tushare.url)
    assert [o.symbol for o in result.outcomes] == ["600000"] and result.inserted == 5
    status = store.db["sync_status"].find_one({"job": "tacn_sync_tushare"})
    assert status["status"] == "success" and status["inserted"] == 5 and status["last_trade_date"] == END
    assert {"started_at", "finished_at", "total", "updated", "errors", "message"} <= set(status)


def test_all_symbols_fall_back_to_the_sources_stock_list(sqlite_store, clock, tushare):
    tushare.stock_basic = ["000001"]
    result = sync(sqlite_store, clock, source="tushare", all_symbols=True, start="2025-10-20",
                  tushare_token=TOKEN, tushare_url=tushare.url)
    assert [o.symbol for o in result.outcomes] == ["000001"]
    assert tushare.requests[0]["api"] == "stock_basic"


def test_all_symbols_with_akshare_uses_its_stock_list(sqlite_store, clock, eastmoney, monkeypatch):
    # stock_info_a_code_name fetches three exchanges' lists (one an Excel file): covered at the adapter boundary.
    from tacn.pipelines.sources import akshare as source

    monkeypatch.setattr(source, "stock_codes", lambda: ["300750"])
    result = sync(sqlite_store, clock, source="akshare", all_symbols=True, start="2025-10-20")
    assert [o.symbol for o in result.outcomes] == ["300750"] and result.inserted == 5


# -- retry policy, limiter, classification ----------------------------------------------


def test_backoff_is_exponential_bounded_and_jittered():
    policy = RetryPolicy(max_attempts=10, base=1.0, cap=8.0)
    # the shared Backoff's formula: the ceiling minus up to half of it (rand 0 → the ceiling)
    assert [policy.delay(n, "transient", lambda: 0.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert [policy.delay(n, "transient", lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(1, "rate_limit", lambda: 0.0) == 60.0


def test_min_interval_spaces_call_starts():
    fake = FakeClock()
    limiter = MinInterval(0.5, clock=fake.clock, sleep=fake.sleep)
    for _ in range(4):
        limiter.wait()
    assert fake.sleeps == [0.5, 0.5, 0.5]


def test_the_caller_reports_each_http_request_of_each_attempt_also_without_an_answer():
    fake = FakeClock()
    calls = []
    caller = RetryingCaller(MinInterval(0, clock=fake.clock, sleep=fake.sleep), RetryPolicy(max_attempts=2), fake.sleep,
                            lambda: 0.0, "akshare", calls.append)
    url = free_closed_port_url() + "/api/qt/stock/kline/get?secid=0.000001"
    with pytest.raises(CallFailed):
        caller(lambda: requests.get(url, timeout=5), "000001")
    assert [(c.method, c.url, c.status, c.what, c.attempt) for c in calls] == [
        ("GET", url, None, "000001", 1), ("GET", url, None, "000001", 2)]
    assert all(c.error == "ConnectionError" and c.elapsed_s >= 0 for c in calls)
    with pytest.raises(requests.exceptions.ConnectionError):  # outside a call: nobody is told
        requests.get(url, timeout=5)
    assert len(calls) == 2


def test_error_classification():
    assert classify_error(requests.exceptions.ConnectTimeout("x"))[0] == "transient"
    assert classify_error(Exception("您的token不对，请确认。"))[0] == "auth"
    assert classify_error(Exception("抱歉，您每分钟最多访问该接口1次"))[0] == "rate_limit"
    assert classify_error(KeyError("klines"))[0] == "permanent"


def test_bad_requests_are_usage_errors(sqlite_store, clock):
    with pytest.raises(UsageError, match="which symbols"):
        sync(sqlite_store, clock, source="akshare")
    with pytest.raises(UsageError, match="--source"):
        sync(sqlite_store, clock, source="yahoo", symbols=("000001",))
    with pytest.raises(UsageError, match="after --end"):
        sync(sqlite_store, clock, source="akshare", symbols=("000001",), start="2025-10-02", end="2025-10-01")
    with pytest.raises(UsageError, match="--adjust"):
        sync(sqlite_store, clock, source="akshare", symbols=("000001",), adjust="xx")


def test_interrupt_records_the_run_as_failed_and_releases_the_lock(sqlite_store, clock, eastmoney):
    from tacn.pipelines.lock import store_lock
    from tacn.pipelines.runs import statuses

    def progress(p):
        if p.done == 1:
            raise KeyboardInterrupt

    request = SyncRequest(source="akshare", symbols=("000001", "600000"), start="2025-10-20", end=END,
                          rejects_path=None)
    with pytest.raises(KeyboardInterrupt):
        run_sync(sqlite_store, request, progress=progress, sleep=clock.sleep, clock=clock.clock)
    status = statuses(sqlite_store)[0]
    assert status["status"] == "failed" and "interrupted" in status["message"]
    assert sqlite_store.count() == 5  # the first symbol, whole
    store_lock(sqlite_store).acquire().release()  # free again


def test_same_sync_twice_changes_nothing_in_either_store(store, clock, tushare):
    kwargs = dict(source="tushare", symbols=("000001", "600000"), start="2025-10-13", tushare_token=TOKEN,
                  tushare_url=tushare.url)
    first = sync(store, clock, **kwargs)
    snapshot = {(d["symbol"], d["trade_date"]): (d["_id"], d["created_at"], d["close"]) for d in store.iter_documents()}
    second = sync(store, clock, **kwargs)
    assert first.inserted == 20 and (second.inserted, second.updated, second.unchanged) == (0, 0, 20)
    assert {(d["symbol"], d["trade_date"]): (d["_id"], d["created_at"], d["close"])
            for d in store.iter_documents()} == snapshot
    assert store.count_invalid_trade_date() == 0 and store.count() == 20
