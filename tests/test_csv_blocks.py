"""The Arrow block reader of CSV files gives exactly the frames pandas' C parser gives (issue 13).

The oracle is pandas itself, reading the same bytes with the options the reader had before
(``dtype=str`` for the text columns, ``skipinitialspace``, utf-8-sig), chunk by chunk over the same
rows (``get_chunk`` with each frame's length): same values, same dtypes, same index. Generated
files mix every kind of cell the two parsers could read differently.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tacn.pipelines.errors import SourceError
from tacn.pipelines.sources import files
from tacn.pipelines.sources.csv_blocks import BlockReader, _typed
from tacn.pipelines.validate import _naive_timestamps
from tacn.validators.source_layouts import TEXT_COLUMNS

COLUMNS = ("symbol", "trade_date", "open", "volume", "created_at", "note")
TEXT = frozenset(TEXT_COLUMNS)

plain_decimals = st.builds(
    lambda sign, whole, fraction: f"{sign}{whole}{'.' + fraction if fraction is not None else ''}",
    st.sampled_from(["", "-"]),
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.none() | st.from_regex(r"[0-9]{1,8}", fullmatch=True),
)
odd_numbers = st.sampled_from([
    "1e5", "1E-3", ".5", "5.", "+5", "-0", "-0.0", "007", "00.10", "inf", "-inf", "Infinity", "NAN", "nan", "NaN",
    "-nan", "1_000", "0x10", "1e400", "1e-320", "4.9e-324", "9223372036854775808", "12345678901234567890",
    "9007199254740993", "1.7976931348623157e308", "٣", "１２", "5 ", "5\t", "\t5", "True", "false", "TRUE", "t",
])
timestamps = st.sampled_from([
    "2025-10-23T09:00:00.000", "2025-10-23", "2025-10-23 09:00:00", "2025-10-23T09:00:00Z",
    "2025-10-23T09:00:00+08:00", "2025-02-30T00:00:00", "2025-10-23T24:00:00", "20251023T090000",
    "0001-01-01", "2025-10-23T09:00:00.123456789",
])
nulls = st.sampled_from(["", "NA", "N/A", "null", "NULL", "None", "<NA>", "#N/A", "n/a", "-NaN", "nan"])
texts = st.text(st.characters(codec="utf-8", exclude_characters=',"\r\n\x00'), max_size=8)
cell = st.one_of(plain_decimals, plain_decimals, odd_numbers, timestamps, nulls, texts,
                 st.sampled_from(["600000", "000001", "2025-10-23", "0", "20251023", " 600000", "abc"]))


def pandas_chunks(data: bytes, lengths: list[int]) -> list[pd.DataFrame]:
    """pandas' C parser over the same rows, as the reader read files before the Arrow path."""
    dtype = {c: str for c in COLUMNS if c in TEXT}
    chunks, offset = [], 0
    with pd.read_csv(io.BytesIO(data), dtype=dtype, encoding="utf-8-sig", skipinitialspace=True,
                     iterator=True) as reader:
        for length in lengths:
            chunk = reader.get_chunk(length)
            chunk.index = pd.RangeIndex(offset, offset + len(chunk))
            offset += len(chunk)
            chunks.append(chunk)
    return chunks


def block_frames(data: bytes, chunk_rows: int) -> tuple[list[pd.DataFrame], BlockReader]:
    reader = BlockReader(io.BufferedReader(io.BytesIO(data)), COLUMNS, TEXT, chunk_rows=chunk_rows, path="f.csv")
    return list(reader.frames()), reader


def csv_bytes(rows: list[list[str]], *, crlf: bool = False, bom: bool = False, blank_every: int = 0,
              last_newline: bool = True) -> bytes:
    newline = "\r\n" if crlf else "\n"
    lines = [",".join(COLUMNS)]
    for number, row in enumerate(rows, start=1):
        lines.append(",".join(row))
        if blank_every and number % blank_every == 0:
            lines.append("")
    return (("\ufeff" if bom else "") + newline.join(lines) + (newline if last_newline else "")).encode()


def assert_same_as_pandas(data: bytes, chunk_rows: int) -> BlockReader:
    try:
        frames, reader = block_frames(data, chunk_rows)
    except (ValueError, SourceError):
        with pytest.raises((ValueError, SourceError)):
            pandas_chunks(data, [10**9])
        return None
    expected = pandas_chunks(data, [len(f) for f in frames])
    assert sum(map(len, frames)) == len(pandas_chunks(data, [10**9])[0])  # every row, none lost or added
    assert len(frames) == len(expected)
    for got, want in zip(frames, expected, strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    return reader


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(cell, min_size=len(COLUMNS), max_size=len(COLUMNS)), min_size=1, max_size=12),
       chunk_rows=st.integers(1, 8), crlf=st.booleans(), bom=st.booleans(), blank_every=st.integers(0, 4),
       last_newline=st.booleans())
def test_frames_equal_pandas_for_any_cells(rows, chunk_rows, crlf, bom, blank_every, last_newline):
    data = csv_bytes(rows, crlf=crlf, bom=bom, blank_every=blank_every, last_newline=last_newline)
    assert_same_as_pandas(data, chunk_rows)


families = st.sampled_from([plain_decimals, odd_numbers, timestamps, texts, st.sampled_from(["1", "+5", "-0", "007"])])


@st.composite
def family_rows(draw):
    """Each column's cells from one family (with some nulls): most blocks take the Arrow path."""
    kinds = [draw(families) for _ in COLUMNS]
    count = draw(st.integers(1, 12))
    return [[draw(nulls) if draw(st.integers(0, 5)) == 0 else draw(kind) for kind in kinds] for _ in range(count)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=family_rows(), chunk_rows=st.integers(1, 8))
def test_frames_equal_pandas_for_columns_of_one_kind(rows, chunk_rows):
    assert_same_as_pandas(csv_bytes(rows), chunk_rows)


def test_columns_of_one_kind_do_take_the_arrow_path():
    """The same comparison on seeded files of the families above: most of their blocks are Arrow's, so
    the equality above is shown on Arrow's frames, not only on the blocks handed to pandas."""
    import random

    kinds = [["10.5", "-0.01", "7", "123456789.125"], ["1", "+5", "-0", "007"], ["1e5", ".5", "5."],
             ["2025-10-23T09:00:00.000", "2025-10-23 09:00:00"], ["abc", "平安银行", "x y"], ["", "NA", "null"]]
    rng = random.Random(13)
    arrow_blocks = 0
    for _ in range(60):
        chosen = [rng.choice(kinds) for _ in COLUMNS]
        rows = [[rng.choice(kind) for kind in chosen] for _ in range(rng.randint(1, 20))]
        reader = assert_same_as_pandas(csv_bytes(rows), rng.randint(1, 6))
        arrow_blocks += reader.fast_blocks if reader is not None else 0
    assert arrow_blocks > 100


@settings(max_examples=200, deadline=None)
@given(numbers=st.lists(plain_decimals | st.floats(allow_nan=False, allow_infinity=False).map(repr), min_size=1,
                        max_size=40))
def test_decimals_read_to_the_same_double_as_pandas(numbers):
    rows = [["600000", "2025-10-23", n, "1", "2025-10-23T09:00:00.000", "x"] for n in numbers]
    assert_same_as_pandas(csv_bytes(rows), 1000)


def test_quoted_and_spaced_files_equal_pandas_and_clean_blocks_take_the_arrow_path():
    clean = [["600000", "2025-10-23", f"{10 + i / 100}", str(1000 + i), "2025-10-23T09:00:00.000", "x"] for i in range(50)]
    reader = assert_same_as_pandas(csv_bytes(clean), 10)
    assert reader.fast_blocks == 5 and reader.pandas_blocks == 0
    spaced = [row[:] for row in clean]
    spaced[23][2] = " 10.5"  # skipinitialspace: that block by pandas, the others by Arrow
    reader = assert_same_as_pandas(csv_bytes(spaced), 10)
    assert reader.pandas_blocks == 1 and reader.fast_blocks == 4
    word = [row[:] for row in clean]
    word[41][2] = "abc"  # a price that is not a number: pandas reads that block's column as text
    reader = assert_same_as_pandas(csv_bytes(word), 10)
    assert reader.pandas_blocks == 1 and reader.fast_blocks == 4
    quoted = [row[:] for row in clean]
    quoted[12][5] = '"two\nlines, and a comma"'  # from the first quote on, pandas' streaming reader
    reader = assert_same_as_pandas(csv_bytes(quoted), 10)
    assert reader.fast_blocks == 1 and reader.pandas_blocks == 1


def test_a_row_with_too_many_fields_is_reported_at_its_line_of_the_file(tmp_path):
    rows = [["600000", "2025-10-23", "10.0", "1000", "2025-10-23T09:00:00.000", "x"] for _ in range(30)]
    data = csv_bytes(rows).decode().splitlines()
    data[25] += ",extra"  # line 26 of the file (the header is line 1)
    path = tmp_path / "q.csv"
    path.write_text("\n".join(data) + "\n")
    with pytest.raises(ValueError) as old:
        pandas_chunks(path.read_bytes(), [10**9])
    assert "line 26" in str(old.value)
    source = files.FileSource(path, "csv", "document", COLUMNS)
    with pytest.raises(SourceError, match="line 26"):
        list(files.iter_frames(source, chunk_rows=10))


def test_typed_column_outcomes():
    import pyarrow as pa

    def typed(values):
        result = _typed(pa.chunked_array([pa.array(values, pa.string())]))
        return None if result is None else result.type

    assert typed([None, None]) == pa.float64()
    assert typed(["1", "2"]) == pa.int64()
    assert typed(["1", None]) == pa.float64()  # pandas: ints with a missing value are float64
    assert typed(["1", "2.5"]) == pa.float64()
    assert typed(["2025-10-23T09:00:00", None]) == pa.string()
    assert typed(["1", "abc"]) is None  # a mix: pandas decides
    assert typed(["inf"]) is None and typed(["True"]) is None and typed(["9223372036854775808"]) is None


iso_parts = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone: f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{zone}",
    st.integers(1600, 2300), st.integers(0, 13), st.integers(0, 32), st.sampled_from(["T", " ", "t"]),
    st.integers(0, 25), st.integers(0, 60), st.integers(0, 61),
    st.sampled_from(["", ".", ".1", ".123", ".123456", ".123456789", ".1234567891"]),
    st.sampled_from(["", "", "Z", "+08:00", "-0500", "+08"]),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(iso_parts | timestamps | st.from_regex(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}", fullmatch=True),
                       min_size=1, max_size=6))
def test_timestamps_arrow_parses_equal_pandas(values):
    check_timestamps(values)


def test_the_application_s_timestamps_take_the_arrow_parse():
    assert check_timestamps(["2025-10-23T09:00:00.000", None, "2025-10-23 09:00:00.123456"]) is not None


def check_timestamps(values):
    raw = pd.Series(values, dtype="str")
    parsed = _naive_timestamps(raw)
    if parsed is None:  # Arrow refused one: pandas judges them (validate's path before)
        return None
    expected = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce").dt.tz_localize(None)
    assert (expected.isna() == raw.isna()).all()
    np.testing.assert_array_equal(parsed.to_numpy(), expected.to_numpy())
    return parsed


_SLOW_BLOCK = """
import sys, time
from tacn.pipelines.sources import csv_blocks
arrow_frame = csv_blocks.BlockReader._arrow_frame
calls = []
def slow(self, block):
    calls.append(1)
    if len(calls) == 2:  # the first block is judged; the second parse is long: the signal arrives in it
        print("reading", flush=True)
        time.sleep(3)
    return arrow_frame(self, block)
csv_blocks.BlockReader._arrow_frame = slow
sys.argv = ["tacn", "validate", sys.argv[1], "--batch-size", "5"]
from tacn.cli.app import main
main()
"""


def test_validate_of_a_file_interrupted_while_the_reader_parses_exits_130(tmp_path):
    from tests.test_read_ahead import assert_interrupted_promptly

    path = tmp_path / "q.csv"
    path.write_text("symbol,trade_date,open,high,low,close\n" + "600000,2025-10-23,10,11,9,10.5\n" * 30)
    assert_interrupted_promptly(_SLOW_BLOCK, str(path), tmp_path)


def test_without_arrow_strings_every_chunk_is_pandas_and_the_frames_are_the_same(tmp_path, monkeypatch):
    """pandas 2 (text as objects) reads every chunk with pandas' parser: the same rows either way."""
    from tacn.pipelines.sources import csv_blocks

    rows = [["600000", "2025-10-23", f"{10 + i / 8}", str(1000 + i), "2025-10-23T09:00:00.000", "x"] for i in range(40)]
    path = tmp_path / "q.csv"
    path.write_bytes(csv_bytes(rows))
    source = files.FileSource(path, "csv", "document", COLUMNS)
    arrow = list(files.iter_frames(source, chunk_rows=7))
    monkeypatch.setattr(csv_blocks, "arrow_path_available", lambda: False)
    plain = list(files.iter_frames(source, chunk_rows=7))
    assert [len(f) for f in plain] == [len(f) for f in arrow] == [7, 7, 7, 7, 7, 5]
    for got, want in zip(arrow, plain, strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
