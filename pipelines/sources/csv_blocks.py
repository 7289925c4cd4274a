"""A CSV file read in blocks by Arrow's parser on a reader thread, giving exactly the frames pandas' C parser gives.

pandas' parser holds Python's lock; Arrow's parses without it, so a reader thread
(:class:`~tacn.pipelines.read_ahead.ReadAhead`) parses the next block on the second core while the
caller judges or converts this one. The frames must stay what pandas gives (sync
converts them and validate judges them, and ``tacn validate FILE`` must report what sync would
load), so a block takes the Arrow path only where the result is provably the same, and is
otherwise read by pandas itself, from the same bytes:

- A block is ``chunk_rows`` lines cut at newlines. The first block holding a quote sends the rest
  of the file to pandas' streaming reader (a quoted field may hold a newline, so a cut at a newline
  might fall inside a record).
- A block whose bytes pandas would read differently from Arrow goes to pandas whole: a field that
  starts with a space (pandas reads with ``skipinitialspace``), a carriage return not followed by a
  newline, a NUL byte; so does a block Arrow refuses (a row with another number of fields, invalid
  UTF-8), where pandas gives the same frame or the same error (its line numbers made the file's).
- Arrow reads every column as text, with pandas' list of null strings. Text columns (the key and
  label columns) stay text, as pandas reads them (``dtype=str``). Any other column takes the type
  pandas' inference gives whatever its internal pieces: all missing, float64; every value a finite
  number Arrow's parser reads (below 2**53, no subnormal, no "NAN" or "inf" spelling: there both
  parsers give the same double, a test compares them) int64 when each is an integer literal (no
  point, no exponent) and none is missing, else float64; no value that could read as a number or a
  bool, text. A column of any other mix sends the block to pandas.

The fast path needs pandas' text dtype to be Arrow strings (pandas 3); with pandas 2 every chunk
is read by pandas (:meth:`BlockReader.pandas_frames`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_READ_BYTES = 4 * 1024 * 1024
_EXACT_INTEGERS = 2.0**53
_SMALLEST_NORMAL = 2.2250738585072014e-308
# A value holding a character outside these cannot read as a number ("1e5", " 2", "-inf", "NaN",
# "Infinity") nor as a bool ("True", "FALSE"): pandas keeps its column as text.
_NOT_NUMBER_OR_BOOL = r"[^0-9+\-.eE \t\v\f\rinfatyINFATYrulsRULS]"
_LINE_NUMBER = re.compile(r"(?<=line )(\d+)")


class BlockReader:
    """The frames of one CSV source, block by block; see the module's text."""

    def __init__(self, handle: BinaryIO, columns: tuple[str, ...], text_columns: frozenset[str], *,
                 chunk_rows: int, path) -> None:
        self._handle = handle
        self._columns = columns
        self._text = text_columns
        self._chunk_rows = chunk_rows
        self._path = path
        self._pandas_dtype = {c: str for c in columns if c in text_columns}
        self._pending = bytearray()  # read from the handle, not yet cut into a block
        self.fast_blocks = 0  # blocks Arrow read (for tests and the benchmark)
        self.pandas_blocks = 0

    def pandas_frames(self) -> Iterator[pd.DataFrame]:
        """Every chunk by pandas' streaming reader: where pandas' text is not Arrow strings (pandas 2)."""
        yield from self._pandas_rest(self._header(), bytearray(), 0, 1)

    def _header(self) -> bytes:
        header = self._handle.readline().removeprefix(b"\xef\xbb\xbf")
        return header if header.endswith(b"\n") else header + b"\n"

    def frames(self) -> Iterator[pd.DataFrame]:
        import pandas as pd

        header = self._header()
        offset = 0  # rows yielded so far: the index of the next row
        lines_before = 1  # lines of the file before the block (the header)
        for block, lines in self._blocks():
            if b'"' in block:  # quoting: the rest of the file by pandas' streaming reader
                yield from self._pandas_rest(header, block, offset, lines_before)
                return
            frame = self._arrow_frame(block)
            if frame is None:
                frame = self._pandas_block(header, block, lines_before)
            else:
                self.fast_blocks += 1
            lines_before += lines
            if len(frame):
                frame.index = pd.RangeIndex(offset, offset + len(frame))
                offset += len(frame)
                yield frame

    def _blocks(self) -> Iterator[tuple[bytearray, int]]:
        """(``chunk_rows`` lines, their number of lines); the last block is what remains.

        The cut is guessed from the mean line length so far, then moved to the exact newline
        (:func:`_after_line`): listing every newline's position costs ~75 ms per 100,000 rows."""
        pending = self._pending
        eof = False
        per_line = 0.0  # mean bytes per line so far
        while True:
            want = int(per_line * self._chunk_rows * 1.05) + 1 if per_line else _READ_BYTES
            while not eof and len(pending) < want:
                data = self._handle.read(min(max(want - len(pending), 64 * 1024), _READ_BYTES))
                if not data:
                    eof = True
                    break
                pending += data
            if not pending:
                return
            if not per_line:  # the first read: the mean line length of its lines
                per_line = len(pending) / max(1, _count_lines(pending))
                if not eof:
                    continue
            lines = self._chunk_rows
            cut = _after_line(pending, min(len(pending), int(per_line * lines)), lines)
            if cut is None:
                if not eof:
                    per_line *= 1.5
                    continue
                cut, lines = len(pending), _count_lines(pending)
            block = pending[:cut]  # one copy (bytes(...) of it would be a second)
            del pending[:cut]
            per_line = len(block) / max(1, lines)
            yield block, lines

    # -- the Arrow path ---------------------------------------------------------------------

    def _arrow_frame(self, block: bytearray) -> pd.DataFrame | None:
        """The block's frame as pandas would read it, or None where that is not proven."""
        # single bytes first: memchr, where a two-byte pattern is a slower search
        if b" " in block and (block.startswith(b" ") or b", " in block or b"\n " in block):
            return None
        if b"\x00" in block or (b"\r" in block and block.count(b"\r") != block.count(b"\r\n")):
            return None
        import pyarrow as pa
        import pyarrow.csv as pcsv

        try:
            table = pcsv.read_csv(
                pa.py_buffer(block),
                # one thread: this reader is the second core's work, beside the main thread's judging;
                # Arrow's pool on both cores made the two compete (measured: 0.3–0.6 s more per 1M rows)
                read_options=pcsv.ReadOptions(column_names=list(self._columns), block_size=1 << 20,
                                              use_threads=False),
                parse_options=pcsv.ParseOptions(quote_char=False),
                convert_options=pcsv.ConvertOptions(
                    column_types={c: pa.large_string() for c in self._columns},
                    null_values=_null_strings(), strings_can_be_null=True,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowException):
            return None
        columns = {}
        for name in self._columns:
            values = table.column(name)
            columns[name] = values if name in self._text else _typed(values)
            if columns[name] is None:
                return None
        return pa.table(columns).to_pandas()

    # -- the pandas path ------------------------------------------------------------------

    def _read_csv(self, source, **options) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(source, dtype=self._pandas_dtype, encoding="utf-8", skipinitialspace=True, **options)

    def _pandas_block(self, header: bytes, block: bytearray, lines_before: int) -> pd.DataFrame:
        self.pandas_blocks += 1
        try:
            return self._read_csv(io.BytesIO(header + block))
        except ValueError as exc:
            raise self._shifted(exc, lines_before - 1) from None

    def _pandas_rest(self, header: bytes, block: bytearray, offset: int, lines_before: int) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from tacn.pipelines.sources.files import _Replay

        self.pandas_blocks += 1
        rest = io.BufferedReader(_Replay(header + block + bytes(self._pending), self._handle), buffer_size=256 * 1024)
        try:
            with self._read_csv(rest, chunksize=self._chunk_rows) as reader:
                for chunk in reader:
                    chunk.index = pd.RangeIndex(offset, offset + len(chunk))
                    offset += len(chunk)
                    yield chunk
        except ValueError as exc:
            raise self._shifted(exc, lines_before - 1) from None

    def _shifted(self, exc: ValueError, lines: int) -> Exception:
        """pandas' error with its line numbers counted from the top of the file, not of the block."""
        from tacn.pipelines.errors import SourceError

        if isinstance(exc, UnicodeDecodeError) or not lines:
            return exc
        text = str(exc).splitlines()[0] if str(exc) else repr(exc)
        text = _LINE_NUMBER.sub(lambda m: str(int(m.group(1)) + lines), text)
        return SourceError(f"cannot read {self._path} as csv: {text[:200]}")


def _after_line(data: bytearray, guess: int, n: int) -> int | None:
    """The offset just after the ``n``-th newline of ``data``, or None if it has fewer. ``guess`` is
    near it: the newlines before it are counted, then the few between are found in a window."""
    import numpy as np

    view = np.frombuffer(data, dtype=np.uint8)  # freed on return: a live view stops the bytearray resizing
    before = int(np.count_nonzero(view[:guess] == 10))
    span = 64 * 1024
    while True:
        if before >= n:  # the (before - n + 1)-th newline back from the guess
            low = max(0, guess - span)
            found = np.flatnonzero(view[low:guess] == 10)
            back = before - n + 1
            if len(found) >= back:
                return low + int(found[-back]) + 1
        else:
            high = min(len(view), guess + span)
            found = np.flatnonzero(view[guess:high] == 10)
            ahead = n - before
            if len(found) >= ahead:
                return guess + int(found[ahead - 1]) + 1
            if high == len(view):
                return None
        span *= 4


def _count_lines(block: bytes | bytearray) -> int:
    import numpy as np

    # numpy counts without holding Python's lock (bytes.count holds it)
    newlines = int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))
    return newlines + (not block.endswith(b"\n"))


def _typed(values: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """A text column of a CSV block typed as pandas infers it (module text), or None: not proven."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if values.null_count == len(values):
        return pc.cast(values, pa.float64())
    try:
        numbers = pc.cast(values, pa.float64())  # refuses "0x10" and words at the first one
    except pa.ArrowInvalid:  # not all numbers: text if no value could read as a number or a bool
        if pc.all(pc.match_substring(values, ":")).as_py() \
                or pc.all(pc.match_substring_regex(values, _NOT_NUMBER_OR_BOOL)).as_py():
            return values
        return None
    # Arrow and pandas read finite decimals to the same double (a test compares them); "NAN" or "inf"
    # spellings, integers pandas would read as uint64 and subnormals are left to pandas.
    array = numbers.to_numpy()
    if np.count_nonzero(np.isnan(array)) != values.null_count:
        return None
    magnitude = np.abs(array)
    if not np.nanmax(magnitude) < _EXACT_INTEGERS or np.nanmin(np.where(magnitude == 0, np.inf, magnitude)) < _SMALLEST_NORMAL:
        return None
    if not values.null_count and np.array_equal(np.floor(array), array) and not _holds_any(values, ".eE"):
        return pc.cast(numbers, pa.int64())  # every value an integer literal ("5", "+5"; not "5.0"): int64
    return numbers


def _holds_any(values: pa.ChunkedArray, characters: str) -> bool:
    import pyarrow.compute as pc

    return any(pc.any(pc.match_substring(values, character)).as_py() for character in characters)


def _null_strings() -> list[str]:
    from pandas._libs.parsers import STR_NA_VALUES

    return sorted(STR_NA_VALUES)


def arrow_path_available() -> bool:
    """pandas keeps text as Arrow strings (pandas 3, or 2 with ``future.infer_string``): Arrow's frames can match."""
    import pandas as pd

    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return bool(getattr(pd.options.future, "infer_string", False))
