"""The application's document, field for field, per source and layout; codes with unknown exchange
suffixes refused; an interrupted sync recorded as failed, never left running.

The expected documents are written out by hand from the application's rules
(../shared/reference/tradingagents-cn.md): field names and order, which optional
fields appear, how zeros are written (``volume or None``; ``amount or None`` for
Tushare), units (Tushare lots x100, thousand yuan x1000), change/pct_chg.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.errors import UsageError
from tacn.pipelines.stores.sqlite import SQLiteStore
from tacn.pipelines.sync import SyncRequest, read_symbols_file, run_sync
from tacn.validators.records import parse_code
from tacn.validators.source_layouts import convert_frame, documents

NOW = datetime(2025, 10, 24, 8, 0)
BASE = ("symbol", "code", "full_symbol", "market", "trade_date", "period", "data_source", "open", "high", "low",
        "close", "pre_close", "volume", "amount", "change", "pct_chg")


def akshare_row(**changes) -> dict:
    row = {"日期": "2025-10-20", "股票代码": "000001", "开盘": 10.0, "收盘": 10.5, "最高": 10.8, "最低": 9.9,
           "成交量": 1234, "成交额": 1295700.0, "振幅": 9.0, "涨跌幅": 5.0, "涨跌额": 0.5, "换手率": 1.2}
    return {**row, **changes}


def tushare_row(**changes) -> dict:
    row = {"ts_code": "600000.SH", "trade_date": "20251020", "open": 10.0, "high": 10.8, "low": 9.9, "close": 10.37,
           "pre_close": 10.0, "change": 0.37, "pct_chg": 3.7, "vol": 12.0, "amount": 3.456}
    return {**row, **changes}


def expected(symbol="000001", full_symbol="000001.SZ", source="akshare", **values) -> dict:
    doc = {"symbol": symbol, "code": symbol, "full_symbol": full_symbol, "market": "CN", "trade_date": "2025-10-20",
           "period": "daily", "data_source": source}
    doc.update(values)
    doc.update({"created_at": NOW, "updated_at": NOW, "version": 1})
    return doc


AKSHARE_PRICES = {"open": 10.0, "high": 10.8, "low": 9.9, "close": 10.5, "pre_close": None}
TUSHARE_PRICES = {"open": 10.0, "high": 10.8, "low": 9.9, "close": 10.37, "pre_close": 10.0}

CASES = [
    # AKShare: as returned (volume in lots), no pre_close so the source's change/pct_chg, no turnover_rate
    ("akshare", akshare_row(), expected(**AKSHARE_PRICES, volume=1234.0, amount=1295700.0, change=0.5, pct_chg=5.0)),
    # a 0 volume is written as null (the app's `volume or None`); AKShare's 0 amount stays 0.0
    ("akshare", akshare_row(成交量=0, 成交额=0.0),
     expected(**AKSHARE_PRICES, volume=None, amount=0.0, change=0.5, pct_chg=5.0)),
    # Tushare: lots x100, thousand yuan x1000, change/pct_chg recomputed to 4 decimals from close and pre_close
    ("tushare", tushare_row(), expected("600000", "600000.SH", "tushare", **TUSHARE_PRICES, volume=1200.0,
                                        amount=3456.0, change=0.37, pct_chg=3.7)),
    # Tushare zeros: volume and amount both null (`amount or None` for Tushare)
    ("tushare", tushare_row(vol=0.0, amount=0.0), expected("600000", "600000.SH", "tushare", **TUSHARE_PRICES,
                                                           volume=None, amount=None, change=0.37, pct_chg=3.7)),
    # A Beijing code: asked as .BJ, written with the application's .SZ
    ("tushare", tushare_row(ts_code="830799.BJ"), expected("830799", "830799.SZ", "tushare", **TUSHARE_PRICES,
                                                           volume=1200.0, amount=3456.0, change=0.37, pct_chg=3.7)),
    # The document layout (an export): optional fields as the file has them; zeros by data_source
    ("document", {"symbol": "000001", "trade_date": "2025-10-20", "data_source": "tushare", "open": 10.0,
                  "high": 10.8, "low": 9.9, "close": 10.37, "pre_close": 10.0, "volume": 0.0, "amount": 0.0, "pe": 8.5},
     {**expected(source="tushare", **TUSHARE_PRICES, volume=None, amount=None, change=0.37, pct_chg=3.7),
      "pe": 8.5}),
    ("document", {"symbol": "000001", "trade_date": "2025-10-20", "data_source": "akshare", "open": 10.0,
                  "high": 10.8, "low": 9.9, "close": 10.5, "volume": 0.0, "amount": 0.0, "change": 0.5, "pct_chg": 5.0},
     expected(**AKSHARE_PRICES, volume=None, amount=0.0, change=0.5, pct_chg=5.0)),
]


@pytest.mark.parametrize(("layout", "row", "want"), CASES)
def test_documents_are_the_applications_field_for_field(layout, row, want):
    converted = convert_frame(pd.DataFrame([row]), layout, now=NOW)
    assert converted.problems == {}
    [doc] = documents(converted.frame, now=NOW)
    want = {k: v for k, v in want.items() if k != "pe"} | ({"pe": want["pe"]} if "pe" in want else {})
    order = [*BASE, *[k for k in want if k not in BASE and k not in ("created_at", "updated_at", "version")],
             "created_at", "updated_at", "version"]
    assert list(doc) == order  # names, presence and order
    assert doc == want
    for name in ("open", "high", "low", "close", "volume", "amount", "change", "pct_chg"):
        assert doc[name] is None or type(doc[name]) is float, name  # plain floats, never numpy or int
    assert "turnover_rate" not in doc or layout == "document"


# -- unknown exchange suffixes ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "code"), [("000001", "000001"), ("000001.SZ", "000001"), ("600000.sh", "600000"),
                                            ("830799.BJ", "830799"), (" 920001.BJ ", "920001")])
def test_codes_with_their_own_exchange_suffix_are_accepted(text, code):
    assert parse_code(text) == code


@pytest.mark.parametrize(("text", "words"), [("000001.XX", "unknown exchange suffix '.XX'"),
                                             ("000001.", "unknown exchange suffix"),
                                             ("000001.SH", "is a .SZ code"), ("12345", "not a 6-digit code"),
                                             ("００００01", "not a 6-digit code")])
def test_unknown_or_wrong_suffixes_are_refused(text, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        parse_code(text)


def test_cli_symbol_with_an_unknown_suffix_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["sync", "--source", "akshare", "--symbols", "000001.XX", "--store",
                                      f"sqlite:///{tmp_path / 'q.db'}"], env={"TACN_HOME": str(tmp_path)})
    assert result.exit_code == 2 and "unknown exchange suffix '.XX'" in result.stderr
    assert not (tmp_path / "q.db").exists()


def test_symbols_file_with_an_unknown_suffix_is_a_usage_error(tmp_path):
    path = tmp_path / "codes.txt"
    path.write_text("600000.SH\n000001.XX\n")
    with pytest.raises(UsageError, match="line 2: unknown exchange suffix"):
        read_symbols_file(path)


def test_file_rows_with_an_unknown_suffix_are_rejected(tmp_path):
    rows = [tushare_row(), tushare_row(ts_code="000001.XX"), tushare_row(ts_code="000001.SH"),
            tushare_row(ts_code="000001")]
    converted = convert_frame(pd.DataFrame(rows), "tushare", now=NOW)
    assert sorted(converted.problems) == [1, 2, 3]
    assert "unknown exchange suffix '.XX'" in converted.problems[1][0]
    document = convert_frame(pd.DataFrame([{"symbol": "000001", "trade_date": "2025-10-20", "full_symbol": "000001.XX",
                                            "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}]), "document", now=NOW)
    assert "full_symbol: unknown exchange suffix" in document.problems[0][0]
    akshare = convert_frame(pd.DataFrame([akshare_row(股票代码="000001.XX"), akshare_row(股票代码="000001.SZ")]),
                            "akshare", now=NOW)
    assert list(akshare.problems) == [0] and "股票代码: unknown exchange suffix '.XX'" in akshare.problems[0][0]
    assert akshare.frame["symbol"].tolist()[1] == "000001"  # its own suffix is accepted
    path = tmp_path / "t.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with SQLiteStore(tmp_path / "q.db") as store:
        result = run_sync(store, SyncRequest(source=f"file:{path}", rejects_path=tmp_path / "r.jsonl"))
        assert (result.inserted, result.rejected, result.status) == (1, 3, "success_with_errors")


# -- interrupted during a write batch --------------------------------------------------------------


class _InterruptingConnection:
    """The store's sqlite3 connection, except that the Nth executemany (a write batch) is interrupted
    after its rows went in, inside the open transaction: Ctrl-C or SIGTERM mid-batch."""

    def __init__(self, conn, at: int):
        self._conn, self._left = conn, at

    def executemany(self, sql, rows):
        out = self._conn.executemany(sql, rows)
        self._left -= 1
        if self._left == 0:
            raise KeyboardInterrupt
        return out

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_interrupt_during_a_write_batch_is_recorded_failed_interrupted(tmp_path):
    from tacn.pipelines import runs
    from tacn.pipelines.lock import store_lock

    path = tmp_path / "q.csv"
    pd.DataFrame([tushare_row(trade_date=day.replace("-", "")) for day in
                  pd.bdate_range("2024-01-01", periods=30).strftime("%Y-%m-%d")]).to_csv(path, index=False)
    with SQLiteStore(tmp_path / "q.db") as store:
        store.conn = _InterruptingConnection(store.conn, at=1)
        with pytest.raises(KeyboardInterrupt):
            run_sync(store, SyncRequest(source=f"file:{path}", rejects_path=None))
        store.conn = store.conn._conn
        assert not store.conn.in_transaction and store.count() == 0  # the batch was rolled back, whole
        [status] = runs.statuses(store)
        assert status["status"] == "failed" and status["message"].endswith("interrupted")
        [run] = runs.recent_runs(store)
        assert run["status"] == "failed"
        store_lock(store).acquire().release()  # released
    with SQLiteStore(tmp_path / "q.db") as reopened:  # what another process sees
        assert runs.statuses(reopened)[0]["status"] == "failed"


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.text(max_size=12) | st.builds(lambda code, suffix: f"{code}.{suffix}",
                                        st.from_regex(r"[0-9]{6}", fullmatch=True), st.text(max_size=4)))
def test_parse_code_returns_an_ascii_code_of_its_own_exchange_or_refuses(text):
    from tacn.validators.records import exchange_suffix

    try:
        code = parse_code(text)
    except ValueError as exc:
        assert str(exc)  # a reason, always
        return
    assert len(code) == 6 and code.isascii() and code.isdigit()
    suffix = text.strip().partition(".")[2]
    assert suffix == "" or suffix.upper() == exchange_suffix(code)
