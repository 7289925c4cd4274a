"""Reading quote files, for sync's ``file:PATH`` source and ``tacn validate FILE`` alike.

CSV, JSON Lines (MongoDB Extended JSON included) or Parquet, read in chunks.
Each chunk is a DataFrame in the file's own layout (AKShare's, Tushare's or the
store's documents), detected from the columns unless forced (``--layout``). The
index of a chunk is the row's position in the file (0-based, across chunks), so
a reject or a failing record can point at its line.

Streams (a pipe, a FIFO, ``<(…)`` process substitution, a character device)
are read once, as they arrive: their head is buffered to tell the columns,
then replayed. A stream's type comes from ``--file-type``, its name's
extension, or its first bytes (a JSON object, Parquet's magic); anything else
needs ``--file-type``. A FIFO nobody writes to is given up after the connect
timeout. Every line (CSV and JSON Lines) is bounded by :data:`MAX_LINE_BYTES`,
so ``/dev/zero`` or a runaway line ends in a clear error, not in MemoryError.
"""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from tacn.pipelines.errors import SourceError, UsageError
from tacn.validators.source_layouts import LAYOUTS, TEXT_COLUMNS, detect_layout, missing_columns

if TYPE_CHECKING:
    import pandas as pd

FILE_TYPES = ("csv", "jsonl", "parquet")
SUFFIXES = {".csv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".pq": "parquet"}
CHUNK_ROWS = 50_000  # rows per chunk: memory stays flat whatever the file size
UNPARSEABLE = "__tacn_unparseable__"  # column carrying a JSON line that could not be read
MAX_LINE_BYTES = 16 * 1024 * 1024  # one CSV row or JSON document; a quote is a few hundred bytes
HEAD_BYTES = 1024 * 1024  # what is read to tell the columns (and replayed for a stream)
HEAD_LINES = 1000  # JSON Lines: the columns are the union of the keys of the first lines
PARQUET_MAGIC = b"PAR1"


class LineTooLong(SourceError):
    """A line longer than MAX_LINE_BYTES (``/dev/zero``, a binary file, a runaway export). Exit 3."""

    kind = "line_too_long"


@dataclass(frozen=True)
class FileSource:
    path: Path
    file_type: str
    layout: str
    columns: tuple[str, ...]
    stream: _Stream | None = field(default=None, compare=False, repr=False)  # a pipe/FIFO: readable once

    @property
    def is_stream(self) -> bool:
        return self.stream is not None


@dataclass
class ReadMeter:
    """How far :func:`iter_frames` has read, for a progress display: bytes of a CSV or JSON Lines file
    out of its size (a pipe or FIFO has no size: ``total`` stays None), rows of a Parquet file out of
    the count in its footer."""

    unit: str = "bytes"
    done: int = 0
    total: int | None = None


def file_type_of(path: Path, forced: str | None = None, head: bytes | None = None) -> str:
    """csv, jsonl or parquet: ``--file-type``, else the extension, else (a stream) its first bytes."""
    if forced:
        if forced not in FILE_TYPES:
            raise UsageError(f"--file-type must be one of {', '.join(FILE_TYPES)}, got {forced!r}")
        return forced
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is not None:
        return kind
    if head is not None:
        sniffed = _sniff(head)
        if sniffed is not None:
            return sniffed
        raise UsageError(
            f"cannot tell the type of {path}: it is a stream (pipe, FIFO or <(…)) whose first bytes are "
            "neither a JSON object nor Parquet; pass --file-type csv|jsonl|parquet"
        )
    raise UsageError(
        f"cannot tell the type of {path} from its extension: use .csv, .jsonl or .parquet, or pass --file-type"
    )


def _sniff(head: bytes) -> str | None:
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"{"):
        return "jsonl"
    return None


def open_file_source(
    path: str | Path,
    *,
    file_type: str | None = None,
    layout: str | None = None,
    wait_s: float | None = None,
) -> FileSource:
    """Check the file is there and readable, and work out its type and layout.

    A missing or unreadable file is a source that cannot be read (SourceError, exit 3);
    a file whose type or layout cannot be told is a usage error (pass --file-type/--layout).
    """
    path = Path(path).expanduser()
    if layout is not None and layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SourceError(f"file {path} does not exist") from None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise SourceError(f"{path} is a directory, not a file")
    stream = None
    if stat.S_ISREG(mode):
        kind = file_type_of(path, file_type)
        head = b"" if kind == "parquet" else _read_head(path)
    else:
        from tacn.pipelines.streams import connect_timeout

        # How long a FIFO may stay without a writer: TACN_CONNECT_TIMEOUT unless the caller says.
        stream = _Stream.open(path, connect_timeout() if wait_s is None else wait_s)
        kind = file_type_of(path, file_type, stream.head)
        head = stream.head
    columns = _columns(path, kind, head, stream)
    detected = layout or detect_layout(columns)
    if detected is None:
        hint = ""
        if kind == "jsonl" and head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"["):
            hint = " (a JSON array, as mongoexport --jsonArray writes: export one document per line instead)"
        raise UsageError(
            f"cannot tell the layout of {path} from its columns ({', '.join(columns[:12]) or 'none'}){hint}: "
            "expected AKShare's (日期, 开盘, 收盘, …), Tushare's (ts_code, trade_date, vol, …) or the store's "
            "documents (symbol, trade_date, …); pass --layout to force one"
        )
    lacking = missing_columns(columns, detected)
    if lacking:
        raise UsageError(f"{path} is in the {detected} layout but lacks the columns {', '.join(lacking)}")
    return FileSource(path, kind, detected, tuple(columns), stream)


# -- bounded reading ---------------------------------------------------------------


class _LineLimited(io.RawIOBase):
    """A binary reader that refuses a line longer than ``limit`` bytes (checked per block, in C)."""

    def __init__(self, inner: BinaryIO, name: Path, limit: int | None = None, meter: ReadMeter | None = None):
        self._inner = inner
        self._name = name
        self._limit = MAX_LINE_BYTES if limit is None else limit
        self._since_newline = 0  # bytes of the current line read so far
        self._meter = meter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer))
        if not data:
            return 0
        if self._meter is not None:
            self._meter.done += len(data)
        last = data.rfind(b"\n")
        if last < 0:
            self._since_newline += len(data)
        else:
            first = data.find(b"\n")
            if self._since_newline + first > self._limit:
                self._too_long()
            if last - first > self._limit:  # a block longer than the limit may hide a long line inside
                start = first + 1
                while start <= last:
                    end = data.find(b"\n", start)
                    if end - start > self._limit:
                        self._too_long()
                    start = end + 1
            self._since_newline = len(data) - last - 1
        if self._since_newline > self._limit:
            self._too_long()
        buffer[: len(data)] = data
        return len(data)

    def _too_long(self):
        raise LineTooLong(f"cannot read {self._name}: a line is longer than {_size(self._limit)} (not a quotes file?)")

    def close(self) -> None:
        self._inner.close()
        super().close()


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(HEAD_BYTES)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


class _Stream:
    """A pipe, FIFO or device, opened once: its head buffered, then the rest as it comes."""

    def __init__(self, path: Path, handle: BinaryIO, head: bytes):
        self.path = path
        self.head = head
        self._handle = handle
        self._used = False

    @classmethod
    def open(cls, path: Path, wait_s: float) -> _Stream:
        from tacn.pipelines.streams import open_input

        handle = open_input(path, what="file", timeout_s=wait_s, error=SourceError)
        head = bytearray()
        try:
            while len(head) < HEAD_BYTES and head.count(b"\n") < HEAD_LINES:
                block = handle.read1(HEAD_BYTES - len(head))
                if not block:
                    break
                head += block
        except OSError as exc:
            handle.close()
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
        return cls(path, handle, bytes(head))

    def reader(self) -> BinaryIO:
        """The whole stream, head included: once only (a pipe cannot be rewound)."""
        if self._used:
            raise SourceError(f"{self.path} is a stream and was already read")
        self._used = True
        return io.BufferedReader(_Replay(self.head, self._handle), buffer_size=1024 * 1024)


class _Replay(io.RawIOBase):
    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._rest.close()
        super().close()


def _binary(source: FileSource, meter: ReadMeter | None = None) -> BinaryIO:
    """The file's bytes, every line bounded by MAX_LINE_BYTES; ``meter`` counts them against the file's size."""
    if source.stream is not None:
        inner = source.stream.reader()
    else:
        inner = source.path.open("rb")
        if meter is not None:
            meter.total = os.fstat(inner.fileno()).st_size
    return io.BufferedReader(_LineLimited(inner, source.path, meter=meter), buffer_size=256 * 1024)


def _head_lines(head: bytes, path: Path) -> list[bytes]:
    """The complete lines of a head (the last one may be cut by the head's size)."""
    lines = head.split(b"\n")
    if len(head) >= HEAD_BYTES:
        lines = lines[:-1]
        if not lines:
            raise LineTooLong(f"cannot read {path}: the first line is longer than {HEAD_BYTES // 1024} KiB")
    return lines


def _columns(path: Path, kind: str, head: bytes, stream: _Stream | None) -> list[str]:
    try:
        if kind == "csv":
            import pandas as pd

            header = _head_lines(head, path)[0]
            if not header.strip():
                raise SourceError(f"cannot read {path} as csv: no header line (an empty file or stream?)")
            return [str(c) for c in pd.read_csv(io.BytesIO(header), nrows=0, encoding="utf-8-sig").columns]
        if kind == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path if stream is None else _parquet_buffer(stream)).names)
        names: dict[str, None] = {}
        first_error = None
        for number, line in enumerate(_head_lines(head, path)[:HEAD_LINES], start=1):
            try:
                record = _parse_line(line.decode("utf-8-sig"))
            except (ValueError, UnicodeDecodeError) as exc:  # a bad line becomes a reject when the rows are read
                first_error = first_error or f"line {number} is not valid JSON ({str(exc)[:120]})"
                continue
            if isinstance(record, dict):
                names.update(dict.fromkeys(record))
        if not names and first_error:  # not one readable line: not a JSON Lines file at all
            raise SourceError(f"cannot read {path} as jsonl: {first_error}")
        return list(names)
    except (UsageError, SourceError):
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"cannot read {path} as {kind}: {str(exc)[:200]}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow and pandas raise many kinds for a bad file
        raise SourceError(f"cannot read {path} as {kind}: {type(exc).__name__}: {str(exc)[:200]}") from None


def _parquet_buffer(stream: _Stream):
    """Parquet keeps its schema at the end: a streamed Parquet file is read whole, once."""
    import pyarrow as pa

    buffered = getattr(stream, "_parquet", None)
    if buffered is None:
        with stream.reader() as handle:
            buffered = pa.BufferReader(handle.read())
        stream._parquet = buffered
    buffered.seek(0)
    return buffered


def _parse_line(line: str):
    text = line.strip()
    if not text:
        return None
    if '"$' in text:  # Extended JSON ({"$date": …}, {"$oid": …}, …) as mongoexport or a tacn backup writes it
        from tacn.pipelines.extjson import decode_line

        return decode_line(text)
    return json.loads(text)


def iter_frames(source: FileSource, *, chunk_rows: int = CHUNK_ROWS,
                meter: ReadMeter | None = None) -> Iterator[pd.DataFrame]:
    """Chunks of the file in its own layout; the index is the row's 0-based position in the file.

    ``meter``, when given, says how far the reading is each time a chunk is yielded (see :class:`ReadMeter`).
    """
    try:
        if source.file_type == "csv":
            yield from _csv_frames(source, chunk_rows, meter)
        elif source.file_type == "parquet":
            yield from _parquet_frames(source, chunk_rows, meter)
        else:
            yield from _jsonl_frames(source, chunk_rows, meter)
    except (UsageError, SourceError):
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # pandas/pyarrow parse errors are ValueErrors
        raise SourceError(f"cannot read {source.path} as {source.file_type}: {_first_line(exc)}") from None
    except Exception as exc:  # pyarrow.ArrowException and friends: an unreadable file, not a crash
        if type(exc).__module__.startswith(("pyarrow", "pandas")):
            raise SourceError(f"cannot read {source.path} as {source.file_type}: {_first_line(exc)}") from None
        raise


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0][:200] if text else repr(exc)


def _csv_frames(source: FileSource, chunk_rows: int, meter: ReadMeter | None) -> Iterator[pd.DataFrame]:
    """Chunks of ``chunk_rows`` rows, as pandas' C parser reads them (``dtype=str`` for the text columns,
    ``skipinitialspace``); parsed by Arrow on a reader thread where that gives the same frames
    (:mod:`tacn.pipelines.sources.csv_blocks`)."""
    from tacn.pipelines.read_ahead import ReadAhead
    from tacn.pipelines.sources.csv_blocks import BlockReader, arrow_path_available

    with _binary(source, meter) as handle:
        reader = BlockReader(handle, source.columns, frozenset(TEXT_COLUMNS), chunk_rows=chunk_rows, path=source.path)
        if not arrow_path_available():  # pandas 2: a reader thread would gain nothing (pandas holds the GIL)
            yield from reader.pandas_frames()
            return
        with ReadAhead(reader.frames(), name="tacn-csv") as frames:
            yield from frames


def _parquet_frames(source: FileSource, chunk_rows: int, meter: ReadMeter | None) -> Iterator[pd.DataFrame]:
    import pandas as pd
    import pyarrow.parquet as pq

    offset = 0
    target = source.path if source.stream is None else _parquet_buffer(source.stream)
    parquet = pq.ParquetFile(target)
    if meter is not None:  # the footer counts the rows: a total even for a streamed file
        meter.unit, meter.total = "rows", parquet.metadata.num_rows
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        chunk = batch.to_pandas()
        chunk.index = pd.RangeIndex(offset, offset + len(chunk))
        offset += len(chunk)
        if meter is not None:
            meter.done = offset
        yield chunk


def _jsonl_frames(source: FileSource, chunk_rows: int, meter: ReadMeter | None) -> Iterator[pd.DataFrame]:
    import pandas as pd
    from bson import ObjectId

    records: list[dict] = []
    labels: list[int] = []
    position = 0

    def frame() -> pd.DataFrame:
        chunk = pd.DataFrame.from_records(records, index=labels, coerce_float=False) if records else pd.DataFrame()
        for name in TEXT_COLUMNS:  # keep text as text (a date written as a number stays a number: rejected)
            if name in chunk.columns:
                chunk[name] = chunk[name].astype(object)
        return chunk

    with _binary(source, meter) as binary, io.TextIOWrapper(binary, encoding="utf-8-sig") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = _parse_line(line)
                if not isinstance(record, dict):
                    raise ValueError("a JSON value that is not an object")
            except (ValueError, TypeError) as exc:
                record = {UNPARSEABLE: f"line {position + 1}: not valid JSON ({str(exc)[:80]})"}
            if isinstance(record.get("_id"), ObjectId):
                record["_id"] = str(record["_id"])
            records.append(record)
            labels.append(position)
            position += 1
            if len(records) >= chunk_rows:
                yield frame()
                records, labels = [], []
    if records:
        yield frame()
