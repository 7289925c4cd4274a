"""Freshness against the XSHG calendar with a fixed clock: cut-off, holidays, weekends, suspensions, calendar end."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, time

import pytest
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines import freshness, runs
from tacn.pipelines.errors import CalendarEnded, UsageError
from tacn.pipelines.freshness import judge, latest_completed_session, parse_cutoff, store_freshness
from tests.market_fixtures import bars, sessions

CUTOFF = time(17, 30)


@pytest.mark.parametrize(("now_utc", "latest"), [
    (datetime(2025, 10, 23, 9, 29), "2025-10-22"),  # Thursday 17:29 Shanghai: today's session not completed
    (datetime(2025, 10, 23, 9, 30), "2025-10-23"),  # 17:30: completed
    (datetime(2025, 10, 22, 20, 0), "2025-10-22"),  # Thursday 04:00 Shanghai (Wednesday in UTC): before the cut-off
    (datetime(2025, 10, 25, 4, 0), "2025-10-24"),  # Saturday
    (datetime(2025, 10, 26, 15, 0), "2025-10-24"),  # Sunday 23:00
    (datetime(2025, 10, 3, 12, 0), "2025-09-30"),  # National Day holidays
    (datetime(2025, 10, 9, 10, 0), "2025-10-09"),  # first session after them, 18:00
])
def test_latest_completed_session(now_utc, latest):
    assert latest_completed_session(now_utc, CUTOFF) == latest


def test_the_cut_off_is_configurable():
    assert latest_completed_session(datetime(2025, 10, 23, 7, 30), parse_cutoff("15:30")) == "2025-10-23"
    for bad in ("25:00", "5pm", "17:3"):
        with pytest.raises(UsageError):
            parse_cutoff(bad)


def test_past_the_calendars_end_is_calendar_ended():
    with pytest.raises(CalendarEnded, match=r"2027-01-05.*ends on 2026-12-31.*pip install -U exchange-calendars"):
        latest_completed_session(datetime(2027, 1, 5, 10, 0), CUTOFF)


NOW = datetime(2025, 10, 23, 10, 0)  # 18:00 Shanghai: 2025-10-23 completed


def test_lag_counts_sessions_not_days():
    result = judge({("000001", "akshare"): "2025-10-23", ("000002", "akshare"): "2025-10-17"}, now_utc=NOW)
    assert not result.passed and result.stale_count == 1
    assert result.stale == [{"symbol": "000002", "data_source": "akshare", "last_trade_date": "2025-10-17",
                             "lag": 4, "missing_from": "2025-10-20"}]
    assert judge({("000002", "akshare"): "2025-10-17"}, now_utc=NOW, max_lag=4).passed


def test_a_symbol_both_sources_lack_is_not_trading():
    last = {("000003", "akshare"): "2025-10-20", ("000003", "tushare"): "2025-10-20",
            ("000004", "akshare"): "2025-10-20", ("000004", "tushare"): "2025-10-23"}
    result = judge(last, now_utc=NOW)
    assert result.not_trading == 2 and result.stale_count == 1
    assert result.stale[0]["symbol"] == "000004" and result.per_source["akshare"] == {
        "fresh": 0, "stale": 1, "not trading": 1}


def test_sync_run_records_of_an_empty_fetch_excuse_a_suspended_symbol(store):
    store.upsert(bars("000005", "akshare", sessions("2025-10-20", 10), unit="lots")
                 + bars("000006", "akshare", sessions("2025-10-20", 10), unit="lots"))
    runs.write_run(store, "tacn_sync_akshare-1", {"job": "tacn_sync_akshare", "warnings": [
        "000005: no rows from akshare for 2025-10-21..2025-10-23, a range with 3 trading days "
        "(suspended, delisted, or a silent server error)"]})
    result = store_freshness(store, now_utc=NOW)
    assert result.not_trading == 1 and [s["symbol"] for s in result.stale] == ["000006"]


def _store_with_lag(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    db = tmp_path / "s.db"
    with SQLiteStore(db) as store:
        store.upsert(bars("000001", "akshare", sessions("2025-10-23", 20), unit="lots")
                     + bars("000002", "akshare", sessions("2025-10-21", 20), unit="lots", seed=2))
    return f"sqlite:///{db}"


def test_validate_freshness_exits_1_when_stale(tmp_path, monkeypatch):
    url = _store_with_lag(tmp_path)
    monkeypatch.setattr(freshness, "utc_now", lambda: NOW)
    res = CliRunner().invoke(app, ["validate", "--store", url, "--freshness", "--json"])
    assert res.exit_code == 1, res.output
    fresh = json.loads(res.stdout)["freshness"]
    assert fresh["latest_session"] == "2025-10-23" and fresh["stale"][0]["symbol"] == "000002"
    junit = tmp_path / "junit.xml"
    res = CliRunner().invoke(app, ["validate", "--store", url, "--freshness", "--junit", str(junit)])
    assert res.exit_code == 1
    case = next(c for c in ET.parse(junit).getroot().iter("testcase") if c.get("name") == "freshness")
    assert "000002" in case.find("failure").text
    res = CliRunner().invoke(app, ["validate", "--store", url, "--freshness", "--max-lag", "2"])
    assert res.exit_code == 0 and "FRESH" in res.stdout
    monkeypatch.setattr(freshness, "utc_now", lambda: datetime(2025, 10, 22, 9, 0))  # 17:00 on the 22nd
    res = CliRunner().invoke(app, ["validate", "--store", url, "--freshness", "--cutoff", "18:00"])
    assert res.exit_code == 0, res.output  # the 22nd is not completed before 18:00: the 21st is the latest
    res = CliRunner().invoke(app, ["validate", "--store", url, "--freshness", "--cutoff", "16:00"])
    assert res.exit_code == 1, res.output


def test_stats_has_a_freshness_section(tmp_path, monkeypatch):
    url = _store_with_lag(tmp_path)
    monkeypatch.setattr(freshness, "utc_now", lambda: NOW)
    res = CliRunner().invoke(app, ["stats", "--store", url, "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["freshness"]["stale_count"] == 1
    res = CliRunner().invoke(app, ["stats", "--store", url])
    assert "sessions behind" in res.stdout and "STALE" in res.stdout


def test_past_the_calendars_end_validate_exits_3_and_stats_says_so(tmp_path, monkeypatch):
    url = _store_with_lag(tmp_path)
    monkeypatch.setattr(freshness, "utc_now", lambda: datetime(2027, 1, 5, 10, 0))
    res = CliRunner().invoke(app, ["validate", "--store", url, "--freshness"])
    assert res.exit_code == 3 and "calendar" in res.stderr and "exchange-calendars" in res.stderr
    res = CliRunner().invoke(app, ["stats", "--store", url])
    assert res.exit_code == 0 and "freshness: unknown" in res.stdout


@pytest.mark.parametrize("args", [["--max-lag", "-1"], ["--cutoff", "7pm"]])
def test_bad_freshness_options_exit_2(tmp_path, args):
    res = CliRunner().invoke(app, ["validate", "--store", f"sqlite:///{tmp_path / 's.db'}", "--freshness", *args])
    assert res.exit_code == 2


def test_completeness_past_the_calendars_end_exits_3(tmp_path, monkeypatch):
    from tacn.validators import calendar

    url = _store_with_lag(tmp_path)
    days = sessions("2025-10-23", 20)
    monkeypatch.setattr(calendar, "session_set", lambda: frozenset(days[:-5]))  # as if the calendar ended earlier
    monkeypatch.setattr(calendar, "last_known_session", lambda: days[-6])
    res = CliRunner().invoke(app, ["validate", "--store", url, "--completeness", "--rules", "completeness"])
    assert res.exit_code == 3 and "after the XSHG calendar's last session" in res.stderr, res.output


def test_a_real_sync_that_got_no_rows_excuses_the_symbol(tmp_path):
    """End to end with sync's own run record: AKShare answers nothing for 000001 for the last week."""
    import responses

    from tacn.pipelines.stores.sqlite import SQLiteStore
    from tacn.pipelines.sync import SyncRequest, run_sync
    from tests.sync_fixtures import EastmoneyFake, FakeClock, synthetic_quotes

    clock = FakeClock()
    fake = EastmoneyFake({s: synthetic_quotes(s) for s in ("000001", "600000")})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked, \
            SQLiteStore(tmp_path / "q.db") as store:
        fake.install(mocked)

        def sync(**kwargs):
            request = SyncRequest(source="akshare", symbols=("000001", "600000"), rejects_path=None, **kwargs)
            return run_sync(store, request, sleep=clock.sleep, clock=clock.clock, rand=lambda: 0.5)

        sync(start="2025-09-01", end="2025-10-17")
        fake.faults["000001"] = ["null"]  # suspended: the source returns no rows
        result = sync(start="2025-10-20", end="2025-10-24")
        assert result.symbols_empty == 1
        friday_evening = datetime(2025, 10, 24, 10, 0)
        fresh = store_freshness(store, now_utc=friday_evening)
        assert fresh.latest_session == "2025-10-24" and fresh.not_trading == 1 and fresh.passed
        # without that run record the same lag is stale
        assert judge({("000001", "akshare"): "2025-10-17"}, now_utc=friday_evening).stale_count == 1
