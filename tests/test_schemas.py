"""pandera as the engine: the same verdicts as the rule masks and as a plain-Python oracle; the portable schema."""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime

import pandas as pd
import pandera.pandas as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.validators import rules, schemas
from tacn.validators.dates import FIRST_TRADE_DATE_ISO, latest_allowed_trade_date
from tacn.validators.records import DATA_SOURCES, MARKETS, PERIODS

NOW = datetime(2025, 10, 24, 8, 0)
LATEST = latest_allowed_trade_date(NOW).isoformat()
CTX = rules.CheckContext(now_utc=NOW)
runner = CliRunner()

# -- an independent oracle, one record at a time, in plain Python --------------------------


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _iso(v) -> bool:
    if not isinstance(v, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", v):
        return False
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return FIRST_TRADE_DATE_ISO <= v <= LATEST


def oracle(doc: dict) -> set[str]:
    """The rules a record fails, straight from the catalogue's descriptions.

    An object or a list fails value_types; the other rules see its JSON text (tacn.validators.rules.flatten_nested).
    """
    nested = any(isinstance(v, dict | list) for v in doc.values())
    doc = {k: json.dumps(v, sort_keys=True, ensure_ascii=False) if isinstance(v, dict | list) else v
           for k, v in doc.items()}
    get = doc.get
    failed = set()
    if not _iso(get("trade_date")):
        failed.add("trade_date_iso")
    if not (isinstance(get("symbol"), str) and re.fullmatch(r"[0-9]{6}", get("symbol"))):
        failed.add("symbol_format")
    if not (isinstance(get("code"), str) and get("code") == get("symbol")):
        failed.add("code_matches_symbol")
    for name, allowed in (("period", PERIODS), ("data_source", DATA_SOURCES), ("market", MARKETS)):
        if not (isinstance(get(name), str) and get(name) in allowed):
            failed.add(f"{name}_known")
    numbers = ("open", "high", "low", "close", "pre_close", "volume", "amount", "change", "pct_chg")
    if nested or any(not _missing(get(n)) and not _number(get(n)) for n in numbers):
        failed.add("value_types")
    prices = ("open", "high", "low", "close", "pre_close")
    if any(not _missing(get(n)) and not (_number(get(n)) and math.isfinite(get(n))) for n in prices):
        failed.add("prices_numeric")
    if any(_number(get(n)) and not math.isnan(get(n)) and not get(n) > 0 for n in prices):
        failed.add("prices_positive")  # a non-number is prices_numeric's business
    if any(not _missing(get(n)) and not (_number(get(n)) and get(n) >= 0) for n in ("volume", "amount")):
        failed.add("volume_amount_non_negative")

    def num(name):
        v = get(name)
        return v if _number(v) and not math.isnan(v) else None

    high, low = num("high"), num("low")
    if high is not None and any(num(n) is not None and num(n) > high for n in ("open", "close", "low")):
        failed.add("high_is_highest")
    if low is not None and any(num(n) is not None and low > num(n) for n in ("open", "close")):
        failed.add("low_is_lowest")
    return failed


ORACLE_RULES = ("trade_date_iso", "symbol_format", "code_matches_symbol", "period_known", "data_source_known",
                "market_known", "value_types", "prices_numeric", "prices_positive", "volume_amount_non_negative",
                "high_is_highest", "low_is_lowest")

# every trade_date trap of the incident and its cousins, mixed types in one column included
TRADE_DATES = st.one_of(
    st.sampled_from(["2025-10-23", "2025-10-24", "2025-10-25", "2025-10-26", "1990-12-19", "1990-12-18",
                     "0", "1", "2", "82631", "20251023", "2025/10/23", "2025-02-30", "2024-02-29", "2023-02-29",
                     "2025-1-3", " 2025-10-23", "2025-10-23 ", "２０２５-10-23", "", "2025-10-23T00:00:00",
                     "9999-12-31", "nan", "None"]),
    st.integers(-5, 30_000_000), st.floats(allow_nan=True), st.none(),
    st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2030, 1, 1)),
    st.dates(min_value=date(1980, 1, 1), max_value=date(2030, 1, 1)),
    st.dates(min_value=date(1990, 12, 19), max_value=date(2025, 10, 25)).map(date.isoformat),
)
TEXTS = st.one_of(st.sampled_from(["600000", "000001", "00001", "6000001", "60000a", "", "daily", "weekly",
                                   "hourly", "akshare", "tushare", "yahoo", "CN", "US", "XX"]),
                  st.integers(0, 999_999), st.none(), st.text(max_size=7), st.just({"$gt": 1}), st.just(["x"]))
NUMBERS = st.one_of(st.floats(-5, 50), st.just(float("nan")), st.integers(-3, 40), st.none(),
                    st.sampled_from(["abc", "10.5", True]), st.just({"a": 1}), st.just([1.0]))


@st.composite
def records(draw):
    symbol = draw(st.one_of(st.sampled_from(["600000", "000001"]), TEXTS))
    doc = {
        "symbol": symbol,
        "code": draw(st.one_of(st.just(symbol), TEXTS)),
        "trade_date": draw(TRADE_DATES),
        "period": draw(st.one_of(st.sampled_from(PERIODS), TEXTS)),
        "data_source": draw(st.one_of(st.sampled_from(DATA_SOURCES), TEXTS)),
        "market": draw(st.one_of(st.just("CN"), TEXTS)),
    }
    for name in ("open", "high", "low", "close", "pre_close", "volume", "amount", "change", "pct_chg"):
        doc[name] = draw(st.one_of(st.floats(0.5, 20), NUMBERS))
    return doc


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=25))
def test_pandera_the_masks_and_a_plain_python_oracle_agree(docs):
    frame = rules.flatten_nested(pd.DataFrame(docs))  # what validate does before judging
    by_pandera = schemas.failing_masks(frame, rules=ORACLE_RULES, context=CTX)
    by_masks = rules.failing_masks(frame, rules=ORACLE_RULES, context=CTX)
    for position, doc in enumerate(docs):
        expected = oracle(doc)
        got = {name for name in ORACLE_RULES if by_pandera[name].iloc[position]}
        assert got == expected, (doc, got ^ expected)
        assert {name for name in ORACLE_RULES if by_masks[name].iloc[position]} == expected


@settings(max_examples=25, deadline=None)
@given(st.lists(records(), min_size=1, max_size=12))
def test_the_same_verdict_when_text_columns_come_typed(docs):
    """A CSV or Parquet read gives string columns, JSON gives objects: the verdict does not depend on it."""
    frame = rules.flatten_nested(pd.DataFrame(docs))
    typed = frame.copy()
    for name in ("symbol", "code", "trade_date", "period", "data_source", "market"):
        if typed[name].map(lambda v: isinstance(v, str) or _missing(v)).all():
            typed[name] = typed[name].astype("string")
    as_objects = schemas.failing_masks(frame, context=CTX)
    as_strings = schemas.failing_masks(typed, context=CTX)
    for name in as_objects:
        assert as_objects[name].tolist() == as_strings[name].tolist(), name


# -- tacn schema --pandera -------------------------------------------------------------------------


def test_schema_pandera_prints_a_schema_pandera_reads_back():
    result = runner.invoke(app, ["schema", "--pandera"])
    assert result.exit_code == 0
    schema = pa.DataFrameSchema.from_yaml(result.stdout)
    assert set(schema.columns) >= {"symbol", "trade_date", "open", "created_at"}
    assert "trading_day" in result.stdout and "timestamps_valid" in result.stdout  # named, not serialised
    good = pd.DataFrame({"symbol": ["600000"], "code": ["600000"], "full_symbol": ["600000.SH"], "market": ["CN"],
                         "trade_date": ["2025-10-23"], "period": ["daily"], "data_source": ["akshare"],
                         **{n: [10.0] for n in ("open", "high", "low", "close", "pre_close", "volume", "amount",
                                                "change", "pct_chg")},
                         "created_at": [pd.Timestamp(NOW)], "updated_at": [pd.Timestamp(NOW)], "version": [1]})
    good = good.astype({n: "str" for n in ("symbol", "code", "full_symbol", "market", "trade_date", "period",
                                             "data_source")})
    schema.validate(good)
    bad = good.assign(trade_date=["20251023"])
    try:
        schema.validate(bad)
    except pa.errors.SchemaError as exc:
        assert "trade_date" in str(exc)
    else:
        raise AssertionError("the portable schema passed a YYYYMMDD trade_date")


def test_schema_pandera_json_names_what_it_cannot_serialise():
    result = runner.invoke(app, ["schema", "--pandera", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["pandera_schema"]["columns"]["period"]["isin"] == ["daily", "weekly", "monthly"]
    names = {c["name"] for c in report["not_serialised"]}
    assert {"trade_date_iso", "high_is_highest", "trading_day", "completeness"} <= names
    assert "symbol_format" not in names  # said in full by str_matches


def test_a_check_that_raises_is_an_engine_error_never_a_pass(monkeypatch):
    def broken(frame, ctx):
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(rules.CHECKS, "symbol_format", broken)
    frame = pd.DataFrame([{"symbol": "600000"}])
    try:
        schemas.failing_masks(frame, rules=["symbol_format"], context=CTX)
    except schemas.EngineError as exc:
        assert "symbol_format" in str(exc)
    else:
        raise AssertionError("a crashing check passed")
