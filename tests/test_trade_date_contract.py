"""One trade_date definition, every evaluator: a differential property test.

The evaluators: the normaliser (scalar and vectorised), the stored-value test, the
vectorised mask, the clean/verify-fix classifier, the SQLite SQL and the MongoDB
query (mongomock here; a real server too when the ``store`` fixture provides one).
The contract: a value is valid exactly when the normaliser returns it unchanged,
every evaluator says the same, and whatever the normaliser returns is ASCII
YYYY-MM-DD. Inputs: arbitrary Unicode text and the forms that split dialects
(full-width and Arabic-Indic digits, a final newline, NUL, surrogates, 2025-02-29).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tacn.validators.dates import (
    FIRST_TRADE_DATE,
    KIND_VALID,
    InvalidTradeDate,
    classify_stored_trade_date,
    is_valid_iso_trade_date,
    latest_allowed_trade_date,
    normalize_trade_date,
    valid_iso_mask,
)
from tacn.validators.records import utc_now
from tacn.validators.source_layouts import normalize_trade_dates

NOW = datetime(2025, 10, 24, 8, 0)  # naive UTC: tomorrow in Shanghai is 2025-10-25
ASCII_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")

EDGE_FORMS = [
    "2025-10-23", "2024-02-29", "2025-02-29", "2000-02-29", "1990-12-19", "1990-12-18", "2025-10-25",
    "2025-10-26", "2025-10-23\n", "2025-10-23\r\n", "\n2025-10-23", "2025-10-23\x00", "\x002025-10-23",
    "2025-10-23 ", " 2025-10-23", "2025-10-23\u3000", "2025-10-23\u200b", "\u202e2025-10-23",
    "2025-10-23\u0085", "2025-10-23\u2028", "2025-10-23T00:00", "2025-10-2", "2025-1-23",
    "2025-10-23".translate(FULL_WIDTH), "2025-10-23".translate(ARABIC_INDIC), "2025-10-23".translate(DEVANAGARI),
    "20251023", "20251023\n", "2025/10/23", "2025/10/23\n", "20251023".translate(FULL_WIDTH),
    "２0２5-10-23", "0", "1", "299", "", "\n", "\ud800", "2025-10-23\udfff", "2025-10-23" + "\U0001d7ce",
]
DIGIT_TABLES = [FULL_WIDTH, ARABIC_INDIC, DEVANAGARI]


@st.composite
def dressed_dates(draw):
    """A real date in one of the accepted forms, then perhaps re-digited and wrapped in odd text."""
    day = draw(st.dates(min_value=date(1985, 1, 1), max_value=date(2030, 12, 31)))
    text = draw(st.sampled_from([day.isoformat(), day.strftime("%Y%m%d"), day.strftime("%Y/%m/%d"),
                                 f"{day.year}-02-29", f"{day.year}-{day.month:02d}-31"]))
    if draw(st.booleans()):
        table = draw(st.sampled_from(DIGIT_TABLES))
        position = draw(st.integers(0, len(text) - 1))
        text = text[:position] + text[position].translate(table) + text[position + 1:]
    blanks = st.text(alphabet=" \t\r\n\x00\x0b\x0c\u3000\u00a0\u200b\u202e\u2028\x85", max_size=2)
    return draw(blanks) + text + draw(blanks)


TEXTS = st.one_of(st.sampled_from(EDGE_FORMS), dressed_dates(), st.text(max_size=14),
                  st.text(alphabet="0123456789-/ \n", max_size=12))


def normalised(value):
    try:
        return normalize_trade_date(value, now=NOW)
    except InvalidTradeDate:
        return None


def assert_one_verdict(value) -> bool:
    """Every Python evaluator's verdict on one value; returns it."""
    valid = is_valid_iso_trade_date(value, now=NOW)
    out = normalised(value)
    assert valid == (out == value), (value, out)
    if out is not None:
        assert ASCII_ISO.fullmatch(out) and out.isascii(), out
        assert FIRST_TRADE_DATE <= date.fromisoformat(out) <= latest_allowed_trade_date(NOW)
        assert is_valid_iso_trade_date(out, now=NOW), out  # normalising is idempotent
    assert (classify_stored_trade_date(value, now=NOW) == KIND_VALID) == valid, value
    return valid


@pytest.mark.parametrize("value", EDGE_FORMS, ids=repr)
def test_edge_forms_get_one_verdict(value):
    assert_one_verdict(value)


def test_the_forms_that_split_the_dialects_are_invalid():
    for value in ("2025-10-23\n", "2025-10-23\x00", "2025-10-23".translate(FULL_WIDTH),
                  "2025-10-23".translate(ARABIC_INDIC), "2025-02-29", "2025-10-23 "):
        assert not assert_one_verdict(value), repr(value)
    # Non-ASCII digits are not digits: the normaliser refuses rather than converting them.
    assert normalised("20251023".translate(FULL_WIDTH)) is None
    assert normalised("2025-10-23".translate(ARABIC_INDIC)) is None


@settings(max_examples=400, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=8))
def test_every_python_evaluator_agrees(values):
    verdicts = [assert_one_verdict(v) for v in values]
    series = pd.Series(values, dtype=object)
    representable = all(_utf8(v) for v in values)
    if representable:  # pandas' string dtypes cannot hold lone surrogates
        assert valid_iso_mask(series, now=NOW).tolist() == verdicts
        for dtype in ("str", "string"):  # pyarrow-backed text too (its regexes are RE2)
            assert valid_iso_mask(pd.Series(values, dtype=dtype), now=NOW).tolist() == verdicts, dtype
        iso, reasons = normalize_trade_dates(series, now=NOW)
        for label, value in enumerate(values):
            expected = normalised(value)
            got = iso.at[label]
            assert (None if pd.isna(got) else got) == expected, (value, got, expected)
            assert (label in reasons) == (expected is None)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- the stores' own evaluators --------------------------------------------------------


def _docs(values: list[str]) -> list[dict]:
    return [
        {"_id": f"id{i}", "symbol": f"{i:06d}", "trade_date": value, "data_source": "akshare", "period": "daily",
         "close": 1.0}
        for i, value in enumerate(values)
    ]


def _empty(store) -> None:
    store.delete_by_ids([d["_id"] for d in store.iter_documents()])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(TEXTS.filter(_utf8), min_size=1, max_size=10))
def test_the_stores_count_what_python_counts(store, values):
    """SQLite's SQL and the MongoDB query select exactly the values Python calls invalid."""
    now = utc_now()  # the stores judge against the real tomorrow
    expected_invalid = {f"id{i}" for i, v in enumerate(values) if not is_valid_iso_trade_date(v, now=now)}
    _empty(store)
    assert store.put_documents(_docs(values)).inserted == len(values)
    assert {str(d["_id"]) for d in store.iter_invalid_trade_date()} == expected_invalid
    assert store.count_invalid_trade_date() == len(expected_invalid)
    assert store.stats().invalid_trade_date == len(expected_invalid)
    latest = store.latest_valid_trade_dates("akshare")
    assert latest == {f"{i:06d}": v for i, v in enumerate(values) if f"id{i}" not in expected_invalid}


def test_the_stores_refuse_the_dialect_splitting_forms(store):
    values = ["2025-10-23", "2025-10-23\n", "2025-10-23\x00", "2025-10-23".translate(FULL_WIDTH),
              "2025-02-29", "2024-02-29", "2025-10-23x", "9999-12-31"]
    store.put_documents(_docs(values))
    assert sorted(str(d["_id"]) for d in store.iter_invalid_trade_date()) == ["id1", "id2", "id3", "id4", "id6", "id7"]


# -- sync writes only what every evaluator accepts --------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(TEXTS.filter(_utf8), min_size=1, max_size=6))
def test_sync_conversion_only_produces_valid_dates(texts):
    from tacn.validators.source_layouts import convert_frame, documents

    now = utc_now()
    raw = pd.DataFrame({
        "ts_code": [f"{600000 + i}.SH" for i in range(len(texts))], "trade_date": texts,
        "open": 10.0, "high": 10.5, "low": 9.9, "close": 10.3, "pre_close": 10.0, "change": 0.3,
        "pct_chg": 3.0, "vol": 1234.5, "amount": 5678.9,
    })
    converted = convert_frame(raw, "tushare", now=now)
    kept = converted.frame.drop(index=list(converted.problems))  # sync writes only rows without problems
    for doc in documents(kept, now=now):
        value = doc["trade_date"]
        assert is_valid_iso_trade_date(value, now=now) and normalize_trade_date(value, now=now) == value
        assert classify_stored_trade_date(value, now=now) == KIND_VALID


def test_sync_file_source_stores_no_value_any_store_calls_invalid(tmp_path):
    """End to end: a CSV full of edge forms; what lands in the SQLite file passes the SQL too."""
    from typer.testing import CliRunner

    from tacn.cli.app import app
    from tacn.pipelines.stores.sqlite import SQLiteStore

    today = date.today() - timedelta(days=3)
    texts = [v for v in EDGE_FORMS if _utf8(v)] + [today.isoformat() + "\n", today.strftime("%Y%m%d")]
    rows = pd.DataFrame({
        "ts_code": [f"{600000 + i}.SH" for i in range(len(texts))], "trade_date": texts,
        "open": 10.0, "high": 10.5, "low": 9.9, "close": 10.3, "pre_close": 10.0, "change": 0.3,
        "pct_chg": 3.0, "vol": 1234.5, "amount": 5678.9,
    })
    source = tmp_path / "quotes.jsonl"
    rows.to_json(source, orient="records", lines=True, force_ascii=False)
    db = tmp_path / "q.db"
    CliRunner().invoke(app, ["sync", "--store", f"sqlite:///{db}", "--source", f"file:{source}"])
    with SQLiteStore(db) as store:
        stored = [d["trade_date"] for d in store.iter_documents()]
        assert stored, "the valid rows were written"
        assert store.count_invalid_trade_date() == 0
    assert all(is_valid_iso_trade_date(v) and normalize_trade_date(v) == v for v in stored)


def test_the_stores_agree_with_python_on_every_edge_form(store):
    values = [v for v in EDGE_FORMS if _utf8(v)]
    store.put_documents(_docs(values))
    now = utc_now()
    expected = {f"id{i}" for i, v in enumerate(values) if not is_valid_iso_trade_date(v, now=now)}
    assert {str(d["_id"]) for d in store.iter_invalid_trade_date()} == expected
    assert store.count_invalid_trade_date() == len(expected)
