"""qfq as the application stores it, the recorded price basis, and re-basing after an adjustment event.

The real akshare and tushare code runs against recorded responses: Eastmoney's
kline JSON intercepted at the requests layer, Tushare's API on 127.0.0.1. An
adjustment event (an ex-date) becomes known between two syncs by moving the
sources' as-of date past it. "What the application stores" is computed with the
application's own calls (``ak.stock_zh_a_hist(adjust="qfq")``,
``ts.pro_bar(adj="qfq")``) and its document rules (:func:`build_document`).
"""

from __future__ import annotations

import json

import pytest
import responses
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.errors import BasisMismatch, UsageError
from tacn.pipelines.stores.base import RecordFilter
from tacn.pipelines.sync import SyncRequest, run_sync
from tacn.validators.records import build_document
from tests.sync_fixtures import EastmoneyFake, Event, FakeClock, TushareFake, synthetic_quotes

TOKEN = "tk-test-0123456789abcdef"
START, BEFORE, AFTER = "2025-09-01", "2025-10-10", "2025-10-24"
EX_DATE = "2025-10-15"
VOLATILE = ("_id", "created_at", "updated_at")


@pytest.fixture
def eastmoney():
    # 600000: a 0.5 yuan dividend on EX_DATE; 000001: no event.
    fake = EastmoneyFake({s: synthetic_quotes(s, START, AFTER) for s in ("000001", "600000")},
                         events={"600000": [Event(EX_DATE, ratio=1.05, cash=0.5)]})
    fake.as_of = BEFORE
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        yield fake


@pytest.fixture
def tushare():
    fake = TushareFake({s: synthetic_quotes(s, START, AFTER) for s in ("000001", "600000")}, token=TOKEN,
                       events={"600000": [Event(EX_DATE, ratio=1.1, cash=0.0)]}, base_factor=1.3)
    fake.market.as_of = BEFORE
    yield fake.start()
    fake.stop()


def sync(store, tmp_path, **kwargs):
    kwargs.setdefault("default_start", START)
    kwargs.setdefault("rejects_path", None)
    kwargs.setdefault("backup_dir", tmp_path / "backups")
    clock = FakeClock()
    return run_sync(store, SyncRequest(**kwargs), sleep=clock.sleep, clock=clock.clock, rand=lambda: 0.5)


def content(store, symbol, source) -> dict[str, dict]:
    docs = store.iter_documents(RecordFilter(data_source=source, symbols=(symbol,)))
    return {d["trade_date"]: {k: v for k, v in d.items() if k not in VOLATILE} for d in docs}


def app_akshare_documents(symbol: str, end: str) -> dict[str, dict]:
    """What the application stores: ak.stock_zh_a_hist(adjust="qfq") up to today, row by row."""
    import akshare as ak

    frame = ak.stock_zh_a_hist(symbol=symbol, period="daily", start_date=START.replace("-", ""),
                               end_date=end.replace("-", ""), adjust="qfq", timeout=5)
    docs = {}
    for row in frame.to_dict("records"):
        day = row["日期"].isoformat()
        docs[day] = build_document(
            symbol=symbol, trade_date=day, data_source="akshare", open=row["开盘"], high=row["最高"],
            low=row["最低"], close=row["收盘"], volume=row["成交量"], amount=row["成交额"], change=row["涨跌额"],
            pct_chg=row["涨跌幅"])
    return {day: {k: v for k, v in doc.items() if k not in VOLATILE} for day, doc in docs.items()}


def app_tushare_documents(fake: TushareFake, symbol: str) -> dict[str, dict]:
    """What the application stores: ts.pro_bar(adj="qfq") up to today, then its unit conversion and change/pct_chg."""
    import tushare as ts

    from tacn.pipelines.sources.tushare import TushareClient

    client = TushareClient(TOKEN, http_url=fake.url)
    ts_code = f"{symbol}.{'SH' if symbol.startswith('6') else 'SZ'}"
    frame = ts.pro_bar(ts_code=ts_code, api=client.api, start_date=START.replace("-", ""),
                       end_date=fake.market.as_of.replace("-", ""), adj="qfq")
    docs = {}
    for row in frame.to_dict("records"):
        day = f"{row['trade_date'][:4]}-{row['trade_date'][4:6]}-{row['trade_date'][6:]}"
        docs[day] = build_document(
            symbol=symbol, trade_date=day, data_source="tushare", open=row["open"], high=row["high"], low=row["low"],
            close=row["close"], pre_close=row["pre_close"], volume=row["vol"] * 100, amount=row["amount"] * 1000)
    return {day: {k: v for k, v in doc.items() if k not in VOLATILE} for day, doc in docs.items()}


def assert_same(stored: dict[str, dict], expected: dict[str, dict]) -> None:
    assert list(stored) == sorted(expected)
    for day, doc in expected.items():
        assert stored[day] == pytest.approx(doc) and list(stored[day]) == list(doc), day


# -- AKShare ---------------------------------------------------------------------------


def test_akshare_adjustment_event_between_syncs_rebases_the_whole_span(sqlite_store, eastmoney, tmp_path):
    first = sync(sqlite_store, tmp_path, source="akshare", symbols=("000001", "600000"), end=BEFORE)
    assert first.status == "success" and first.adjust == "qfq" and first.rebased == {}
    assert {r["fqt"] for r in eastmoney.requests} == {"1"}  # qfq, as the application asks
    for symbol in ("000001", "600000"):
        assert_same(content(sqlite_store, symbol, "akshare"), app_akshare_documents(symbol, BEFORE))
    before = content(sqlite_store, "600000", "akshare")

    eastmoney.as_of = AFTER  # a dividend on EX_DATE: every earlier qfq price of 600000 moves
    eastmoney.requests.clear()
    second = sync(sqlite_store, tmp_path, source="akshare", symbols=("000001", "600000"), end=AFTER)
    assert second.status == "success"
    moved = [day for day in before if day < EX_DATE]
    assert second.rebased == {"600000": len(moved)}  # every stored day before the ex-date, nothing else
    by_symbol = {o.symbol: o for o in second.outcomes}
    assert "moved" in by_symbol["600000"].rebase_reason and BEFORE in by_symbol["600000"].rebase_reason
    asked = [(r["secid"], r["beg"]) for r in eastmoney.requests]
    assert asked.count(("1.600000", "20251010")) == 1 and asked.count(("1.600000", "20250901")) == 1  # one extra
    assert asked.count(("0.000001", "20251010")) == 1 and len(asked) == 3  # the overlap session, no re-base
    assert_same(content(sqlite_store, "600000", "akshare"), app_akshare_documents("600000", AFTER))
    assert_same(content(sqlite_store, "000001", "akshare"), app_akshare_documents("000001", AFTER))

    # what was replaced is backed up, and tacn restore puts it back
    from tacn.pipelines.recovery.backup import open_backup
    from tacn.pipelines.recovery.restore import restore_backup

    [manifest] = second.rebase_backups
    backup = open_backup(manifest)
    assert backup.count == len(moved) and backup.manifest["restore_mode"] == "replace"  # what changed, only
    run = sqlite_store.aux_find("tacn_runs")[-1]
    assert run["rebased"] == {"600000": len(moved)} and run["adjust"] == "qfq" and run["rebase_backups"] == [manifest]

    third = sync(sqlite_store, tmp_path, source="akshare", symbols=("000001", "600000"), end=AFTER)
    assert (third.inserted, third.updated, third.rebased) == (0, 0, {}) and third.symbols_up_to_date == 2

    restored = restore_backup(sqlite_store, manifest)
    assert restored.conflicts == [] and restored.replaced == len(moved)
    assert {d: v for d, v in content(sqlite_store, "600000", "akshare").items() if d <= BEFORE} == before


def test_old_qfq_prices_can_be_zero_or_negative_and_are_stored_as_the_application_stores_them(
        sqlite_store, eastmoney, tmp_path):
    eastmoney.events["600000"] = [Event("2025-10-20", ratio=1.0, cash=float(synthetic_quotes("600000")[0]["close"]))]
    eastmoney.as_of = AFTER
    result = sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER)
    stored = content(sqlite_store, "600000", "akshare")
    assert result.rejected == 0 and min(doc["close"] for doc in stored.values()) <= 0
    assert_same(stored, app_akshare_documents("600000", AFTER))


def test_stored_days_the_refetch_no_longer_returns_are_kept_and_reported(sqlite_store, eastmoney, tmp_path):
    sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=BEFORE)
    dropped = eastmoney.data["600000"].pop(2)["date"]  # the source no longer has this day
    eastmoney.as_of = AFTER
    result = sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER)
    assert result.rebase_kept == {"600000": [dropped]} and "600000" in result.rebased
    assert dropped in content(sqlite_store, "600000", "akshare")  # never deleted
    assert any(dropped in w and "kept" in w for w in result.warnings)


def test_explicit_start_checks_the_stored_session_before_it(sqlite_store, eastmoney, tmp_path):
    sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=BEFORE)
    eastmoney.as_of = AFTER
    eastmoney.requests.clear()
    result = sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), start="2025-10-20", end=AFTER)
    assert eastmoney.requests[0]["beg"] == "20251010"  # one stored session earlier than --start
    assert "600000" in result.rebased
    assert_same(content(sqlite_store, "600000", "akshare"), app_akshare_documents("600000", AFTER))


def test_dry_run_reports_a_rebase_and_writes_nothing(sqlite_store, eastmoney, tmp_path):
    sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=BEFORE)
    before = content(sqlite_store, "600000", "akshare")
    eastmoney.as_of = AFTER
    result = sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER, dry_run=True)
    assert result.rebased["600000"] == len(before) and result.rebase_backups == []
    assert content(sqlite_store, "600000", "akshare") == before


# -- Tushare ---------------------------------------------------------------------------


def test_tushare_qfq_equals_pro_bar_then_rebases_after_the_event(sqlite_store, tushare, tmp_path):
    kwargs = dict(source="tushare", symbols=("000001", "600000"), tushare_token=TOKEN, tushare_url=tushare.url)
    first = sync(sqlite_store, tmp_path, end=BEFORE, **kwargs)
    assert first.status == "success"
    for symbol in ("000001", "600000"):
        assert_same(content(sqlite_store, symbol, "tushare"), app_tushare_documents(tushare, symbol))
    sample = next(iter(content(sqlite_store, "600000", "tushare").values()))
    assert sample["close"] == round(sample["close"], 2)  # pro_bar's 2-decimal rounding

    tushare.market.as_of = AFTER
    second = sync(sqlite_store, tmp_path, end=AFTER, **kwargs)
    assert list(second.rebased) == ["600000"] and second.rebased["600000"] > 0
    for symbol in ("000001", "600000"):
        assert_same(content(sqlite_store, symbol, "tushare"), app_tushare_documents(tushare, symbol))
    third = sync(sqlite_store, tmp_path, end=AFTER, **kwargs)
    assert (third.inserted, third.updated, third.rebased) == (0, 0, {})


def test_tushare_qfq_rounding_matches_pro_bar_at_half_cents():
    import pandas as pd

    from tacn.pipelines.sources.tushare import apply_adjustment

    quotes = pd.DataFrame({"trade_date": ["20251020", "20251021"], "open": [2.675, 1.005], "high": [2.675, 1.005],
                           "low": [2.675, 1.005], "close": [2.675, 1.005], "pre_close": [2.675, 1.005]})
    factors = pd.DataFrame({"trade_date": ["20251021", "20251020"], "adj_factor": [1.0, 1.0]})
    adjusted = apply_adjustment(quotes, factors, "qfq")
    from tushare.pro.data_pro import FORMAT  # pro_bar's own rounding of adjusted prices

    assert adjusted["close"].tolist() == [float(FORMAT(2.675)), float(FORMAT(1.005))] == [2.67, 1.0]


# -- the recorded basis -------------------------------------------------------------------


def test_a_different_adjust_than_recorded_is_refused_then_rebase_converts_with_a_backup(
        sqlite_store, eastmoney, tmp_path):
    none = sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=BEFORE, adjust="none")
    assert none.adjust == "none" and {r["fqt"] for r in eastmoney.requests} == {"0"}
    eastmoney.as_of = AFTER
    unadjusted = content(sqlite_store, "600000", "akshare")
    eastmoney.requests.clear()
    with pytest.raises(BasisMismatch) as refused:
        sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER)
    assert "tacn sync --source akshare --symbols 600000 --rebase" in str(refused.value)
    assert eastmoney.requests == [] and content(sqlite_store, "600000", "akshare") == unadjusted  # nothing fetched
    status = sqlite_store.aux_find("sync_status")[0]
    assert status["status"] == "failed" and "--rebase" in status["message"]

    converted = sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER, rebase=True)
    assert converted.status == "success" and converted.rebased["600000"] > 0
    assert "converted to qfq" in converted.outcomes[0].rebase_reason
    assert_same(content(sqlite_store, "600000", "akshare"), app_akshare_documents("600000", AFTER))
    from tacn.pipelines.recovery.backup import open_backup

    backup = open_backup(converted.rebase_backups[0])
    assert {doc["trade_date"]: doc["close"] for doc in backup.documents()} == {
        day: doc["close"] for day, doc in unadjusted.items()}
    again = sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER)  # qfq is recorded now
    assert again.status == "success" and again.rebased == {}
    with pytest.raises(BasisMismatch, match="--adjust none --rebase"):
        sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER, adjust="none")


def test_documents_the_application_wrote_count_as_qfq(sqlite_store, eastmoney, tmp_path):
    eastmoney.as_of = AFTER
    app_docs = app_akshare_documents("600000", BEFORE)
    sqlite_store.upsert([build_document(**{k: v for k, v in doc.items()
                                          if k in ("symbol", "trade_date", "data_source", "open", "high", "low",
                                                   "close", "volume", "amount", "change", "pct_chg")})
                         for doc in app_docs.values()])
    eastmoney.as_of = BEFORE
    ok = sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=BEFORE)
    assert ok.status == "success" and ok.rebased == {} and (ok.inserted, ok.updated) == (0, 0)
    sqlite_store.aux_delete("tacn_price_basis", "akshare/daily/600000")  # the app's documents again: no record
    with pytest.raises(BasisMismatch, match="--symbols 600000 --adjust none --rebase"):
        sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER, adjust="none")


def test_a_store_synced_by_an_older_tacn_is_detected_once_with_the_command(sqlite_store, eastmoney, tmp_path):
    from tacn.pipelines import runs

    sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=BEFORE, adjust="none",
         record_run=False)
    sqlite_store.aux_delete("tacn_price_basis", "akshare/daily/600000")
    for key in [d["key"] for d in sqlite_store.aux_find("tacn_price_basis")]:
        sqlite_store.aux_delete("tacn_price_basis", key)
    runs.write_run(sqlite_store, "tacn_sync_akshare-20251010T090000.000000",  # as tacn before qfq recorded it
                   {"job": "tacn_sync_akshare", "status": "success", "total": 1, "inserted": 20})
    with pytest.raises(BasisMismatch) as first:
        sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER)
    message = str(first.value)
    assert "earlier tacn" in message and "tacn sync --source akshare --symbols 600000 --rebase" in message
    records = {d.get("key"): d for d in sqlite_store.aux_find("tacn_price_basis")}
    assert records["akshare/daily/600000"]["basis"] == "none"  # recorded once
    assert records["legacy-check/akshare/daily"]["legacy_runs"] == 1
    with pytest.raises(BasisMismatch, match="earlier tacn"):  # the next cron run says the same, from the record
        sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER)
    eastmoney.as_of = AFTER  # after the dividend, qfq and unadjusted prices differ before the ex-date
    fixed = sync(sqlite_store, tmp_path, source="akshare", symbols=("600000",), end=AFTER, rebase=True)
    assert fixed.status == "success" and "600000" in fixed.rebased


def test_cli_basis_mismatch_exits_3_naming_rebase_and_none_warns(tmp_path, eastmoney):
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"TACN_HOME": str(tmp_path / "home")}
    common = ["sync", "--source", "akshare", "--symbols", "600000", "--store", url, "--akshare-interval", "0"]
    none = runner.invoke(app, [*common, "--adjust", "none", "--end", BEFORE, "--default-start", START], env=env)
    assert none.exit_code == 0, none.stderr
    assert "the application stores qfq" in none.stderr
    eastmoney.as_of = AFTER
    refused = runner.invoke(app, [*common, "--end", AFTER, "--json"], env=env)
    assert refused.exit_code == 3
    assert "tacn sync --source akshare --symbols 600000 --rebase" in refused.stderr
    converted = runner.invoke(app, [*common, "--end", AFTER, "--rebase", "--json"], env=env)
    assert converted.exit_code == 0, converted.stderr
    summary = json.loads(converted.stdout)
    assert summary["rebased"]["600000"] > 0 and summary["adjust"] == "qfq"
    assert summary["rebase_backups"][0].startswith(str(tmp_path / "home" / "backups"))


def test_a_file_source_has_no_basis_to_fetch(sqlite_store, tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("日期,股票代码,开盘,收盘,最高,最低,成交量\n2025-10-20,000001,1,1,1,1,1\n", encoding="utf-8")
    for extra in ({"adjust": "qfq"}, {"rebase": True}):
        with pytest.raises(UsageError, match="no price basis"):
            sync(sqlite_store, tmp_path, source=f"file:{path}", **extra)
    result = sync(sqlite_store, tmp_path, source=f"file:{path}")
    assert result.inserted == 1 and "no price basis" in result.basis_note
    assert sqlite_store.aux_find("tacn_price_basis") == []  # nothing implicit


def test_rebase_and_its_undo_on_every_store(store, tushare, tmp_path):
    """The same event on SQLite and MongoDB: re-based once, recorded, and tacn restore puts the old values back."""
    from tacn.pipelines.recovery.restore import restore_backup

    kwargs = dict(source="tushare", symbols=("600000",), tushare_token=TOKEN, tushare_url=tushare.url)
    sync(store, tmp_path, end=BEFORE, **kwargs)
    before = content(store, "600000", "tushare")
    tushare.market.as_of = AFTER
    second = sync(store, tmp_path, end=AFTER, **kwargs)
    assert second.rebased == {"600000": len(before)}
    assert_same(content(store, "600000", "tushare"), app_tushare_documents(tushare, "600000"))
    assert {d.get("key"): d.get("basis") for d in store.aux_find("tacn_price_basis")}["tushare/daily/600000"] == "qfq"
    restored = restore_backup(store, second.rebase_backups[0])
    assert restored.conflicts == [] and restored.replaced == len(before)
    assert {d: v for d, v in content(store, "600000", "tushare").items() if d <= BEFORE} == before


# -- generated: tacn's Tushare qfq equals pro_bar's, for any prices and factors ----------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


class _FrameApi:
    """What ts.pro_bar calls on its ``api``: daily and adj_factor, answered from frames (newest first)."""

    def __init__(self, daily, factors):
        self._daily, self._factors = daily, factors

    def daily(self, **_):
        return self._daily.copy()

    def adj_factor(self, **_):
        return self._factors.copy()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.floats(0.5, 500, allow_nan=False), st.floats(0.5, 500, allow_nan=False),
                          st.floats(0.8, 40, allow_nan=False)), min_size=1, max_size=12))
def test_tushare_qfq_documents_equal_pro_bar_then_the_applications_conversion(rows):
    import pandas as pd
    import tushare as ts

    from tacn.pipelines.sources.tushare import apply_adjustment
    from tacn.validators.calendar import sessions_between
    from tacn.validators.source_layouts import convert_frame, documents

    days = [d.replace("-", "") for d in sessions_between("2025-01-02", "2025-12-31")[: len(rows)]]
    daily = pd.DataFrame({
        "ts_code": "600000.SH", "trade_date": days, "open": [r[0] for r in rows], "high": [max(r[0], r[1]) for r in rows],
        "low": [min(r[0], r[1]) for r in rows], "close": [r[1] for r in rows], "pre_close": [r[0] for r in rows],
        "change": 0.0, "pct_chg": 0.0, "vol": 100.0, "amount": 1000.0}).iloc[::-1].reset_index(drop=True)
    factors = pd.DataFrame({"ts_code": "600000.SH", "trade_date": days, "adj_factor": [r[2] for r in rows]}
                           ).iloc[::-1].reset_index(drop=True)
    expected = ts.pro_bar(ts_code="600000.SH", api=_FrameApi(daily, factors), start_date=days[0],
                          end_date=days[-1], adj="qfq")
    ours = documents(convert_frame(apply_adjustment(daily, factors, "qfq"), "tushare").frame)
    by_day = {doc["trade_date"].replace("-", ""): doc for doc in ours}
    for row in expected.to_dict("records"):
        app = build_document(symbol="600000", trade_date="2025-01-02", data_source="tushare", open=row["open"],
                             high=row["high"], low=row["low"], close=row["close"], pre_close=row["pre_close"],
                             volume=row["vol"] * 100, amount=row["amount"] * 1000)
        doc = by_day[row["trade_date"]]
        for name in ("open", "high", "low", "close", "pre_close", "change", "pct_chg", "volume", "amount"):
            assert doc[name] == app[name], (name, row["trade_date"])
