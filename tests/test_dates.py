"""normalize_trade_date and the stored-date rule: every accepted and rejected form."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tacn.validators.dates import (
    FIRST_TRADE_DATE,
    InvalidTradeDate,
    classify_stored_trade_date,
    is_valid_iso_trade_date,
    latest_allowed_trade_date,
    normalize_trade_date,
    valid_iso_mask,
)

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.mark.parametrize(
    "value",
    [
        date(2025, 10, 23),
        datetime(2025, 10, 23, 15, 30),
        pd.Timestamp("2025-10-23"),
        np.datetime64("2025-10-23"),
        np.datetime64("2025-10-23T09:30:00"),
        "20251023",
        "2025-10-23",
        "2025/10/23",
        " 2025-10-23 ",
    ],
)
def test_accepted_forms(value):
    assert normalize_trade_date(value) == "2025-10-23"


@pytest.mark.parametrize(
    "value, reason",
    [
        (0, "integer"),
        (20251023, "integer"),
        (True, "integer"),
        ("0", "row number"),
        ("1", "row number"),
        ("299", "row number"),
        (float("nan"), "NaN"),
        (None, "missing"),
        (pd.NaT, "NaT"),
        (np.datetime64("NaT"), "NaT"),
        ("2024-02-30", "calendar"),
        ("2023-02-29", "calendar"),
        ("20241301", "calendar"),
        ("1990-12-18", "before"),
        ("1970-01-01", "before"),
        ("9999-12-31", "after tomorrow"),
        ("2024-1-2", "not one of"),
        ("23/10/2025", "not one of"),
        ("2025-10-23T00:00:00", "not one of"),
        ("", "empty"),
        (np.int64(7), "number"),
        (12.5, "number"),
        ([2025, 10, 23], "unsupported type"),
    ],
)
def test_rejected_forms_name_the_value(value, reason):
    with pytest.raises(InvalidTradeDate) as caught:
        normalize_trade_date(value)
    assert isinstance(caught.value, ValueError)
    assert reason in str(caught.value)
    assert repr(value) in str(caught.value)


def test_never_falls_back_to_today():
    for value in ("0", None, "", "abc"):
        with pytest.raises(ValueError):
            normalize_trade_date(value)


def test_tomorrow_in_shanghai_is_the_last_allowed_day():
    # 2025-10-23 20:00 UTC is already 2025-10-24 in Shanghai: tomorrow there is the 25th.
    now = datetime(2025, 10, 23, 20, 0)
    assert normalize_trade_date("2025-10-25", now=now) == "2025-10-25"
    with pytest.raises(InvalidTradeDate, match="after tomorrow"):
        normalize_trade_date("2025-10-26", now=now)


@given(st.dates(min_value=FIRST_TRADE_DATE, max_value=date.today() - timedelta(days=1)))
def test_any_real_date_in_range_normalises_to_iso(day):
    for form in (day, day.strftime("%Y%m%d"), day.strftime("%Y/%m/%d"), day.isoformat(), pd.Timestamp(day)):
        out = normalize_trade_date(form)
        assert ISO.match(out)
        assert date.fromisoformat(out) == day
        assert is_valid_iso_trade_date(out)


@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(), st.none(), st.dates(), st.datetimes()))
def test_output_is_always_a_real_iso_date_or_an_error(value):
    try:
        out = normalize_trade_date(value)
    except InvalidTradeDate:
        return
    assert ISO.match(out)
    parsed = date.fromisoformat(out)
    assert FIRST_TRADE_DATE <= parsed <= latest_allowed_trade_date()


@given(st.text(alphabet="0123456789-/", min_size=0, max_size=12))
def test_stored_rule_agrees_with_the_vectorised_mask(text):
    scalar = is_valid_iso_trade_date(text)
    vector = bool(valid_iso_mask(pd.Series([text], dtype=object)).iloc[0])
    assert scalar == vector
    if scalar:
        assert normalize_trade_date(text) == text


def test_vectorised_mask_on_mixed_values():
    values = ["2025-10-23", "0", "20251023", "2025/10/23", "2024-02-30", "2024-1-2", "0001-01-01",
              "9999-12-31", "", None, 20251023, date(2025, 10, 23), float("nan"), "2024-02-29"]
    mask = valid_iso_mask(pd.Series(values, dtype=object))
    assert mask.tolist() == [True] + [False] * 12 + [True]
    assert valid_iso_mask(pd.Series(["2025-10-23", None], dtype="str")).tolist() == [True, False]


@pytest.mark.parametrize(
    "value, kind",
    [("2025-10-23", "valid"), ("0", "pure_digits"), ("20251023", "pure_digits"), ("2025/10/23", "other_format"),
     ("2024-02-30", "impossible_date"), ("0001-01-01", "out_of_range"), ("", "missing"), (None, "missing"),
     (7, "wrong_type"), (date(2025, 10, 23), "wrong_type")],
)
def test_classify_stored_values(value, kind):
    assert classify_stored_trade_date(value) == kind
