"""The validate job: stream records from the store or a file through the rules; merge counts and samples.

Memory stays flat: records are read in chunks, each chunk is judged with the
vectorised masks of :mod:`tacn.validators.rules` and then dropped. What survives a
chunk is small: counts, up to ``max_samples`` samples per rule, and for the
cross-chunk key check one 8-byte hash per distinct key (see :class:`SeenKeys`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tacn.pipelines.errors import StoreUnavailable, UsageError
from tacn.pipelines.progress import ProgressReport
from tacn.pipelines.stores.base import RecordFilter
from tacn.validators.records import DOCUMENT_VERSION, KEY_FIELDS
from tacn.validators.rules import (
    DATASET,
    HIDDEN_COLUMNS,
    ROW_COLUMN,
    RULES,
    RULES_BY_NAME,
    CheckContext,
    Rule,
    explain,
    flatten_nested,
    select_rules,
)
from tacn.validators.schemas import Verdict, judge, quote_schema

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

THRESHOLDS = ("error", "warning")
_RANK = {"warning": 1, "error": 2}
DEFAULT_CHUNK_SIZE = 100_000
DEFAULT_MAX_SAMPLES = 5
_TEXT_FIELDS = ("symbol", "code", "full_symbol", "market", "trade_date", "period", "data_source")
_TIMESTAMP_FIELDS = ("created_at", "updated_at")


class TargetUnreadable(StoreUnavailable):
    """The file to validate cannot be read (missing, not a table, malformed). Exit 3."""

    kind = "target_unreadable"


@dataclass
class ValidateOptions:
    flt: RecordFilter = field(default_factory=RecordFilter)
    rules: tuple[str, ...] | None = None  # None: every rule (completeness only when asked)
    threshold: str = "error"
    max_samples: int = DEFAULT_MAX_SAMPLES
    chunk_size: int = DEFAULT_CHUNK_SIZE
    completeness: bool = False
    failures_out: Path | None = None
    now_utc: datetime | None = None  # the clock the rules judge against (tests pin it)
    volume_units: dict[str, str] | None = None  # expected unit per data_source (None: the application's)
    observers: list = field(default_factory=list)  # extra per-chunk consumers: .add(frame, masks) (reports)
    layout: str | None = None  # files: force akshare | tushare | document (default: from the columns)
    file_type: str | None = None  # files: force csv | jsonl | parquet (default: extension, or a stream's first bytes)
    stream_wait_s: float = 5.0  # a FIFO nobody writes to is given up after this long


@dataclass
class RuleOutcome:
    name: str
    severity: str
    description: str
    scope: str
    failing: int = 0  # records (key_unique: repeated keys; completeness: missing trading days)
    checked: int = 0  # the denominator of share
    samples: list[dict] = field(default_factory=list)
    fails_run: bool = False  # at or above the threshold with failures

    @property
    def share(self) -> float:
        return self.failing / self.checked if self.checked else 0.0


@dataclass
class ValidationResult:
    target: dict  # {"kind": "store"|"file", "name": masked URL or path, "format": …}
    filters: dict
    threshold: str
    records: int
    rules: list[RuleOutcome]
    skipped_rules: list[str]
    failing_records: dict[str, int]  # per severity: records failing at least one rule of it
    duration_s: float
    chunks: int
    failures_out: dict | None = None  # {"path", "records"}
    volume_units: dict | None = None  # per data_source: expected unit and series per proven unit

    @property
    def passed(self) -> bool:
        return not any(r.fails_run for r in self.rules)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["verdict"] = "pass" if self.passed else "fail"
        for rule, outcome in zip(out["rules"], self.rules, strict=True):
            rule["share"] = round(outcome.share, 6)
        out["duration_s"] = round(self.duration_s, 3)
        return out


# -- cross-chunk key uniqueness -------------------------------------------------------


class SeenKeys:
    """Hashes of every key seen so far, for duplicate detection across chunks.

    One uint64 per distinct key, in 256 sorted buckets (by the hash's top byte)
    so that adding a chunk copies one bucket at a time, never the whole set:
    5M keys cost 40 MB, with no doubling while merging. A 64-bit collision
    (about 1 in 10^6 at 5M keys) would report one false duplicate.
    """

    BUCKETS = 256

    def __init__(self) -> None:
        import numpy as np

        self._buckets = [np.empty(0, dtype=np.uint64) for _ in range(self.BUCKETS)]
        self.distinct = 0

    def add(self, hashes: np.ndarray) -> np.ndarray:
        """Record ``hashes``; True where a hash was seen before (earlier chunk or earlier in this one)."""
        import numpy as np
        import pandas as pd

        repeated = pd.Series(hashes).duplicated().to_numpy()  # later repeats within the chunk (hashed in C)
        order = np.argsort(hashes)  # no stable sort needed: `repeated` already says which repeat came first
        sorted_hashes = hashes[order]
        top = (sorted_hashes >> np.uint64(56)).astype(np.intp)
        edges = np.searchsorted(top, np.arange(self.BUCKETS + 1)).tolist()
        seen_sorted = np.zeros(len(hashes), dtype=bool)
        for bucket in range(self.BUCKETS):
            lo, hi = edges[bucket], edges[bucket + 1]
            known = self._buckets[bucket]
            if lo == hi or not len(known):
                continue
            part = sorted_hashes[lo:hi]
            pos = np.searchsorted(known, part)
            np.minimum(pos, len(known) - 1, out=pos)
            seen_sorted[lo:hi] = known[pos] == part
        # the chunk's new distinct hashes, still sorted: unseen and not equal to their sorted neighbour
        fresh = ~seen_sorted
        fresh[1:] &= sorted_hashes[1:] != sorted_hashes[:-1]
        fresh_hashes = sorted_hashes[fresh]
        fresh_edges = np.searchsorted(fresh_hashes >> np.uint64(56), np.arange(self.BUCKETS + 1, dtype=np.uint64)).tolist()
        for bucket in range(self.BUCKETS):
            lo, hi = fresh_edges[bucket], fresh_edges[bucket + 1]
            if lo == hi:
                continue
            merged = np.concatenate((self._buckets[bucket], fresh_hashes[lo:hi]))
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            self._buckets[bucket] = merged
        self.distinct += len(fresh_hashes)
        seen = np.empty(len(hashes), dtype=bool)
        seen[order] = seen_sorted
        return seen | repeated


def key_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A uint64 per row from the key fields. Values of different types stay apart (1 is not "1").

    pandas hashes 1 and "1" alike, so a row holding a non-string key value gets
    the hash of its types mixed in; all-string rows keep the plain hash, which
    is the same whatever dtype a chunk's column happens to have.
    """
    import numpy as np
    import pandas as pd

    from tacn.validators.rules import column

    def hashable(values):
        # str-dtype columns hash as their object form does, without the copy: pandas hashes the Arrow
        # dictionary's few distinct values, and a missing value as it hashes None or NaN in an object column
        if values.dtype != object and pd.api.types.is_string_dtype(values.dtype):
            return values
        return values.astype(object)

    keys = pd.DataFrame({name: hashable(column(frame, name)) for name in KEY_FIELDS}, index=frame.index)
    hashes = pd.util.hash_pandas_object(keys, index=False).to_numpy().copy()
    for position, name in enumerate(KEY_FIELDS):
        values = frame[name] if name in frame.columns else keys[name]
        if values.dtype != object and pd.api.types.is_string_dtype(values.dtype):
            other = values.isna().to_numpy()
            if not other.any():
                continue
            kinds = np.full(len(values), "NoneType", dtype=object)
        else:
            kinds = values.map(lambda v: type(v).__name__).to_numpy(dtype=object)
            other = kinds != "str"
        if other.any():
            tags = pd.util.hash_array(kinds[other]) * np.uint64(2 * position + 3)
            hashes[other] = hashes[other] ^ tags
    return hashes


# -- completeness -----------------------------------------------------------------------


class Completeness:
    """Valid daily trade_dates per (symbol, data_source, period), as day numbers."""

    def __init__(self) -> None:
        self._days: dict[tuple, list] = {}

    def add(self, frame: pd.DataFrame, valid_date: pd.Series) -> None:
        import numpy as np

        from tacn.validators.rules import column

        period = column(frame, "period")
        judged = valid_date & period.eq("daily").fillna(False).astype(bool)
        if not judged.any():
            return
        part = frame.loc[judged, ["symbol", "data_source", "period", "trade_date"]]
        days = np.asarray(part["trade_date"].astype(str).to_numpy(), dtype="datetime64[D]").astype(np.int32)
        for group, idx in part.groupby(["symbol", "data_source", "period"], sort=False, dropna=False).indices.items():
            self._days.setdefault(group, []).append(days[idx])

    def outcome(self, outcome: RuleOutcome, max_samples: int) -> None:
        import numpy as np

        from tacn.validators.calendar import session_set

        sessions = np.sort(np.asarray(sorted(session_set()), dtype="datetime64[D]").astype(np.int32))
        _refuse_past_calendar_end(self._days, int(sessions[-1]))
        for (symbol, data_source, period), parts in sorted(self._days.items(), key=lambda kv: tuple(map(str, kv[0]))):
            days = np.unique(np.concatenate(parts))
            expected = sessions[(sessions >= days[0]) & (sessions <= days[-1])]
            missing = np.setdiff1d(expected, days, assume_unique=True)
            outcome.checked += len(expected)
            outcome.failing += len(missing)
            if len(missing) and len(outcome.samples) < max_samples:
                as_text = [str(d) for d in missing[:5].astype("datetime64[D]")]
                outcome.samples.append(
                    {
                        "key": {"symbol": symbol, "data_source": data_source, "period": period},
                        "value": as_text,
                        "reason": f"{len(missing)} of {len(expected)} trading days missing between "
                        f"{np.datetime64(int(days[0]), 'D')} and {np.datetime64(int(days[-1]), 'D')}",
                    }
                )


def _refuse_past_calendar_end(days_by_series: dict, last_session: int) -> None:
    """Completeness cannot count sessions after the calendar's last one: exit 3, not a pass."""
    import numpy as np

    from tacn.pipelines.errors import CalendarEnded

    for (symbol, data_source, _), parts in days_by_series.items():
        latest = max(int(part.max()) for part in parts)
        if latest > last_session:
            raise CalendarEnded(f"completeness: {symbol} {data_source} has records up to "
                                f"{np.datetime64(latest, 'D')}, after the XSHG calendar's last session")


# -- reading targets ---------------------------------------------------------------------


def restore_text_types(frame: pd.DataFrame) -> pd.DataFrame:
    """A CSV holds text: number and timestamp fields that pandas could not type go back to their types.

    A column pandas read as numbers is kept as it is. A column that stayed text
    (one value in it is not a number) is converted value by value: what parses
    becomes a number or a naive UTC datetime, what does not stays the original
    text, so it fails a type rule with its row instead of becoming a null.
    """
    import pandas as pd

    from tacn.validators.records import FIELDS

    for spec in FIELDS:
        if spec.name not in frame.columns or spec.kind == "str":
            continue
        raw = frame[spec.name]
        if spec.kind == "datetime":
            if pd.api.types.is_datetime64_any_dtype(raw.dtype):
                continue
            parsed = _naive_timestamps(raw)
            if parsed is not None:
                frame[spec.name] = parsed
                continue
            parsed = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce").dt.tz_localize(None)
        else:
            if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
                continue
            parsed = pd.to_numeric(raw, errors="coerce")
        unparsed = raw.notna() & parsed.isna()
        if unparsed.any():
            parsed = parsed.astype(object)
            parsed[unparsed] = raw[unparsed]
        frame[spec.name] = parsed
    return frame


def _naive_timestamps(raw: pd.Series) -> pd.Series | None:
    """A text column of ISO 8601 timestamps without a zone, parsed by Arrow in C, or None where Arrow
    refuses any value (a zone offset, a form it does not know, an impossible date): pandas' parser then
    judges each value. Where Arrow parses them all it gives what pandas' gives (a test compares them)."""
    import pandas as pd

    from tacn.validators.dates import arrow_strings

    values = arrow_strings(raw)
    if values is None:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        parsed = pc.cast(values, pa.timestamp("ns"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.Series(parsed.to_numpy(zero_copy_only=False), index=raw.index, name=raw.name)


def file_documents(source, options: ValidateOptions, *, now: datetime | None = None,
                   meter=None) -> Iterator[pd.DataFrame]:
    """A file's rows as document frames, read by the same reader as sync (``tacn.pipelines.sources.files``).

    A document-layout file (an export of the collection) is judged strictly as
    stored records. An AKShare or Tushare file is converted exactly as sync
    converts it; the conversion's own rejects fail ``row_readable`` (a date it
    refuses keeps its original value, so ``trade_date_iso`` says why).
    Each frame carries ``__row`` (1-based row of the file) and, where a row
    could not be read or converted, ``__problem``. ``meter`` (a
    :class:`~tacn.pipelines.sources.files.ReadMeter`) follows how far the file is read.
    """
    import pandas as pd

    from tacn.pipelines.sources.files import UNPARSEABLE, iter_frames
    from tacn.validators.rules import PROBLEM_COLUMN, ROW_COLUMN
    from tacn.validators.source_layouts import DATE_COLUMN, LayoutError, convert_frame

    symbols = options.flt.symbols
    fill_symbol = symbols[0] if symbols and len(symbols) == 1 else None
    for raw in iter_frames(source, chunk_rows=options.chunk_size, meter=meter):
        problems: dict = {}
        if UNPARSEABLE in raw.columns:
            bad = raw[UNPARSEABLE].notna().to_numpy(dtype=bool)
            problems = dict(zip(raw.index[bad], raw[UNPARSEABLE][bad], strict=True))
            raw = raw.drop(columns=[UNPARSEABLE])
        raw = raw.reindex(columns=list(dict.fromkeys([*source.columns, *raw.columns])))
        if source.layout == "document":
            frame = restore_text_types(raw) if source.file_type == "csv" else raw
        else:
            try:
                converted = convert_frame(raw, source.layout, symbol=fill_symbol, now=now)
            except LayoutError as exc:
                raise UsageError(f"{source.path}: {exc}") from None
            frame = converted.frame
            # the stamps and version sync writes (tacn.validators.source_layouts.documents)
            frame["created_at"] = frame["updated_at"] = converted.now
            frame["version"] = DOCUMENT_VERSION
            date_column = raw[DATE_COLUMN[source.layout]]
            refused_dates = []
            for label, reasons in converted.problems.items():
                rest = [r for r in reasons if not r.startswith("trade_date_iso:")]
                if len(rest) < len(reasons):
                    refused_dates.append(label)
                if rest and label not in problems:
                    problems[label] = "; ".join(rest)
            if refused_dates:  # the original value, for trade_date_iso to judge and show
                frame["trade_date"] = frame["trade_date"].astype(object)
                frame.loc[refused_dates, "trade_date"] = date_column.loc[refused_dates].astype(object)
        frame[ROW_COLUMN] = frame.index + 1
        if problems:
            frame[PROBLEM_COLUMN] = pd.Series(problems, dtype=object).reindex(frame.index)
        yield filter_frame(frame.reset_index(drop=True), options.flt)


def filter_frame(frame: pd.DataFrame, flt: RecordFilter) -> pd.DataFrame:
    """The store's RecordFilter applied to a file's rows (same meaning as the stores' queries)."""
    from tacn.validators.rules import as_naive_utc, column, is_text

    keep = None

    def narrow(mask):
        nonlocal keep
        mask = mask.fillna(False).astype(bool)
        keep = mask if keep is None else keep & mask

    if flt.data_source is not None:
        narrow(column(frame, "data_source").eq(flt.data_source))
    if flt.period is not None:
        narrow(column(frame, "period").eq(flt.period))
    if flt.symbols is not None:
        narrow(column(frame, "symbol").isin(flt.symbols))
    if flt.start is not None or flt.end is not None:
        dates = column(frame, "trade_date")
        text = dates.where(is_text(dates)).astype("string")
        if flt.start is not None:
            narrow(text >= flt.start)
        if flt.end is not None:
            narrow(text <= flt.end)
    if flt.updated_since is not None:
        import pandas as pd

        narrow(as_naive_utc(column(frame, "updated_at")) >= pd.Timestamp(flt.updated_since))
    return frame if keep is None else frame[keep]


# -- judging ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-friendly Python value for samples and failures files (NaN/NaT → None)."""
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return None if value is pd.NaT else value.to_pydatetime()
    if value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes | dict | list):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
        return None if isinstance(value, float) and value != value else value
    return value


def _record(frame: pd.DataFrame, position: int) -> dict:
    """The row as a dict (hidden columns included: explain() reads __problem and __nested)."""
    row = frame.iloc[position]
    return {name: _plain(value) for name, value in row.items() if name != ROW_COLUMN}


def _sample(rule: Rule, frame: pd.DataFrame, position: int, ctx: CheckContext) -> dict:
    record = _record(frame, position)
    fields = rule.fields
    value = record.get(fields[0]) if len(fields) == 1 else {name: record.get(name) for name in fields}
    sample = {"key": {name: record.get(name) for name in KEY_FIELDS}, "value": value}
    sample["reason"] = "key already seen" if rule.name == "key_unique" else explain(rule.name, record, context=ctx)
    if "_id" in record:
        sample["_id"] = str(record["_id"])
    if ROW_COLUMN in frame.columns:
        sample["row"] = int(frame[ROW_COLUMN].iloc[position])
    return sample


class _FailuresWriter:
    """Every failing record as one JSON line: {"rules": [...], "row"?: n, "document": {...}} (Extended JSON)."""

    def __init__(self, path: Path):
        self.path = path
        self.records = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write --failures-out {path}: {exc.strerror or exc}") from None

    def write(self, frame: pd.DataFrame, masks: dict[str, np.ndarray]) -> None:
        import numpy as np
        from bson import json_util

        names = list(masks)
        matrix = np.column_stack(list(masks.values()))
        for position in np.flatnonzero(matrix.any(axis=1)):
            line: dict[str, Any] = {"rules": [names[i] for i in np.flatnonzero(matrix[position])]}
            if ROW_COLUMN in frame.columns:
                line["row"] = int(frame[ROW_COLUMN].iloc[position])
            line["document"] = _failure_document(_record(frame, position))
            self._handle.write(json_util.dumps(line, json_options=json_util.RELAXED_JSON_OPTIONS) + "\n")
            self.records += 1

    def close(self) -> None:
        self._handle.close()


def _failure_document(doc: dict) -> dict:
    """The record as --failures-out writes it with bson's relaxed Extended JSON: hidden columns dropped."""
    out = {}
    for name, value in doc.items():
        if name in HIDDEN_COLUMNS:
            continue
        if isinstance(value, date) and not isinstance(value, datetime):
            value = value.isoformat()  # BSON has no bare date
        out[name] = value
    return out


def _selected(options: ValidateOptions) -> tuple[list[Rule], list[str]]:
    try:
        chosen = list(select_rules(rules=options.rules))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if options.threshold not in THRESHOLDS:
        raise UsageError(f"--severity-threshold must be one of {', '.join(THRESHOLDS)}, got {options.threshold!r}")
    if options.rules is None and not options.completeness:
        chosen = [r for r in chosen if not r.opt_in]
    elif options.rules is not None and options.completeness and "completeness" not in options.rules:
        chosen.append(RULES_BY_NAME["completeness"])
        chosen.sort(key=RULES.index)
    skipped = [r.name for r in RULES if r not in chosen]
    return chosen, skipped


def _check_sizes(options: ValidateOptions) -> None:
    if options.chunk_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if options.max_samples < 0:
        raise UsageError("--max-samples must be 0 or more")


def validate_frames(
    frames: Iterable[pd.DataFrame],
    options: ValidateOptions,
    *,
    target: dict,
    filters: dict,
    on_chunk: Callable[[int], None] | None = None,
) -> ValidationResult:
    """Judge a stream of document frames; the core of :func:`validate_store` and :func:`validate_file`."""
    import numpy as np

    _check_sizes(options)
    started = time.perf_counter()
    chosen, skipped = _selected(options)
    ctx = CheckContext(now_utc=options.now_utc) if options.now_utc else CheckContext()
    outcomes = {r.name: RuleOutcome(r.name, r.severity, r.description, r.scope) for r in chosen}
    row_rules = [r.name for r in chosen if r.scope != DATASET]
    seen = SeenKeys() if "key_unique" in outcomes else None
    completeness = Completeness() if "completeness" in outcomes else None
    units = None
    if "volume_unit" in outcomes:
        from tacn.pipelines.volume_units import VolumeUnits

        units = VolumeUnits(options.volume_units)
    writer = _FailuresWriter(options.failures_out) if options.failures_out else None
    failing_records = dict.fromkeys(THRESHOLDS, 0)
    records = chunks = 0
    schema = quote_schema(rules=row_rules, context=ctx, samples=options.max_samples) if row_rules else None
    try:
        for frame in frames:
            if frame.empty:
                continue
            frame = flatten_nested(frame.reset_index(drop=True))
            chunks += 1
            records += len(frame)
            rows = len(frame)
            verdict = judge(schema, frame) if schema is not None else Verdict()
            masks = {name: verdict.mask(name, rows) for name in row_rules}
            sample_at = dict(verdict.samples)
            if seen is not None:
                masks["key_unique"] = seen.add(key_hashes(frame))
                sample_at["key_unique"] = [int(p) for p in np.flatnonzero(masks["key_unique"])[: options.max_samples]]
            if completeness is not None or units is not None:
                date_ok = _series(~masks["trade_date_iso"], frame) if "trade_date_iso" in masks \
                    else _valid_dates(frame, ctx)
                if completeness is not None:
                    completeness.add(frame, date_ok)
                if units is not None:
                    units.add(frame, date_ok)
            if options.observers:  # reports take the masks as Series aligned to the chunk
                as_series = {name: _series(mask, frame) for name, mask in masks.items()}
                for observer in options.observers:
                    observer.add(frame, as_series)
            for severity in THRESHOLDS:
                same = [m for name, m in masks.items() if outcomes[name].severity == severity]
                if same:
                    failing_records[severity] += int(np.logical_or.reduce(same).sum())
            for name, bad in masks.items():
                outcome = outcomes[name]
                outcome.checked += rows
                count = int(bad.sum())
                outcome.failing += count
                need = options.max_samples - len(outcome.samples)
                if count and need > 0:
                    rule = RULES_BY_NAME[name]
                    outcome.samples.extend(_sample(rule, frame, p, ctx) for p in sample_at.get(name, [])[:need])
            if writer is not None and masks:
                writer.write(frame, masks)
            if on_chunk is not None:
                on_chunk(rows)
    finally:
        if writer is not None:
            writer.close()
    if completeness is not None:
        completeness.outcome(outcomes["completeness"], options.max_samples)
    if units is not None:
        units.outcome(outcomes["volume_unit"], options.max_samples)
    for outcome in outcomes.values():
        outcome.fails_run = outcome.failing > 0 and _RANK[outcome.severity] >= _RANK[options.threshold]
    return ValidationResult(
        target=target,
        filters=filters,
        threshold=options.threshold,
        records=records,
        rules=[outcomes[r.name] for r in chosen],
        skipped_rules=skipped,
        failing_records=failing_records,
        duration_s=time.perf_counter() - started,
        chunks=chunks,
        failures_out=None if writer is None else {"path": str(writer.path), "records": writer.records},
        volume_units=None if units is None else units.breakdown,
    )


def _series(values, frame):
    import pandas as pd

    return pd.Series(values, index=frame.index)


def _valid_dates(frame, ctx):
    from tacn.validators.dates import valid_iso_mask
    from tacn.validators.rules import column

    return valid_iso_mask(column(frame, "trade_date"), now=ctx.now_utc)


def validate_store(store, options: ValidateOptions, *, progress: ProgressReport | None = None) -> ValidationResult:
    """Validate the store's records (narrowed by ``options.flt``), chunk by chunk.

    With ``progress`` (reported after each chunk), the selection is counted first (one more query) so that each report has a total.
    """
    on_chunk = None
    if progress is not None:
        total, done = store.count(options.flt), 0

        def on_chunk(records: int) -> None:
            nonlocal done
            done += records
            progress(done, total, "records")

    frames = store.iter_frames(options.flt, chunk_size=options.chunk_size)
    target = {"kind": "store", "name": store.display_url, "format": store.kind}
    return validate_frames(frames, options, target=target, filters=options.flt.describe(), on_chunk=on_chunk)


@contextmanager
def _unreadable_as_target_error():
    """A file that cannot be read is the target that cannot be read (exit 3), with the reader's message."""
    from tacn.pipelines.errors import SourceError

    try:
        yield
    except SourceError as exc:
        raise TargetUnreadable(str(exc)) from None


def _open_file(path: Path | str, options: ValidateOptions):
    from tacn.pipelines.sources.files import open_file_source

    with _unreadable_as_target_error():
        return open_file_source(path, file_type=options.file_type, layout=options.layout,
                                wait_s=options.stream_wait_s)


def _documents_of(source, options: ValidateOptions, meter=None) -> Iterator[pd.DataFrame]:
    with _unreadable_as_target_error():
        yield from file_documents(source, options, now=options.now_utc, meter=meter)


def read_file_documents(path: Path | str, options: ValidateOptions) -> Iterator[pd.DataFrame]:
    """A file's rows as document frames, as validate judges them (for other jobs: reconcile's file pairs).

    Frames carry the hidden columns of :data:`tacn.validators.rules.HIDDEN_COLUMNS`; unreadable files raise
    :class:`TargetUnreadable` (exit 3), unknown types or layouts :class:`UsageError` (exit 2).
    """
    yield from _documents_of(_open_file(path, options), options)


def validate_file(path: Path | str, options: ValidateOptions, *, progress: ProgressReport | None = None
                  ) -> ValidationResult:
    """Validate a CSV, Parquet or JSON Lines file (mongoexport output, a pipe or FIFO included), chunk by chunk.

    The file is read by sync's reader: the same type and layout detection
    (``options.file_type``/``options.layout`` force them), the same conversion.
    ``progress`` reports bytes read of the file's size (rows for Parquet; no total for a pipe).
    """
    from tacn.pipelines.read_ahead import ReadAhead
    from tacn.pipelines.sources.files import ReadMeter

    _check_sizes(options)
    source = _open_file(path, options)
    target = {"kind": "file", "name": str(path), "format": source.file_type, "layout": source.layout}
    meter = ReadMeter()
    on_chunk = None if progress is None else (lambda records: progress(meter.done, meter.total, meter.unit))
    # The first chunk is read and converted while pandera is imported and the schema built.
    with ReadAhead(_documents_of(source, options, meter), name="tacn-file-documents") as documents:
        return validate_frames(documents, options, target=target, filters=options.flt.describe(),
                               on_chunk=on_chunk)


# -- reports -----------------------------------------------------------------------------------


def junit_xml(result: ValidationResult) -> str:
    """JUnit XML: one testcase per catalogue rule; failures at or above the threshold carry counts and samples."""
    import xml.etree.ElementTree as ET

    from tacn.pipelines.extjson import jsonable

    failures = sum(1 for r in result.rules if r.fails_run)
    suites = ET.Element("testsuites", name="tacn validate", tests=str(len(RULES)), failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"tacn validate {result.target['name']}",
        tests=str(len(RULES)),
        failures=str(failures),
        errors="0",
        skipped=str(len(result.skipped_rules)),
        time=f"{result.duration_s:.3f}",
        timestamp=datetime.now().isoformat(timespec="seconds"),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("records", result.records), ("threshold", result.threshold),
                        ("target", result.target["name"]), ("filters", json.dumps(result.filters))):
        ET.SubElement(props, "property", name=name, value=str(value))
    outcomes = {r.name: r for r in result.rules}
    for rule in RULES:
        case = ET.SubElement(suite, "testcase", classname=f"tacn.validate.{rule.severity}", name=rule.name, time="0")
        outcome = outcomes.get(rule.name)
        if outcome is None:
            ET.SubElement(case, "skipped", message="rule not selected for this run")
            continue
        summary = f"{outcome.failing} of {outcome.checked} fail: {rule.description}"
        detail = "\n".join(
            json.dumps(jsonable(s), ensure_ascii=False) for s in outcome.samples
        )
        if outcome.fails_run:
            failure = ET.SubElement(case, "failure", message=summary, type=rule.severity)
            failure.text = detail
        elif outcome.failing:
            ET.SubElement(case, "system-out").text = f"{rule.severity} below the threshold: {summary}\n{detail}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
