"""``file:PATH`` sources: CSV, JSON Lines (MongoDB Extended JSON included) or Parquet, read in chunks.

Each chunk is a DataFrame in the file's own layout (AKShare's, Tushare's or the
store's documents), detected from the columns unless forced. The index of a
chunk is the row's position in the file (0-based, across chunks), so a reject
can point at its line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import SourceError, UsageError
from validators.source_layouts import LAYOUTS, TEXT_COLUMNS, detect_layout, missing_columns

if TYPE_CHECKING:
    import pandas as pd

FILE_TYPES = ("csv", "jsonl", "parquet")
SUFFIXES = {".csv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".pq": "parquet"}
CHUNK_ROWS = 50_000  # rows per chunk: memory stays flat whatever the file size
UNPARSEABLE = "__tacn_unparseable__"  # column carrying a JSON line that could not be read


@dataclass(frozen=True)
class FileSource:
    path: Path
    file_type: str
    layout: str
    columns: tuple[str, ...]


def file_type_of(path: Path, forced: str | None = None) -> str:
    if forced:
        if forced not in FILE_TYPES:
            raise UsageError(f"--file-type must be one of {', '.join(FILE_TYPES)}, got {forced!r}")
        return forced
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UsageError(
            f"cannot tell the type of {path} from its extension: use .csv, .jsonl or .parquet, or pass --file-type"
        )
    return kind


def open_file_source(path: str | Path, *, file_type: str | None = None, layout: str | None = None) -> FileSource:
    """Check the file is there and readable, and work out its type and layout.

    A missing or unreadable file is a source that cannot be read (SourceError, exit 3);
    a file whose type or layout cannot be told is a usage error (pass --file-type/--format).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"file {path} does not exist")
    if path.is_dir():
        raise SourceError(f"{path} is a directory, not a file")
    kind = file_type_of(path, file_type)
    columns = _columns(path, kind)
    if layout is not None and layout not in LAYOUTS:
        raise UsageError(f"--format must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    detected = layout or detect_layout(columns)
    if detected is None:
        raise UsageError(
            f"cannot tell the layout of {path} from its columns ({', '.join(columns[:12]) or 'none'}): "
            "expected AKShare's (日期, 开盘, 收盘, …), Tushare's (ts_code, trade_date, vol, …) or the store's "
            "documents (symbol, trade_date, …); pass --format to force one"
        )
    lacking = missing_columns(columns, detected)
    if lacking:
        raise UsageError(f"{path} is in the {detected} layout but lacks the columns {', '.join(lacking)}")
    return FileSource(path, kind, detected, tuple(columns))


def _columns(path: Path, kind: str) -> list[str]:
    try:
        if kind == "csv":
            import pandas as pd

            return [str(c) for c in pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns]
        if kind == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        names: dict[str, None] = {}
        with path.open(encoding="utf-8-sig") as handle:
            for _, line in zip(range(1000), handle, strict=False):
                try:
                    record = _parse_line(line)
                except ValueError:  # a bad line becomes a reject when the rows are read
                    continue
                if isinstance(record, dict):
                    names.update(dict.fromkeys(record))
        return list(names)
    except UsageError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"cannot read {path} as {kind}: {str(exc)[:200]}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow and pandas raise many kinds for a bad file
        raise SourceError(f"cannot read {path} as {kind}: {type(exc).__name__}: {str(exc)[:200]}") from None


def _parse_line(line: str):
    text = line.strip()
    if not text:
        return None
    if '"$' in text:  # Extended JSON ({"$date": …}, {"$oid": …}, …) as mongoexport or a tacn backup writes it
        from pipelines.extjson import decode_line

        return decode_line(text)
    return json.loads(text)


def iter_frames(source: FileSource, *, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Chunks of the file in its own layout; the index is the row's 0-based position in the file."""
    try:
        if source.file_type == "csv":
            yield from _csv_frames(source, chunk_rows)
        elif source.file_type == "parquet":
            yield from _parquet_frames(source, chunk_rows)
        else:
            yield from _jsonl_frames(source, chunk_rows)
    except UsageError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"cannot read {source.path}: {str(exc)[:200]}") from None


def _csv_frames(source: FileSource, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    dtype = {c: str for c in source.columns if c in TEXT_COLUMNS}
    offset = 0
    with pd.read_csv(source.path, chunksize=chunk_rows, dtype=dtype, encoding="utf-8-sig",
                     skipinitialspace=True) as reader:
        for chunk in reader:
            chunk.index = pd.RangeIndex(offset, offset + len(chunk))
            offset += len(chunk)
            yield chunk


def _parquet_frames(source: FileSource, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd
    import pyarrow.parquet as pq

    offset = 0
    for batch in pq.ParquetFile(source.path).iter_batches(batch_size=chunk_rows):
        chunk = batch.to_pandas()
        chunk.index = pd.RangeIndex(offset, offset + len(chunk))
        offset += len(chunk)
        yield chunk


def _jsonl_frames(source: FileSource, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    records: list[dict] = []
    labels: list[int] = []
    position = 0

    def frame() -> pd.DataFrame:
        chunk = pd.DataFrame.from_records(records, index=labels) if records else pd.DataFrame()
        for name in TEXT_COLUMNS:  # keep text as text (a date written as a number stays a number: rejected)
            if name in chunk.columns:
                chunk[name] = chunk[name].astype(object)
        return chunk

    with source.path.open(encoding="utf-8-sig") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = _parse_line(line)
                if not isinstance(record, dict):
                    raise ValueError("a JSON value that is not an object")
            except ValueError as exc:
                record = {UNPARSEABLE: f"line {position + 1}: not valid JSON ({str(exc)[:80]})"}
            record.pop("_id", None)
            records.append(record)
            labels.append(position)
            position += 1
            if len(records) >= chunk_rows:
                yield frame()
                records, labels = [], []
    if records:
        yield frame()
