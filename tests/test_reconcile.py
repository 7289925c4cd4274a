"""tacn reconcile: planted differences of each kind, on every store and on file pairs; reports agree."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.errors import CalendarEnded, UsageError
from tacn.pipelines.reconcile import CHECKS, ReconcileOptions, reconcile_files, reconcile_store
from tests.market_fixtures import bars, sessions

DAYS = sessions(count=60)
SATURDAY = "2025-10-25"


def planted() -> tuple[list[dict], list[dict], dict]:
    """akshare (lots) vs tushare (shares) for three symbols; 000001 carries one planted difference of each kind."""
    a, b = [], []
    for seed, symbol in enumerate(("000001", "600000", "300750")):
        a += bars(symbol, "akshare", DAYS, unit="lots", seed=seed)
        b += bars(symbol, "tushare", DAYS, unit="shares", seed=seed)
    spike = b[30]
    spike["close"] = round(spike["close"] * 1.05, 2)  # one bad close in tushare
    b[50]["volume"] *= 100  # a 100x volume on one day
    b[52]["amount"] *= 1.2
    missing = a.pop(45)  # a session akshare lacks
    a.append({**a[0], "trade_date": SATURDAY})  # an extra non-session day
    where = {"price_return": spike["trade_date"], "volume": b[50]["trade_date"], "amount": b[52]["trade_date"],
             "missing_day": missing["trade_date"], "off_session": SATURDAY}
    return a, b, where


def check(result, name):
    return next(c for c in result.checks if c.name == name)


def assert_planted(result, where):
    assert result.symbols == 3 and not result.passed
    for name, day in where.items():
        outcome = check(result, name)
        assert outcome.failing == 1, (name, outcome)
        assert outcome.samples[0]["key"] == {"symbol": "000001", "trade_date": day}
    assert check(result, "price_level").failing == 0 and check(result, "price_level").checked > 0
    assert result.units["akshare"]["lots"] == 3 and result.units["tushare"]["shares"] == 3
    assert result.units["akshare"]["changed"] == 0 and result.units["tushare"]["changed"] == 1  # the 100x day
    assert result.worst[0]["symbol"] == "000001" and result.worst[0]["days"] == 4
    assert result.disagreeing_symbols == 1


@pytest.mark.parametrize("batch_rows", [100_000, 60])  # one batch, and one symbol per batch
def test_planted_differences_are_found_on_every_store(store, batch_rows):
    a, b, where = planted()
    store.upsert(a + b)
    result = reconcile_store(store, ReconcileOptions(batch_rows=batch_rows))
    assert_planted(result, where)


def test_clean_sources_agree_and_pass(store):
    store.upsert(bars("000001", "akshare", DAYS, unit="lots") + bars("000001", "tushare", DAYS))
    result = reconcile_store(store, ReconcileOptions())
    assert result.passed and result.common_days == len(DAYS)
    assert all(c.failing == 0 for c in result.checks)


def test_old_prices_on_another_qfq_basis_are_compared_by_returns_only(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    # akshare was re-fetched after a 10% dividend 20 sessions ago (older prices adjusted); tushare is
    # adjusted the same way: old absolute prices differ from traded ones but returns agree
    ex = {DAYS[-20]: 0.9}
    with SQLiteStore(tmp_path / "s.db") as store:
        store.upsert(bars("000001", "akshare", DAYS, unit="lots", ex_dates=ex)
                     + bars("000001", "tushare", DAYS, ex_dates={DAYS[-20]: 0.91}))
        result = reconcile_store(store, ReconcileOptions())
    assert check(result, "price_return").failing == 1  # the ex-date itself: 0.9 vs 0.91 differ by 1.1%
    assert check(result, "price_return").samples[0]["key"]["trade_date"] == DAYS[-20]
    assert check(result, "price_level").failing == 0
    assert check(result, "price_level").checked <= 20  # only the traded-basis days


def test_a_spike_is_attributed_to_its_day_not_the_next(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    a = bars("000001", "akshare", DAYS, unit="lots")
    b = bars("000001", "tushare", DAYS)
    b[-5]["close"] = round(b[-5]["close"] * 0.9, 2)
    b[-5]["low"] = min(b[-5]["low"], b[-5]["close"])
    with SQLiteStore(tmp_path / "s.db") as store:
        store.upsert(a + b)
        result = reconcile_store(store, ReconcileOptions())
    days = [s["key"]["trade_date"] for s in check(result, "price_return").samples]
    assert days == [DAYS[-5]]


def test_reports_agree_json_junit_and_failures_file(tmp_path, monkeypatch):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    a, b, where = planted()
    db = tmp_path / "s.db"
    with SQLiteStore(db) as store:
        store.upsert(a + b)
    runner = CliRunner()
    failures, junit = tmp_path / "pairs.jsonl", tmp_path / "junit.xml"
    res = runner.invoke(app, ["reconcile", "--store", f"sqlite:///{db}", "--json", "--junit", str(junit),
                              "--failures-out", str(failures)])
    assert res.exit_code == 1, res.stderr
    report = json.loads(res.stdout)
    assert report["verdict"] == "fail"
    counts = {c["name"]: c["failing"] for c in report["checks"]}
    assert counts == {"price_return": 1, "price_level": 0, "volume": 1, "amount": 1, "missing_day": 1,
                      "off_session": 1}
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {c.name for c in CHECKS}
    assert {n for n, case in cases.items() if case.find("failure") is not None} == {
        n for n, c in counts.items() if c and n != "off_session"}
    lines = [json.loads(line) for line in failures.read_text().splitlines()]
    by_day = {line["trade_date"]: line for line in lines}
    assert len(lines) == report["failures_out"]["records"] == 5
    for name, day in where.items():
        assert name in by_day[day]["checks"]
    pair = by_day[where["volume"]]["documents"]
    assert pair["tushare"]["volume"] == 100 * 100 * pair["akshare"]["volume"]
    assert by_day[where["missing_day"]]["documents"]["akshare"] is None
    assert by_day[SATURDAY]["documents"]["tushare"] is None


def test_file_pairs(tmp_path):
    a, b, where = planted()
    pd.DataFrame(a).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(b).to_parquet(tmp_path / "b.parquet")
    result = reconcile_files(tmp_path / "a.csv", tmp_path / "b.parquet", ReconcileOptions())
    assert_planted(result, where)
    res = CliRunner().invoke(app, ["reconcile", str(tmp_path / "a.csv"), str(tmp_path / "b.parquet"), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["target"]["kind"] == "files"


def test_symbols_since_and_sources_narrow_the_comparison(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    a, b, where = planted()
    with SQLiteStore(tmp_path / "s.db") as store:
        store.upsert(a + b)
        only = reconcile_store(store, ReconcileOptions(symbols=("600000",)))
        assert only.passed and only.symbols == 1
        late = reconcile_store(store, ReconcileOptions(since=DAYS[51]))
        assert check(late, "volume").failing == 0 and check(late, "amount").failing == 1
        store.upsert(bars("000001", "baostock", DAYS, seed=0))
        other = reconcile_store(store, ReconcileOptions(sources=("baostock", "tushare")))
        assert other.symbols == 1 and check(other, "price_return").failing == 1


def test_memory_is_bounded_by_symbol_batches(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    a, b, _ = planted()
    reads = []
    with SQLiteStore(tmp_path / "s.db") as store:
        store.upsert(a + b)
        original = store.iter_frames

        def spy(flt=None, **kwargs):
            for frame in original(flt, **kwargs):
                reads.append(len(frame))
                yield frame

        store.iter_frames = spy
        reports = []
        reconcile_store(store, ReconcileOptions(batch_rows=60), progress=lambda *report: reports.append(report))
    assert max(reads) <= 61 and len(reads) == 6
    assert reports == [(1, 3, "symbols"), (2, 3, "symbols"), (3, 3, "symbols")]  # after each batch, of the total


def test_past_the_calendars_end_is_exit_3_not_a_pass(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "s.db") as store:
        docs = bars("000001", "akshare", DAYS, unit="lots") + bars("000001", "tushare", DAYS)
        docs.append({**docs[-1], "trade_date": "2027-01-04"})
        store.upsert(docs)
        with pytest.raises(CalendarEnded, match="ends on 2026-12-31"):
            reconcile_store(store, ReconcileOptions(now_utc=datetime(2027, 1, 5, 9, 0)))



def test_an_older_calendar_release_ending_before_the_data_is_exit_3(tmp_path, monkeypatch):
    from tacn.pipelines.stores.sqlite import SQLiteStore
    from tacn.validators import calendar

    with SQLiteStore(tmp_path / "s.db") as store:
        store.upsert(bars("000001", "akshare", DAYS, unit="lots") + bars("000001", "tushare", DAYS))
    monkeypatch.setattr(calendar, "last_known_session", lambda: DAYS[-10])  # as if the calendar ended earlier
    res = CliRunner().invoke(app, ["reconcile", "--store", f"sqlite:///{tmp_path / 's.db'}"])
    assert res.exit_code == 3, res.output
    assert f"ends on {DAYS[-10]}" in res.stderr and "pip install -U exchange-calendars" in res.stderr


@pytest.mark.parametrize("args", [["--data-source", "akshare"], ["--data-source", "akshare,akshare"],
                                  ["--data-source", "akshare,nasdaq"], ["--price-tolerance", "-1"],
                                  ["--start", "yesterday"], ["only-one.csv"]])
def test_usage_errors_exit_2(args, tmp_path):
    res = CliRunner().invoke(app, ["reconcile", "--store", f"sqlite:///{tmp_path / 's.db'}", *args])
    assert res.exit_code == 2, res.output


def test_unreadable_file_exits_3(tmp_path):
    res = CliRunner().invoke(app, ["reconcile", str(tmp_path / "nope.csv"), str(tmp_path / "nope2.csv")])
    assert res.exit_code == 3


def test_options_are_checked_by_the_library():
    with pytest.raises(UsageError):
        reconcile_files(Path("a.csv"), Path("b.csv"), ReconcileOptions(sources=("akshare", "akshare")))


def _compare(a_docs, b_docs, **options):
    """The comparison of one batch, in memory (what reconcile_store does per batch of symbols)."""
    from tacn.pipelines.reconcile import _Accumulator

    acc = _Accumulator(ReconcileOptions(**options), None)
    acc.compare(pd.DataFrame(a_docs), pd.DataFrame(b_docs))
    return acc


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), day=st.integers(1, 58), factor=st.sampled_from([0.9, 0.95, 1.05, 1.2]),
       noise=st.floats(0, 0.004))
def test_a_spike_anywhere_is_found_on_its_day_only_and_noise_within_tolerance_is_not(seed, day, factor, noise):
    a = bars("000001", "akshare", DAYS, unit="lots", seed=seed)
    b = bars("000001", "tushare", DAYS, seed=seed)
    for doc in b:  # rounding-sized noise on every close: within the tolerance
        doc["close"] = round(doc["close"] * (1 + noise), 2)
    b[day]["close"] = round(b[day]["close"] * factor, 2)
    acc = _compare(a, b)
    outcome = acc.outcomes["price_return"]
    flagged = [s["key"]["trade_date"] for s in outcome.samples]
    assert flagged == [DAYS[day]], (flagged, DAYS[day])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), drop=st.sets(st.integers(1, 58), max_size=5),
       scale=st.sampled_from([100.0, 0.01, 1.02]))
def test_missing_days_and_volume_scales_are_counted_exactly(seed, drop, scale):
    a = bars("000002", "akshare", DAYS, unit="lots", seed=seed)
    b = bars("000002", "tushare", DAYS, seed=seed)
    b[0]["volume"] *= scale  # the first day: it does not cut the traded-basis run of the rest
    kept = [doc for i, doc in enumerate(a) if i not in drop]
    acc = _compare(kept, b)
    assert acc.outcomes["missing_day"].failing == len(drop)
    assert acc.outcomes["volume"].failing == 1
    assert acc.outcomes["price_level"].failing == 0 and acc.outcomes["amount"].failing == 0


def test_since_accepts_a_duration_back_from_today():
    from tacn.cli.quality import parse_since_date

    assert parse_since_date("7d", now=datetime(2025, 10, 23, 20, 0)) == "2025-10-17"  # 04:00 on the 24th in Shanghai
    assert parse_since_date("20251001") == "2025-10-01"


def test_nothing_to_compare_is_not_a_pass(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "s.db") as store:
        store.upsert(bars("000001", "akshare", DAYS, unit="lots"))
    res = CliRunner().invoke(app, ["reconcile", "--store", f"sqlite:///{tmp_path / 's.db'}"])
    assert res.exit_code == 1 and "nothing compared" in res.stdout
    assert "1 symbol(s) stored in akshare only" in res.stderr
