"""The volume_unit rule: each bar proves its unit; a series' unit is checked over its history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tacn.pipelines.validate import ValidateOptions, junit_xml, validate_frames
from tacn.validators.records import DATA_SOURCES
from tacn.validators.units import (
    ABSENT,
    APP_UNITS,
    IN_LOTS,
    IN_SHARES,
    NEITHER,
    bar_classes,
    parse_unit_map,
    prove_units,
    volume_scale,
)
from tests.market_fixtures import bars, sessions

DAYS = sessions(count=80)


def run(docs, **options):
    result = validate_frames([pd.DataFrame(docs)], ValidateOptions(rules=("volume_unit",), **options),
                             target={"kind": "file", "name": "t", "format": "test"}, filters={})
    return result, result.rules[0]


def test_the_applications_own_mix_is_recognised_and_passes():
    docs = bars("000001", "akshare", DAYS, unit="lots") + bars("000001", "tushare", DAYS, unit="shares", seed=1)
    result, outcome = run(docs)
    assert outcome.failing == 0 and outcome.checked == 2 * len(DAYS)
    assert result.volume_units["akshare"]["lots"] == 1 and result.volume_units["akshare"]["expected"] == "lots"
    assert result.volume_units["tushare"]["shares"] == 1


def test_a_source_not_in_its_expected_unit_fails_every_bar_with_a_reason():
    docs = bars("600000", "akshare", DAYS, unit="shares")
    result, outcome = run(docs, threshold="warning")
    assert outcome.failing == len(DAYS) and outcome.fails_run and not result.passed
    sample = outcome.samples[0]
    assert sample["key"]["symbol"] == "600000" and sample["value"] == {"unit": "shares", "expected": "lots"}
    assert "amount/volume within [low, high]" in sample["reason"]
    assert 'name="volume_unit"' in junit_xml(result) and "<failure" in junit_xml(result)


def test_the_expected_unit_is_configurable():
    docs = bars("600000", "akshare", DAYS, unit="shares")
    _, outcome = run(docs, volume_units=parse_unit_map("akshare=shares", DATA_SOURCES))
    assert outcome.failing == 0


@pytest.mark.parametrize("text", ["akshare=litres", "nasdaq=shares", "akshare"])
def test_bad_unit_maps_are_refused(text):
    with pytest.raises(ValueError):
        parse_unit_map(text, DATA_SOURCES)
    assert parse_unit_map(None, DATA_SOURCES) == APP_UNITS


def test_bars_before_the_last_ex_date_do_not_vote():
    # a 2-for-1 split 10 sessions ago: older qfq prices are half the traded ones; only the last 10 prove
    docs = bars("000002", "tushare", DAYS, unit="shares", ex_dates={DAYS[-10]: 0.5})
    frame = pd.DataFrame(docs)
    classes = bar_classes(frame.volume, frame.amount, frame.low, frame.high)
    assert (classes[:-10] == NEITHER).all() and (classes[-10:] == IN_SHARES).all()
    _, outcome = run(docs)
    assert outcome.failing == 0


def test_rounding_at_the_edges_of_the_range():
    low, high = np.array([10.0] * 4), np.array([10.5] * 4)
    vwap = np.array([10.0 - 0.01, 10.5 * 1.002 + 0.005, 10.0 * 0.99, 10.5 * 1.01])  # two inside, two outside
    volume = np.array([1e6] * 4)
    classes = bar_classes(volume, vwap * volume, low, high)
    assert list(classes) == [IN_SHARES, IN_SHARES, NEITHER, NEITHER]
    assert list(bar_classes(volume / 100, vwap * volume, low, high)) == [IN_LOTS, IN_LOTS, NEITHER, NEITHER]


def test_zero_volume_and_missing_amount_are_no_evidence():
    classes = bar_classes([0.0, 100.0, np.nan, 100.0], [1000.0, np.nan, 5.0, 0.0], [9.0] * 4, [11.0] * 4)
    assert (classes == ABSENT).all()
    docs = bars("000003", "akshare", DAYS[:5], unit="lots")
    for doc in docs:
        doc["volume"] = None
    result, outcome = run(docs)
    assert outcome.failing == 0 and outcome.checked == 0
    assert result.volume_units["akshare"]["no evidence"] == 1


def test_a_unit_change_in_the_history_fails_the_bars_before_it():
    older = bars("000004", "tushare", DAYS, unit="lots", seed=4)[:40]
    newer = bars("000004", "tushare", DAYS, unit="shares", seed=4)[40:]
    result, outcome = run(older + newer)
    assert outcome.failing == 40
    assert result.volume_units["tushare"]["changed"] == 1 and result.volume_units["tushare"]["shares"] == 1
    assert f"latest on {DAYS[40]}" in outcome.samples[0]["reason"]


def test_latest_bars_in_neither_unit_make_the_series_unknown():
    docs = bars("000005", "tushare", DAYS, unit="shares")
    for doc in docs:
        doc["volume"] = doc["volume"] * 7  # no unit explains this
    result, outcome = run(docs)
    assert result.volume_units["tushare"]["unknown"] == 1 and outcome.failing == len(DAYS)


@given(
    low=st.floats(0.5, 500), spread=st.floats(0, 0.2), where=st.floats(0, 1), shares=st.integers(100, 10**9),
    in_lots=st.booleans(),
)
def test_any_bar_inside_its_range_proves_its_unit(low, spread, where, shares, in_lots):
    high = low * (1 + spread)
    amount = shares * (low + (high - low) * where)
    volume = shares / 100 if in_lots else shares
    code = bar_classes([volume], [amount], [low], [high])[0]
    assert code == (IN_LOTS if in_lots else IN_SHARES)


def test_prove_units_sorts_by_series_and_day():
    frame = pd.DataFrame(bars("000006", "akshare", DAYS[:30], unit="lots")).sample(frac=1, random_state=1)
    classes = bar_classes(frame.volume, frame.amount, frame.low, frame.high)
    days = frame.trade_date.to_numpy(dtype="datetime64[D]").astype(np.int64)
    proof = prove_units(np.zeros(len(frame), dtype=int), days, classes,
                        volume_scale(frame.volume, frame.amount, frame.close))
    assert list(proof.unit) == [IN_LOTS] and proof.changes[0] == 0 and (np.diff(days[proof.order]) > 0).all()


def test_one_corrupt_latest_bar_does_not_hide_the_unit():
    docs = bars("000007", "akshare", DAYS, unit="lots")
    docs[-1]["amount"] = docs[-1]["amount"] * 3  # fits neither unit
    result, outcome = run(docs)
    assert result.volume_units["akshare"]["lots"] == 1 and outcome.failing == 0


def _mixed_history() -> pd.DataFrame:
    """Series of every kind (units, an ex-date, a unit change, corrupt and missing bars, a repeated day)."""
    days = DAYS[:50]
    docs = (bars("000001", "akshare", days, unit="lots") + bars("000001", "tushare", days, unit="shares", seed=1)
            + bars("600000", "akshare", days, unit="shares", seed=2)
            + bars("600001", "tushare", days, unit="shares", seed=3, ex_dates={days[30]: 0.9})
            + bars("000004", "tushare", days, unit="lots", seed=4)[:20]
            + bars("000004", "tushare", days, unit="shares", seed=4)[20:]
            + bars("000005", "baostock", days, unit="shares", seed=5))
    docs[10]["amount"] *= 3  # fits neither unit
    docs[60]["volume"] = None
    docs[-1]["volume"] *= 7
    docs.append(dict(docs[5], volume=docs[5]["volume"] * 100))  # the same day again, in the other unit
    return pd.DataFrame(docs)


MIXED = _mixed_history()


def _units_of(chunks, **kwargs):
    from tacn.pipelines.validate import RuleOutcome
    from tacn.pipelines.volume_units import VolumeUnits

    units, outcome = VolumeUnits(**kwargs), RuleOutcome("volume_unit", "warning", "", "dataset")
    for chunk in chunks:
        units.add(chunk, pd.Series(True, index=chunk.index))
    units.outcome(outcome, max_samples=50)
    return outcome.checked, outcome.failing, outcome.samples, list(units.breakdown.items())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(1, len(MIXED) - 1), max_size=12),
       partitions=st.integers(1, 5), spill_bars=st.integers(0, 400))
def test_chunks_in_any_order_give_the_verdicts_of_the_whole_frame(seed, cuts, partitions, spill_bars):
    frame = MIXED.sample(frac=1, random_state=seed).reset_index(drop=True)  # arrival order: any
    bounds = [0, *sorted(set(cuts)), len(frame)]
    chunks = [frame.iloc[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    whole = _units_of([frame], partitions=1, spill_bars=10**9)  # every bar proven at once, in memory
    assert _units_of(chunks, partitions=partitions, spill_bars=spill_bars) == whole
    assert whole[1] > 0 and len(whole[2]) > 1  # the data has findings to compare


def test_a_temporary_folder_that_cannot_be_written_is_a_clear_store_error(tmp_path, monkeypatch):
    import tempfile

    from tacn.pipelines.errors import StoreError

    missing = tmp_path / "no-such-tmp"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))  # what TMPDIR pointing nowhere gives
    with pytest.raises(StoreError, match="TMPDIR"):
        _units_of([MIXED], partitions=2, spill_bars=0)
