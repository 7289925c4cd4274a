"""The fast paths of judging a chunk give the same answers as the general paths they shortcut.

Arrow-backed text columns and float64/int64 number columns take vectorised shortcuts (Arrow compute,
numpy); object columns of mixed types take the general path, value by value. The same values in
both forms must give the same masks, key hashes and duplicate flags.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tacn.pipelines.validate import SeenKeys, key_hashes
from tacn.validators import rules
from tacn.validators.dates import FIRST_TRADE_DATE_ISO, latest_allowed_trade_date
from tacn.validators.records import KEY_FIELDS, exchange_suffix

# -- key uniqueness across chunks --------------------------------------------------------------

# hashes from a small pool, spread over every top byte (bucket), so chunks repeat values within and across
POOL = st.integers(0, 300).map(lambda k: (k * 0x9E3779B97F4A7C15 + (k % 7) * (1 << 63)) % (1 << 64))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(POOL, max_size=60), min_size=1, max_size=8))
def test_seen_keys_flags_what_a_python_set_has_seen(chunks):
    seen, reference = SeenKeys(), set()
    for chunk in chunks:
        expected = []
        for value in chunk:
            expected.append(value in reference)
            reference.add(value)
        assert seen.add(np.array(chunk, dtype=np.uint64)).tolist() == expected
    assert seen.distinct == len(reference)


KEY_TEXT = st.one_of(st.sampled_from(["600000", "000001", "1", "2025-10-23", "20251023", "", " ", "nan", "None",
                                      "daily", "akshare", "٠١٢٣٤٥", "６００００", "a\x00b", "é"]),
                     st.text(max_size=4), st.none(), st.just(float("nan")))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(KEY_TEXT, KEY_TEXT, KEY_TEXT, KEY_TEXT), min_size=1, max_size=30),
       st.sampled_from(["str", "string"]))
def test_key_hashes_of_text_columns_are_those_of_their_object_form(rows, dtype):
    """Missing values included: a str column keeps its Arrow form and hashes as the object column of the same
    texts, with None where a value is missing, does."""
    as_object = pd.DataFrame(rows, columns=list(KEY_FIELDS), dtype=object)
    as_object = as_object.where(as_object.notna(), None)
    typed = as_object.astype(dtype)
    assert key_hashes(typed).tolist() == key_hashes(as_object).tolist()
    assert SeenKeys().add(key_hashes(typed)).tolist() == SeenKeys().add(key_hashes(as_object)).tolist()


# -- the row rules: Arrow text and float64 columns against their object form and a plain-Python oracle ----


NOW = datetime(2025, 10, 24, 8, 0)
ODD_TEXT = st.one_of(
    st.sampled_from(["600000", "000001", "430001", "830001", "920001", "300750", "60000", "6000000", "60000a",
                     "٠١٢٣٤٥", "６０００００", "600000\n", " 600000", "", "nan", "None",
                     "600000.SH", "000001.SZ", "430001.BJ", "920001.BJ", "300750.SZ", "600000.SZ", "600000.sh",
                     "6000001.SH", "600000.SHX", "６０００００.SH", "600000.SH\x00",
                     "2025-10-23", "2025-02-30", "2024-02-29", "1990-12-18", "1990-12-19", "20251023", "2025-10-23\n",
                     "2025-10-25", "2025-10-26", "9999-12-31", "2025-1-3",
                     "daily", "weekly", "akshare", "tushare", "CN", "US"]),
    st.text(max_size=11), st.none())
ODD_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e-300, -1.0]),
                       st.floats(0.5, 20), st.none())
TEXT_COLUMNS = ("symbol", "code", "full_symbol", "trade_date", "period", "data_source", "market")
NUMBER_COLUMNS = ("open", "high", "low", "close", "pre_close", "volume", "amount", "change", "pct_chg")
CHANGED = ("trade_date_iso", "symbol_format", "full_symbol_exchange", "value_types", "row_readable", "prices_numeric",
           "prices_positive", "high_is_highest", "low_is_lowest", "volume_amount_non_negative", "pct_chg_consistent",
           "period_known", "trading_day")


@st.composite
def typed_frames(draw):
    rows = draw(st.integers(1, 20))
    data = {name: draw(st.lists(ODD_TEXT, min_size=rows, max_size=rows)) for name in TEXT_COLUMNS}
    data.update({name: draw(st.lists(ODD_NUMBER, min_size=rows, max_size=rows)) for name in NUMBER_COLUMNS})
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in data.items()})
    text_dtype = draw(st.sampled_from(["str", "string"]))
    typed = frame.astype({name: text_dtype for name in TEXT_COLUMNS} | {name: "float64" for name in NUMBER_COLUMNS})
    if draw(st.booleans()):  # whole numbers come as int64 from a typed read
        typed["volume"] = typed["volume"].fillna(0).clip(-1e15, 1e15).round().astype("int64")
    dropped = draw(st.sets(st.sampled_from(["full_symbol", "pre_close", "pct_chg", "volume"]), max_size=2))
    return typed.drop(columns=sorted(dropped))


def _object_form(frame):
    """The same values as object columns (None where missing): what a JSON read gives, judged value by value."""
    as_object = frame.astype(object)
    return as_object.where(as_object.notna(), None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_frames())
def test_typed_columns_and_their_object_form_fail_the_same_rows(frame):
    ctx = rules.CheckContext(now_utc=NOW)
    typed = rules.failing_masks(frame, rules=CHANGED, context=ctx)
    general = rules.failing_masks(_object_form(frame), rules=CHANGED, context=ctx)
    for name in CHANGED:
        assert typed[name].tolist() == general[name].tolist(), name


def _oracle_full_symbol(code, full) -> bool:
    if not (isinstance(code, str) and len(code) == 6 and all("0" <= c <= "9" for c in code)):
        return False
    return full != f"{code}.{exchange_suffix(code)}"


def _oracle_pct_chg(close, pre_close, pct_chg) -> bool:
    if any(v is None or math.isnan(v) for v in (close, pre_close, pct_chg)) or pre_close == 0:
        return False
    with np.errstate(all="ignore"):
        expected = (np.float64(close) - pre_close) / pre_close * 100
    return bool(abs(pct_chg - expected) > rules.PCT_CHG_TOLERANCE)


def _oracle_date(value) -> bool:
    if not isinstance(value, str) or len(value) != 10 or not all(c in "0123456789-" for c in value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return FIRST_TRADE_DATE_ISO <= value <= latest_allowed_trade_date(NOW).isoformat()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_frames())
def test_typed_columns_agree_with_a_plain_python_oracle(frame):
    """The rules whose Arrow path has no older test: the exchange suffix, pct_chg and the date on str columns."""
    ctx = rules.CheckContext(now_utc=NOW)
    masks = rules.failing_masks(frame, rules=("full_symbol_exchange", "pct_chg_consistent", "trade_date_iso"),
                                context=ctx)
    for position, record in enumerate(_object_form(frame).to_dict("records")):
        get = record.get
        assert masks["full_symbol_exchange"].iloc[position] == _oracle_full_symbol(get("code"), get("full_symbol"))
        assert masks["pct_chg_consistent"].iloc[position] == _oracle_pct_chg(get("close"), get("pre_close"),
                                                                                get("pct_chg"))
        assert masks["trade_date_iso"].iloc[position] == (not _oracle_date(get("trade_date")))
