"""Remove records whose trade_date is invalid, without ever losing one.

The selection is the stores' own invalid-date predicate (``count_invalid_trade_date``
/ ``iter_invalid_trade_date``, the SQL / MongoDB form of tacn.validators.dates' rule),
narrowed by a :class:`RecordFilter`. A dry run only summarises. Applying first
writes every selected record to a backup (:mod:`tacn.pipelines.recovery.backup`), then deletes
in batches, recording progress in its manifest after each batch: by ``_id`` read
back from that backup, or, when the store rendered the lines itself (SQLite), by
the (rowid, ``_id``) of the row each line came from. On MongoDB only records
unchanged since the backup are deleted (:func:`delete_unchanged`), on FerretDB
mostly in one guarded pass.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tacn.pipelines.errors import StoreError, UsageError
from tacn.pipelines.progress import ProgressReport
from tacn.pipelines.recovery.backup import (
    STATE_DELETED,
    STATE_DELETING,
    Backup,
    BackupDamaged,
    encode_line,
    iter_backup_ids,
    iter_backup_stamps,
    pause_point,
    write_backup,
)
from tacn.pipelines.stores.base import QuoteStore, RecordFilter
from tacn.validators.dates import (
    KIND_DIGITS,
    InvalidTradeDate,
    classify_stored_trade_date,
    normalize_trade_date,
)

SAMPLE_SIZE = 10
DEFAULT_BATCH_SIZE = 50_000  # measured: 10,000 cost 0.25 CPU s more per 82,631 deletes (commits)
PREDICATE = "trade_date is not a valid ISO date (tacn.validators.dates: YYYY-MM-DD string, real, 1990-12-19..tomorrow)"
# A document whose updated_at is later than this before the backup's read started may have been
# written after it: MongoDB's one-pass delete leaves such documents to the id-by-id path, which
# compares their updated_at with the backed-up one. The margin covers the application's delay
# between stamping a record and its write landing (its bulk writes retry with 3+9+27+81 s of
# backoff plus five attempts' timeouts, all after the stamp), writes still in flight, and
# clock differences between the hosts that write.
STAMP_MARGIN = timedelta(hours=1)


@dataclass
class PairLoss:
    """What one (symbol, data_source, period) loses: the facts repair needs to find the span."""

    symbol: Any
    data_source: Any
    period: Any
    records: int = 0
    max_row_number: int | None = None  # trade_date "0".."N": row numbers of the broken sync
    recoverable_first: str | None = None  # dates readable from values such as "20251023"
    recoverable_last: str | None = None
    updated_last: datetime | None = None


@dataclass
class CleanResult:
    store: str
    filter: dict
    dry_run: bool
    selected: int = 0
    by_data_source: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    pairs: list[PairLoss] = field(default_factory=list)
    backup: str | None = None
    manifest: str | None = None
    deleted: int = 0
    batches: int = 0


class SelectionSummary:
    """Counts, breakdowns, samples and per-pair facts of the selected documents.

    ``add`` only tallies (pair, trade_date value) and the pair's timestamps, so it
    stays cheap per document; ``fill`` judges each distinct value once.
    """

    def __init__(self, now: datetime | None = None):
        self.now = now
        self.count = 0
        self.samples: list[dict] = []
        self._tally: Counter = Counter()  # (pair key, type, trade_date value) -> records
        self._odd: list[tuple[tuple, Any]] = []  # unhashable keys or values, judged one by one
        self._stamps: dict[tuple, list[datetime]] = {}  # pair key -> [first, last] updated_at (repair reads last)
        # pair key -> [records, max row number, first day, last day] of records summarised column-wise
        self._columns: dict[tuple, list] = {}
        self._kinds: Counter = Counter()  # their kinds
        self._judged_values: dict[tuple, tuple[str, str | None, int | None]] = {}

    def add(self, doc: dict) -> None:
        if self.count < SAMPLE_SIZE:
            self._sample(doc)
        self.count += 1
        self._tally_document(doc)

    def _sample(self, doc: dict) -> None:
        get = doc.get
        self.samples.append({"_id": str(get("_id")), "symbol": get("symbol"), "data_source": get("data_source"),
                             "period": get("period"), "trade_date": get("trade_date")})

    def _tally_document(self, doc: dict) -> None:
        get = doc.get
        value = get("trade_date")
        key = (get("symbol"), get("data_source"), get("period"))
        try:
            self._tally[(key, value.__class__, value)] += 1
        except TypeError:  # a dict or list somewhere: rare
            key = tuple(_hashable(k) for k in key)
            self._odd.append((key, value))
        stamp = get("updated_at") or get("created_at")
        if stamp.__class__ is not datetime or stamp.tzinfo is not None:
            if not isinstance(stamp, datetime):
                return
            stamp = stamp.replace(tzinfo=None)
        span = self._stamps.get(key)
        if span is None:
            self._stamps[key] = [stamp, stamp]
        elif stamp < span[0]:
            span[0] = stamp
        elif stamp > span[1]:
            span[1] = stamp

    def add_batch(self, batch) -> None:
        """Tally a batch of backup lines the store rendered itself (``RenderedBatch``): the same
        facts as :meth:`add` per document, computed column-wise over the batch's ``summary``."""
        if self.count < SAMPLE_SIZE:  # the first samples in selection order, whichever path rendered them
            firsts = sorted([*batch.firsts, *batch.decoded[:SAMPLE_SIZE]], key=lambda item: item[0])
            for _, doc in firsts[: SAMPLE_SIZE - self.count]:
                self._sample(doc)
        for _, doc in batch.decoded:
            self._tally_document(doc)
        self.count += batch.count
        self._add_columns(batch.summary)

    def _add_columns(self, table) -> None:
        """Per-pair facts of many records at once, in numpy: each distinct trade_date value is judged once
        in Python, every other step is an array operation (the incident's 82,631 records are 82,631
        distinct (symbol, value) groups, so a loop per group is what this avoids)."""
        import numpy as np

        from tacn.pipelines.stores.sqlite import parse_stored_datetime, stored_trade_date

        if table.num_rows == 0:
            return
        (symbol, symbols), (source, sources), (period, periods) = (
            _codes(table.column(name)) for name in ("symbol", "data_source", "period"))
        pair_of_row = (symbol.astype(np.int64) * len(sources) + source) * len(periods) + period
        pair_codes, pair_of_row = np.unique(pair_of_row, return_inverse=True)
        (td_type, td_types), (td, tds) = _codes(table.column("td_type")), _codes(table.column("td"))
        value_codes, value_of_row = np.unique(td_type.astype(np.int64) * len(tds) + td, return_inverse=True)
        days: list[str] = []  # the distinct days named, and the distinct row numbers ("0", "1", …)
        numbers: list[int] = []
        day_of_value, number_of_value = [], []  # per distinct value: its index in those lists, or -1
        for code, records in zip(value_codes.tolist(), np.bincount(value_of_row).tolist(), strict=True):
            kind, day, row_number = self._judged(stored_trade_date(td_types[code // len(tds)], tds[code % len(tds)]))
            self._kinds[kind] += records
            day_of_value.append(-1 if day is None else len(days))
            days += [] if day is None else [day]
            number_of_value.append(-1 if row_number is None else len(numbers))
            numbers += [] if row_number is None else [row_number]
        sorted_days, day_rank = _ranked(days, day_of_value)
        sorted_numbers, number_rank = _ranked(numbers, number_of_value)  # ranks: a digits text may pass int64
        day_rank, number_rank = day_rank[value_of_row], number_rank[value_of_row]
        stamp, stamps = _codes(table.column("stamp"))
        present = [text for text in stamps if text is not None]
        position = iter(range(len(present)))
        sorted_stamps, stamp_rank = _ranked(present, [-1 if text is None else next(position) for text in stamps])
        stamp_rank = stamp_rank[stamp]
        pairs = len(pair_codes)
        records = np.bincount(pair_of_row, minlength=pairs)
        number_max = _group_max(pair_of_row, number_rank, pairs)
        day_max, day_min = _group_max(pair_of_row, day_rank, pairs), _group_min(pair_of_row, day_rank, pairs)
        stamp_max, stamp_min = _group_max(pair_of_row, stamp_rank, pairs), _group_min(pair_of_row, stamp_rank, pairs)
        for i, code in enumerate(pair_codes.tolist()):
            code, p = divmod(code, len(periods))
            s, d = divmod(code, len(sources))
            key = (symbols[s], sources[d], periods[p])
            facts = self._columns.setdefault(key, [0, None, None, None])
            facts[0] += int(records[i])
            if number_max[i] >= 0:
                facts[1] = max(sorted_numbers[number_max[i]], facts[1] or 0)
            if day_max[i] >= 0:
                facts[2] = min(filter(None, (facts[2], sorted_days[day_min[i]])))
                facts[3] = max(filter(None, (facts[3], sorted_days[day_max[i]])))
            if stamp_max[i] >= 0:
                first = parse_stored_datetime(sorted_stamps[stamp_min[i]])
                last = parse_stored_datetime(sorted_stamps[stamp_max[i]])
                span = self._stamps.get(key)
                if span is None:
                    self._stamps[key] = [first, last]
                else:
                    span[0], span[1] = min(span[0], first), max(span[1], last)

    def _judged(self, value: Any) -> tuple[str, str | None, int | None]:
        """:meth:`_judge_row`, once per distinct value (values repeat across pairs: "0", "1", …)."""
        try:
            return self._judged_values[(value.__class__, value)]
        except KeyError:
            judged = self._judged_values[(value.__class__, value)] = self._judge_row(value)
            return judged
        except TypeError:  # unhashable
            return self._judge_row(value)

    def _judge(self, value: Any) -> tuple[str, str | None]:
        """(kind, the day the value names if any)."""
        try:  # "20251023" is digits too, but names its day
            day = normalize_trade_date(value, now=self.now)
        except InvalidTradeDate:
            day = None
        return classify_stored_trade_date(value, now=self.now), day

    def _judge_row(self, value: Any) -> tuple[str, str | None, int | None]:
        """(kind, day, the row number a digits value is when it names no day)."""
        kind, day = self._judge(value)
        return kind, day, int(value) if day is None and kind == KIND_DIGITS else None

    def fill(self, result: CleanResult) -> CleanResult:
        by_source: Counter = Counter()
        by_kind: Counter = Counter()
        pairs: dict[tuple, PairLoss] = {}
        entries = [(key, value, n) for (key, _, value), n in self._tally.items()]
        entries += [(key, value, 1) for key, value in self._odd]
        for key, value, n in entries:
            kind, day, row_number = self._judged(value)
            by_source[str(key[1])] += n
            by_kind[kind] += n
            pair = pairs.get(key)
            if pair is None:
                pair = pairs[key] = PairLoss(*(_hashable(k) for k in key))
            pair.records += n
            if day is not None:
                pair.recoverable_first = min(filter(None, (pair.recoverable_first, day)))
                pair.recoverable_last = max(filter(None, (pair.recoverable_last, day)))
            elif row_number is not None:
                pair.max_row_number = max(row_number, pair.max_row_number or 0)
        by_kind.update(self._kinds)
        for key, (records, row_number, first_day, last_day) in self._columns.items():
            by_source[str(key[1])] += records
            pair = pairs.get(key)
            if pair is None:
                pair = pairs[key] = PairLoss(*key)
            pair.records += records
            if row_number is not None:
                pair.max_row_number = max(row_number, pair.max_row_number or 0)
            if first_day is not None:
                pair.recoverable_first = min(filter(None, (pair.recoverable_first, first_day)))
                pair.recoverable_last = max(filter(None, (pair.recoverable_last, last_day)))
        for key, (_, last) in self._stamps.items():
            pairs[key].updated_last = last
        for sample in self.samples:
            sample["kind"] = self._judge(sample["trade_date"])[0]
        result.selected = self.count
        result.by_data_source = dict(by_source.most_common())
        result.by_kind = dict(by_kind.most_common())
        result.samples = self.samples
        result.pairs = sorted(pairs.values(), key=lambda p: tuple(str(v) for v in (p.data_source, p.symbol, p.period)))
        result.symbols = sorted({str(p.symbol) for p in result.pairs})
        return result


class RowKeys:
    """(rowid, stored ``_id``) of each rendered backup line, in line order, held compactly (an int64
    array and the ``_id`` texts, not a tuple per record); ``usable`` is False once a line came
    without one (the deletes then read the ``_id``s back from the backup)."""

    def __init__(self) -> None:
        self.rids = array("q")
        self.ids: list[str] = []
        self.usable = True

    def __len__(self) -> int:
        return len(self.rids)

    def extend(self, rids: list[int], ids: list[str]) -> None:
        """Append the keys of lines: their rowids and their ``_id`` texts, two lists in line order."""
        self.rids.extend(rids)
        self.ids.extend(ids)

    def batches(self, batch_size: int):
        """(lines done, [(rowid, _id)]) batches, in line order."""
        for start in range(0, len(self.rids), batch_size):
            stop = min(start + batch_size, len(self.rids))
            yield stop, list(zip(self.rids[start:stop], self.ids[start:stop], strict=True))


def _rendered_lines(store, flt: RecordFilter, summary: SelectionSummary, keys: RowKeys):
    """Backup lines rendered by the store itself (no Python dict per record), summarised batch by batch,
    with each line's row key appended to ``keys`` (the rows to delete, in line order); None when the
    store does not render them (the caller encodes documents)."""
    if not getattr(store, "renders_backup_lines", False):
        return None

    def lines():
        for item in store.iter_invalid_trade_date(flt, as_lines=True):
            if isinstance(item, dict):  # a document after all (the store could not render this selection)
                keys.usable = False  # no row key: the deletes read the _ids back from the backup
                summary.add(item)
                yield encode_line(item)
            else:
                summary.add_batch(item)
                keys.extend(item.rids, item.ids)
                yield item.data  # the batch's lines as one bytes object

    return lines()


def _codes(column):
    """(codes as a numpy array, the distinct values): a text column dictionary-encoded in Arrow, null
    as a value of its own. Read from the buffers: pyarrow's to_numpy and pa.array import pandas (0.4 s)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    indices = encoded.indices
    codes = np.frombuffer(indices.buffers()[1], dtype=np.dtype(f"int{indices.type.bit_width}"))
    return codes[indices.offset: indices.offset + len(indices)], encoded.dictionary.to_pylist()


def _ranked(values: list, index_of: list[int]):
    """(the values sorted, a numpy array mapping each entry of ``index_of`` — an index into ``values``, or
    -1 — to its value's rank in that order, -1 staying -1)."""
    import numpy as np

    order = sorted(range(len(values)), key=values.__getitem__)
    rank = np.empty(len(values) + 1, dtype=np.int64)
    rank[order] = np.arange(len(values))
    rank[-1] = -1  # index -1: none
    return [values[i] for i in order], rank[np.array(index_of, dtype=np.int64)]


def _group_max(groups, values, size: int):
    """Per group, the largest value (-1 for none: every value is a rank or a row number, never below -1)."""
    import numpy as np

    out = np.full(size, -1, dtype=np.int64)
    np.maximum.at(out, groups, values)
    return out


def _group_min(groups, values, size: int):
    """Per group, the smallest value that is not -1 (-1 when there is none)."""
    import numpy as np

    big = np.iinfo(np.int64).max
    out = np.full(size, big, dtype=np.int64)
    np.minimum.at(out, groups, np.where(values < 0, big, values))
    return np.where(out == big, -1, out)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | type(None)) else repr(value)


def clean_invalid_trade_date(
    store: QuoteStore,
    flt: RecordFilter | None = None,
    *,
    apply: bool = False,
    backup_dir: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    label: str = "clean-invalid-trade-date",
    now: datetime | None = None,
    on_backup: Callable[[Backup], None] | None = None,
    lock: Any = None,
    progress: ProgressReport | None = None,
) -> CleanResult:
    """Dry run (default) or back up + delete every record with an invalid trade_date matching ``flt``.

    ``on_backup(backup)`` runs once the backup is complete, before the first delete (migrations
    record it). ``lock``: the store lock, when the caller already holds it (a migration run).
    ``progress``: the backup's lines deleted so far of its count, after each batch.
    """
    flt = flt or RecordFilter()
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if apply and backup_dir is None:
        raise UsageError("a backup directory is required to delete anything")
    result = CleanResult(store=store.display_url, filter=flt.describe(), dry_run=not apply)
    summary = SelectionSummary(now)
    if not apply:
        for doc in store.iter_invalid_trade_date(flt):
            summary.add(doc)
        return summary.fill(result)
    from tacn.pipelines.lock import store_lock

    # The sync lock: no tacn sync rewrites a record between its backup and its delete.
    with nullcontext() if lock is not None else store_lock(store, "sync", f"tacn {label} --yes"):
        from tacn.validators.records import utc_now

        read_started = utc_now()  # every later write is stamped after read_started - STAMP_MARGIN
        pause_point("before-backup")
        keys = RowKeys()
        rendered = _rendered_lines(store, flt, summary, keys)
        backup = write_backup(
            rendered if rendered is not None else store.iter_invalid_trade_date(flt),
            backup_dir,
            label=label,
            store=store.display_url,
            selection={"predicate": PREDICATE, "filter": flt.describe()},
            on_document=None if rendered is not None else summary.add,
            rendered=rendered is not None,
        )
        summary.fill(result)
        result.backup, result.manifest = str(backup.data_path), str(backup.manifest_path)
        if on_backup is not None:
            on_backup(backup)
        if backup.count:
            row_keys = keys if rendered is not None and keys.usable else None
            if row_keys is None and hasattr(store, "delete_unchanged_by_ids"):
                result.deleted, result.batches = delete_unchanged(store, backup, batch_size, flt, read_started,
                                                                  progress)
            else:
                result.deleted, result.batches = delete_backed_up(store, backup, batch_size, row_keys, progress)
        else:
            backup.manifest["state"] = STATE_DELETED
            backup.save_manifest()
    return result


def delete_backed_up(store: QuoteStore, backup: Backup, batch_size: int, row_keys: RowKeys | None = None,
                     report: ProgressReport | None = None) -> tuple[int, int]:
    """Delete the backed-up records in batches; the manifest records progress after each.

    By ``_id`` read back from the backup file; or, when the store rendered the backup, by the
    ``row_keys`` of its lines (``store.delete_rows``: the row each line was rendered from, deleted
    only while it still holds that ``_id``), which must be exactly as many as the backup's lines.
    """
    if row_keys is not None and len(row_keys) != backup.count:
        raise BackupDamaged(f"backup {backup.data_path} holds {backup.count:,} lines but {len(row_keys):,} rows "
                            "were rendered; nothing deleted")
    progress = backup.manifest["deleted"]
    backup.manifest["state"] = STATE_DELETING
    backup.save_manifest()
    batches = (iter_backup_ids(backup, batch_size) if row_keys is None
               else row_keys.batches(batch_size))
    for lines_done, ids in batches:
        progress["records"] += store.delete_by_ids(ids) if row_keys is None else store.delete_rows(ids)
        pause_point("batch-deleted")
        progress["batches"] += 1
        progress["lines_done"] = lines_done
        backup.save_manifest()
        pause_point("progress-recorded")
        if report is not None:  # the lines deleted so far of the backup's count
            report(lines_done, backup.count, "records")
    backup.manifest["state"] = STATE_DELETED
    backup.save_manifest()
    return progress["records"], progress["batches"]


def delete_unchanged(store, backup: Backup, batch_size: int, flt: RecordFilter, read_started: datetime,
                     report: ProgressReport | None = None) -> tuple[int, int]:
    """MongoDB: delete the backed-up records that did not change since the backup was read, and
    nothing else; the manifest records progress after each command.

    Every writer of the collection stamps ``updated_at`` (tacn, and the application's upserts),
    so a record stamped before ``read_started - STAMP_MARGIN`` is as the backup holds it. Where
    a command costs a pass over the whole collection (FerretDB: ``store.deletes_in_one_pass``),
    those records go in ONE command: the same invalid-date selection, limited to ObjectIds within
    the backup's span and stamps before that instant; whatever it deletes is in the backup,
    because a record that matches it now matched, unchanged, when the backup was read. The
    others (no or a recent ``updated_at``, other ``_id`` types), and on MongoDB all, are deleted
    by ``_id`` in ``batch_size`` batches, each only while its ``updated_at`` is the backed-up one.
    A record changed since the backup stays in the store, counted in the manifest's
    ``left_in_store`` (``tacn restore`` then reports it as a conflict rather than overwrite it).
    """
    stamped_before = read_started - STAMP_MARGIN
    one_pass: list[Any] = []  # ObjectIds of the lines the one pass covers
    by_id: list[tuple[Any, Any]] = []  # (_id, backed-up updated_at) of the others, in line order
    if store.deletes_in_one_pass():
        from bson import ObjectId

        for _id, stamp in iter_backup_stamps(backup):
            if isinstance(_id, ObjectId) and isinstance(stamp, datetime) and stamp < stamped_before:
                one_pass.append(_id)
            else:
                by_id.append((_id, stamp))
    else:
        by_id = list(iter_backup_stamps(backup))
    if len(one_pass) + len(by_id) != backup.count:
        raise BackupDamaged(f"backup {backup.data_path} holds {len(one_pass) + len(by_id):,} records but its "
                            f"manifest says {backup.count:,}; nothing deleted")
    progress = backup.manifest["deleted"]
    backup.manifest["state"] = STATE_DELETING
    backup.save_manifest()

    def record(deleted: int, lines: int) -> None:
        pause_point("batch-deleted")
        progress["records"] += deleted
        progress["batches"] += 1
        progress["lines_done"] += lines
        backup.save_manifest()
        pause_point("progress-recorded")
        if report is not None:  # the lines accounted for so far of the backup's count
            report(progress["lines_done"], backup.count, "records")

    if one_pass:
        deleted = store.delete_unchanged_selection(flt, first_id=min(one_pass), last_id=max(one_pass),
                                                   stamped_before=stamped_before)
        record(deleted, len(one_pass))
        if deleted > len(one_pass):  # only a writer that inserts old stamps with old ids could cause it
            raise StoreError(f"the one-pass delete removed {deleted:,} records where the backup {backup.data_path} "
                             f"holds {len(one_pass):,} it covers: a writer that does not stamp updated_at ran "
                             "during the clean; records outside the backup may be lost")
    for start in range(0, len(by_id), batch_size):
        chunk = by_id[start : start + batch_size]
        record(store.delete_unchanged_by_ids(chunk), len(chunk))
    left = backup.count - progress["records"]
    if left:
        backup.manifest["left_in_store"] = {
            "records": left, "why": "changed since the backup (updated_at or trade_date) or deleted meanwhile"}
    backup.manifest["state"] = STATE_DELETED
    backup.save_manifest()
    return progress["records"], progress["batches"]
