"""The dataset-level ``volume_unit`` rule of validate: units proven per (symbol, data_source, period).

validate streams chunks in any order; this collects a few bytes per bar (series
id, day, bar class, volume scale: 17 bytes) and proves the units once at the end
with :func:`validators.units.prove_units`. The logic of a unit lives there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from validators.units import (
    ABSENT,
    APP_UNITS,
    IN_SHARES,
    NEITHER,
    UNIT_CODES,
    UNIT_NAMES,
    bar_classes,
    prove_units,
    volume_scale,
)

if TYPE_CHECKING:
    import pandas as pd

SERIES_FIELDS = ("symbol", "data_source", "period")


def _numbers(frame, name):
    from validators.rules import as_number, column

    return as_number(column(frame, name)).to_numpy()


class VolumeUnits:
    """Accumulates bars chunk by chunk; :meth:`outcome` fills the rule's counts and samples."""

    def __init__(self, expected: dict[str, str] | None = None) -> None:
        self.expected = dict(APP_UNITS if expected is None else expected)
        self._ids: dict[tuple, int] = {}
        self._parts: list[tuple] = []
        self.breakdown: dict[str, dict[str, Any]] = {}

    def add(self, frame: pd.DataFrame, valid_date: pd.Series) -> None:
        import numpy as np
        import pandas as pd

        from validators.rules import column

        if not valid_date.any():
            return
        needed = [c for c in (*SERIES_FIELDS, "trade_date", "volume", "amount", "low", "high", "close") if c in frame]
        part = frame.loc[valid_date.to_numpy(), needed]
        # (symbol, data_source, period) -> series id: factorize each column, combine the codes (no tuples per row)
        combined = np.zeros(len(part), dtype=np.int64)
        uniques = []
        for name in SERIES_FIELDS:
            codes_, values = pd.factorize(column(part, name), use_na_sentinel=False)
            combined = combined * len(values) + codes_
            uniques.append(list(values))
        distinct, codes = np.unique(combined, return_inverse=True)
        lookup = np.empty(len(distinct), dtype=np.int32)
        for i, value in enumerate(distinct.tolist()):
            key = []
            for values in reversed(uniques):
                value, index = divmod(value, len(values))
                key.append(values[index])
            lookup[i] = self._ids.setdefault(tuple(reversed(key)), len(self._ids))
        days = np.asarray(part["trade_date"].astype(str).to_numpy(), dtype="datetime64[D]").astype(np.int32)
        classes = bar_classes(*(_numbers(part, n) for n in ("volume", "amount", "low", "high")))
        scale = volume_scale(*(_numbers(part, n) for n in ("volume", "amount", "close"))).astype(np.float32)
        self._parts.append((lookup[codes], days, classes, scale))

    def outcome(self, outcome, max_samples: int) -> None:
        import numpy as np

        if not self._parts:
            return
        series, days, classes, scale = (np.concatenate(cols) for cols in zip(*self._parts, strict=True))
        self._parts = []
        proof = prove_units(series, days, classes, scale)
        keys = list(self._ids)
        expected_code = np.array(
            [UNIT_CODES.get(self.expected.get(keys[i][1]), -1) if isinstance(keys[i][1], str) else -1
             for i in proof.series], dtype=np.int8,
        )
        judged_bar = (expected_code[proof.group] >= 0) & (classes[proof.order] != ABSENT)
        wrong_bar = judged_bar & (proof.bar_unit != expected_code[proof.group])
        outcome.checked += int(judged_bar.sum())
        outcome.failing += int(wrong_bar.sum())
        wrong_per_series = np.bincount(proof.group[wrong_bar], minlength=len(proof.series))
        for index in np.argsort(-wrong_per_series, kind="stable"):
            symbol, data_source, period = keys[proof.series[index]]
            unit = UNIT_NAMES[int(proof.unit[index])]
            row = self.breakdown.setdefault(
                str(data_source), {"expected": self.expected.get(data_source), "shares": 0, "lots": 0,
                                   "unknown": 0, "no evidence": 0, "changed": 0}
            )
            row[unit] += 1
            row["changed"] += int(proof.changes[index] > 0)
            wrong = int(wrong_per_series[index])
            if wrong and len(outcome.samples) < max_samples:
                outcome.samples.append({
                    "key": {"symbol": symbol, "data_source": data_source, "period": period},
                    "value": {"unit": unit, "expected": self.expected.get(data_source)},
                    "reason": _reason(proof, index, unit, self.expected.get(data_source), wrong),
                })


def _reason(proof, index: int, unit: str, expected: str | None, wrong: int) -> str:
    import numpy as np

    if proof.unit[index] == NEITHER:
        text = "the latest bars fit neither unit (amount/volume outside [low, high] in shares and in lots)"
    else:
        test = "amount/volume" if proof.unit[index] == IN_SHARES else "amount/(volume*100)"
        text = f"volume in {unit}: {test} within [low, high] on the {int(proof.votes[index])} latest traded-basis bars"
    if proof.changes[index]:
        latest = np.datetime64(int(proof.last_change[index]), "D")
        text += f"; the unit changes {int(proof.changes[index])} time(s) in its history, latest on {latest}"
    return f"{text}; {wrong} bar(s) not in {expected} (expected for this data_source)"

