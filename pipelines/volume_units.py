"""The dataset-level ``volume_unit`` rule of validate: units proven per (symbol, data_source, period).

validate streams chunks in any order (the store yields them in insertion order,
usually day by day across all symbols), and a series' unit needs its whole
history in day order (the latest traded-basis bars vote; a unit change is a jump
between consecutive bars). So each bar is reduced to 13 bytes (series id, day,
bar class, volume scale) and the bars are partitioned by series into
:data:`PARTITIONS` groups: held in memory up to ``spill_bars`` bars, then
appended to one temporary file per group. At the end each group is read back
and proven on its own with :func:`tacn.validators.units.prove_units` (a series never
spans groups), so memory holds the buffer plus one group (about 1/256 of the
bars), not every bar: the verdicts are those of proving all bars at once.
The logic of a unit lives in :mod:`tacn.validators.units`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tacn.validators.units import (
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
    import numpy as np
    import pandas as pd

SERIES_FIELDS = ("symbol", "data_source", "period")
PARTITIONS = 256  # groups of series proven one at a time
SPILL_BARS = 500_000  # bars held in memory (13 bytes each) before they go to the temporary files
_BAR_FIELDS = [("series", "<i4"), ("day", "<i4"), ("cls", "i1"), ("scale", "<f4")]  # packed: 13 bytes


def _numbers(frame, name):
    from tacn.validators.rules import as_number, column

    return as_number(column(frame, name)).to_numpy()


class VolumeUnits:
    """Accumulates bars chunk by chunk; :meth:`outcome` fills the rule's counts and samples.

    ``partitions`` and ``spill_bars`` exist for tests (small values exercise the files).
    """

    def __init__(self, expected: dict[str, str] | None = None, *, partitions: int = PARTITIONS,
                 spill_bars: int = SPILL_BARS) -> None:
        self.expected = dict(APP_UNITS if expected is None else expected)
        self.partitions = partitions
        self.spill_bars = spill_bars
        self._ids: dict[tuple, int] = {}
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._spill = None  # tempfile.TemporaryDirectory once bars went to disk
        self.breakdown: dict[str, dict[str, Any]] = {}

    def add(self, frame: pd.DataFrame, valid_date: pd.Series) -> None:
        import numpy as np
        import pandas as pd

        from tacn.validators.rules import column

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
        bars = np.empty(len(part), dtype=_BAR_FIELDS)
        bars["series"] = lookup[codes]
        bars["day"] = np.asarray(part["trade_date"].astype(str).to_numpy(), dtype="datetime64[D]").astype(np.int32)
        bars["cls"] = bar_classes(*(_numbers(part, n) for n in ("volume", "amount", "low", "high")))
        bars["scale"] = volume_scale(*(_numbers(part, n) for n in ("volume", "amount", "close")))
        self._buffer.append(bars)
        self._buffered += len(bars)
        if self._buffered > self.spill_bars:
            self._write(self._take())

    def _take(self) -> np.ndarray:
        import numpy as np

        bars = np.concatenate(self._buffer) if self._buffer else np.empty(0, dtype=_BAR_FIELDS)
        self._buffer, self._buffered = [], 0
        return bars

    def _split(self, bars: np.ndarray):
        """(group, its bars in arrival order) for every non-empty group."""
        import numpy as np

        group = bars["series"] % self.partitions
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(self.partitions + 1))
        for p in range(self.partitions):
            if bounds[p] < bounds[p + 1]:
                yield p, bars[order[bounds[p]:bounds[p + 1]]]

    def _write(self, bars: np.ndarray) -> None:
        import tempfile
        from pathlib import Path

        from tacn.pipelines.errors import StoreError

        try:
            if self._spill is None:
                self._spill = tempfile.TemporaryDirectory(prefix="tacn-volume-unit-")
            for p, group in self._split(bars):
                with (Path(self._spill.name) / f"{p}.bars").open("ab") as handle:
                    group.tofile(handle)
        except OSError as exc:
            raise StoreError(
                f"volume_unit could not spill its bars to a temporary file ({exc.strerror or exc}"
                f"{': ' + exc.filename if getattr(exc, 'filename', None) else ''}): set TMPDIR to a writable "
                "folder with room, or leave the rule out with --rules"
            ) from None

    def _groups(self):
        """Every group's bars in arrival order, one group at a time; the temporary files are removed after."""
        from pathlib import Path

        import numpy as np

        bars = self._take()
        if self._spill is None:
            for _, group in self._split(bars):
                yield group
            return
        self._write(bars)
        try:
            for p in range(self.partitions):
                path = Path(self._spill.name) / f"{p}.bars"
                if path.exists():
                    yield np.fromfile(path, dtype=_BAR_FIELDS)
        finally:
            self._spill.cleanup()
            self._spill = None

    def outcome(self, outcome, max_samples: int) -> None:
        import numpy as np

        count = len(self._ids)
        if not count:
            return
        keys = list(self._ids)
        expected_code = np.array(
            [UNIT_CODES.get(self.expected.get(key[1]), -1) if isinstance(key[1], str) else -1 for key in keys],
            dtype=np.int8,
        )
        # per series (by id): what the proof says of it and how many of its bars are wrong
        unit = np.full(count, ABSENT, dtype=np.int8)
        votes, changes, wrong = (np.zeros(count, dtype=np.int64) for _ in range(3))
        last_change = np.full(count, -1, dtype=np.int64)
        for bars in self._groups():
            proof = prove_units(bars["series"], bars["day"], bars["cls"], bars["scale"])
            expected = expected_code[proof.series]
            judged_bar = (expected[proof.group] >= 0) & (bars["cls"][proof.order] != ABSENT)
            wrong_bar = judged_bar & (proof.bar_unit != expected[proof.group])
            outcome.checked += int(judged_bar.sum())
            outcome.failing += int(wrong_bar.sum())
            unit[proof.series] = proof.unit
            votes[proof.series] = proof.votes
            changes[proof.series] = proof.changes
            last_change[proof.series] = proof.last_change
            wrong[proof.series] = np.bincount(proof.group[wrong_bar], minlength=len(proof.series))
        for index in np.argsort(-wrong, kind="stable"):
            symbol, data_source, period = keys[index]
            name = UNIT_NAMES[int(unit[index])]
            row = self.breakdown.setdefault(
                str(data_source), {"expected": self.expected.get(data_source), "shares": 0, "lots": 0,
                                   "unknown": 0, "no evidence": 0, "changed": 0}
            )
            row[name] += 1
            row["changed"] += int(changes[index] > 0)
            if wrong[index] and len(outcome.samples) < max_samples:
                outcome.samples.append({
                    "key": {"symbol": symbol, "data_source": data_source, "period": period},
                    "value": {"unit": name, "expected": self.expected.get(data_source)},
                    "reason": _reason(int(unit[index]), int(votes[index]), int(changes[index]),
                                      int(last_change[index]), self.expected.get(data_source), int(wrong[index])),
                })


def _reason(unit: int, votes: int, changes: int, last_change: int, expected: str | None, wrong: int) -> str:
    import numpy as np

    if unit == NEITHER:
        text = "the latest bars fit neither unit (amount/volume outside [low, high] in shares and in lots)"
    else:
        test = "amount/volume" if unit == IN_SHARES else "amount/(volume*100)"
        text = f"volume in {UNIT_NAMES[unit]}: {test} within [low, high] on the {votes} latest traded-basis bars"
    if changes:
        text += f"; the unit changes {changes} time(s) in its history, latest on {np.datetime64(last_change, 'D')}"
    return f"{text}; {wrong} bar(s) not in {expected} (expected for this data_source)"
