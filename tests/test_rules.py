"""The rule catalogue and its vectorised checks: each rule passes good records and fails bad ones."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tacn.validators.records import build_document
from tacn.validators.rules import (
    DATASET,
    RULES,
    RULES_BY_NAME,
    CheckContext,
    Rule,
    catalogue_markdown,
    error_rule_names,
    explain,
    failing_masks,
    select_rules,
)

NOW = datetime(2025, 10, 24, 8, 0, 0)  # naive UTC: 16:00 in Shanghai; tomorrow there is 2025-10-25
CTX = CheckContext(now_utc=NOW)


def good_doc(**changes) -> dict:
    doc = build_document(
        symbol="600000",
        trade_date="2025-10-23",
        data_source="akshare",
        open=10.0,
        high=11.0,
        low=9.5,
        close=10.5,
        pre_close=10.0,
        volume=1000.0,
        amount=10500.0,
        now=datetime(2025, 10, 23, 9, 0, 0),
    )
    doc.update(changes)
    return doc


def fails(rule: str, **changes) -> bool:
    frame = pd.DataFrame([good_doc(), good_doc(**changes)])
    mask = failing_masks(frame, rules=[rule], context=CTX)[rule]
    assert not mask.iloc[0], f"the good record fails {rule}"
    return bool(mask.iloc[1])


def test_catalogue_names_are_unique_and_severities_known():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert {r.severity for r in RULES} == {"error", "warning"}
    assert all(isinstance(r, Rule) and r.description and "\n" not in r.description for r in RULES)
    assert RULES_BY_NAME["key_unique"].scope == DATASET
    assert RULES_BY_NAME["completeness"].opt_in


def test_error_rule_names_are_the_row_level_errors():
    names = error_rule_names()
    assert "trade_date_iso" in names and "prices_numeric" in names
    assert "prices_positive" not in names  # qfq history can be <= 0: the application stores such prices
    assert "key_unique" not in names  # dataset-level
    assert "trading_day" not in names  # a warning
    assert set(failing_masks(pd.DataFrame([good_doc()]), severity="error")) == set(names)


def test_a_good_record_passes_every_rule():
    masks = failing_masks(pd.DataFrame([good_doc()]), context=CTX)
    assert {name: bool(m.iloc[0]) for name, m in masks.items()} == dict.fromkeys(masks, False)


@pytest.mark.parametrize(
    "value",
    ["0", "1", "20251023", "2025/10/23", "2024-02-30", "2024-1-2", "0001-01-01", "9999-12-31", "", None, 20251023,
     "2025-10-26", "1990-12-18", 20251023.0, " 2025-10-23", "2025-10-23T00:00:00"],
)
def test_bad_trade_dates_fail(value):
    assert fails("trade_date_iso", trade_date=value)


@pytest.mark.parametrize("value", ["2025-10-23", "2025-10-25", "1990-12-19", "2024-02-29"])
def test_good_trade_dates_pass(value):
    assert not fails("trade_date_iso", trade_date=value)


def test_date_rule_on_a_string_column_and_a_mixed_column_agree():
    values = ["2025-10-23", "0", "2024-02-30", "2025-10-22"]
    as_str = pd.DataFrame({"trade_date": pd.Series(values, dtype="str")})
    as_obj = pd.DataFrame({"trade_date": pd.Series(values + [20251023], dtype=object)})
    assert failing_masks(as_str, rules=["trade_date_iso"], context=CTX)["trade_date_iso"].tolist() == [
        False, True, True, False]
    assert failing_masks(as_obj, rules=["trade_date_iso"], context=CTX)["trade_date_iso"].tolist() == [
        False, True, True, False, True]


@pytest.mark.parametrize(
    ("rule", "changes"),
    [
        ("symbol_format", {"symbol": "60000"}),
        ("symbol_format", {"symbol": 600000}),
        ("symbol_format", {"symbol": None}),
        ("symbol_format", {"symbol": "60000A"}),
        ("code_matches_symbol", {"code": "600001"}),
        ("code_matches_symbol", {"code": None}),
        ("period_known", {"period": "hourly"}),
        ("period_known", {"period": None}),
        ("data_source_known", {"data_source": "yahoo"}),
        ("market_known", {"market": "XX"}),
        ("market_known", {"market": None}),
        ("prices_positive", {"open": 0.0}),
        ("prices_positive", {"pre_close": -1.0}),
        ("prices_numeric", {"close": "10.5"}),
        ("prices_numeric", {"open": float("inf")}),
        ("high_is_highest", {"high": 10.2}),  # below close 10.5
        ("high_is_highest", {"low": 11.5, "high": 11.0}),
        ("low_is_lowest", {"low": 10.2}),  # above open 10.0
        ("volume_amount_non_negative", {"volume": -1.0}),
        ("volume_amount_non_negative", {"amount": "many"}),
        ("full_symbol_exchange", {"full_symbol": "600000.SZ"}),
        ("full_symbol_exchange", {"full_symbol": None}),
        ("pct_chg_consistent", {"pct_chg": 4.0}),
        ("trading_day", {"trade_date": "2025-10-01"}),  # National Day holiday
        ("trading_day", {"trade_date": "2025-10-19"}),  # a Sunday
        ("timestamps_valid", {"updated_at": NOW + timedelta(hours=1)}),
        ("timestamps_valid", {"created_at": "2025-10-23"}),
        ("timestamps_valid", {"updated_at": None}),
    ],
)
def test_rule_fails_bad_record(rule, changes):
    assert fails(rule, **changes)


@pytest.mark.parametrize(
    ("rule", "changes"),
    [
        ("prices_positive", {"open": None, "pre_close": float("nan")}),  # absent prices are allowed
        ("prices_numeric", {"open": None, "pre_close": float("nan")}),
        ("prices_numeric", {"open": -0.35, "low": -0.4, "close": -0.3, "high": -0.2}),  # old qfq history
        ("high_is_highest", {"high": None}),
        ("volume_amount_non_negative", {"volume": 0.0, "amount": None}),
        ("full_symbol_exchange", {"symbol": "000001", "code": "000001", "full_symbol": "000001.SZ"}),
        ("full_symbol_exchange", {"symbol": "830799", "code": "830799", "full_symbol": "830799.BJ"}),
        ("full_symbol_exchange", {"symbol": "920001", "code": "920001", "full_symbol": "920001.BJ"}),
        ("pct_chg_consistent", {"pct_chg": 5.005}),  # within tolerance
        ("pct_chg_consistent", {"pre_close": None, "pct_chg": None}),
        ("trading_day", {"trade_date": "2025-10-09"}),
        ("trading_day", {"trade_date": "0"}),  # bad dates are the error rule's business
        ("timestamps_valid", {"updated_at": NOW + timedelta(seconds=30)}),  # clock skew
    ],
)
def test_rule_passes_acceptable_record(rule, changes):
    assert not fails(rule, **changes)


def test_beijing_code_with_the_apps_sz_suffix_is_a_warning_not_an_error():
    frame = pd.DataFrame([good_doc(symbol="830799", code="830799", full_symbol="830799.SZ")])
    masks = failing_masks(frame, context=CTX)
    assert [name for name, m in masks.items() if m.iloc[0]] == ["full_symbol_exchange"]


def test_missing_columns_fail_their_rules_without_raising():
    frame = pd.DataFrame({"symbol": ["600000"], "trade_date": ["2025-10-23"]})
    masks = failing_masks(frame, severity="error", context=CTX)
    failed = {name for name, m in masks.items() if m.iloc[0]}
    assert failed == {"code_matches_symbol", "period_known", "data_source_known", "market_known"}


def test_masks_keep_the_frame_index():
    frame = pd.DataFrame([good_doc(), good_doc(trade_date="0")], index=[10, 20])
    mask = failing_masks(frame, rules=["trade_date_iso"], context=CTX)["trade_date_iso"]
    assert mask.dtype == bool and list(mask.index) == [10, 20] and mask.tolist() == [False, True]


def test_tz_aware_and_numpy_numbers_are_handled():
    frame = pd.DataFrame([good_doc(), good_doc()])
    frame["updated_at"] = pd.to_datetime(frame["updated_at"]).dt.tz_localize("Asia/Shanghai")
    frame["open"] = frame["open"].astype(object)
    frame.at[1, "open"] = np.float32(-2.0)
    masks = failing_masks(frame, context=CTX)
    assert masks["prices_positive"].tolist() == [False, True]
    assert masks["timestamps_valid"].tolist() == [False, False]


def test_select_rules_rejects_unknown_names_and_severities():
    with pytest.raises(ValueError, match="unknown rule"):
        select_rules(rules=["nope"])
    with pytest.raises(ValueError, match="unknown severity"):
        select_rules(severity="fatal")


@pytest.mark.parametrize(
    ("rule", "changes", "words"),
    [
        ("trade_date_iso", {"trade_date": "0"}, "row number"),
        ("trade_date_iso", {"trade_date": "20251023"}, "would be 2025-10-23"),
        ("trade_date_iso", {"trade_date": 20251023}, "integer"),
        ("code_matches_symbol", {"code": "600001"}, "600001"),
        ("prices_positive", {"open": -1.0}, "open=-1.0"),
        ("full_symbol_exchange", {"full_symbol": "600000.SZ"}, "expected 600000.SH"),
        ("trading_day", {"trade_date": "2025-10-01"}, "not an XSHG session"),
        ("timestamps_valid", {"updated_at": None}, "updated_at is missing"),
    ],
)
def test_explain_says_why(rule, changes, words):
    assert words in explain(rule, good_doc(**changes), context=CTX)


def test_catalogue_markdown_lists_every_rule():
    table = catalogue_markdown()
    assert all(f"`{r.name}`" in table for r in RULES)
