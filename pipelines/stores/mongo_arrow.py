"""MongoDB chunks decoded straight into Arrow (pymongoarrow), exact, with the pymongo decoder as fallback.

The optional extra ``tacn[mongo-arrow]`` installs pymongoarrow; without it (or on a server
that refuses the pipeline, or on mongomock) :meth:`MongoStore.iter_frames` reads with pymongo
as before. The Arrow path never changes what a read shows:

- **One query, atomic per document.** The chunks come from one aggregate,
  ``$match`` (the read's filter) then ``$addFields`` with, for every contract field, the
  BSON type the server sees in that very document (``"~t08": {"$type": "$open"}``:
  ``double``, ``bool``, ``missing``, …). The types and the values travel in the same document of the
  same reply, so no write between two queries can make them disagree; the rows keep the
  order of the plain ``find``.
- **The guard.** A chunk is decoded into Arrow (in C, from the reply's raw BSON) and used
  only when every document holds, in every contract field, a type the Arrow column holds
  without conversion (a double, string, date, int or ObjectId as :data:`ALLOWED` says,
  or null, or nothing), and no field outside the contract. pymongoarrow would otherwise
  coerce silently (a bool price becomes 1.0, an int volume 7.0) or drop the field.
- **The fallback.** Any other chunk, and any chunk whose decode raises, is decoded from the
  same raw bytes by pymongo's own BSON decoder into the same DataFrame the plain read
  builds (:func:`documents_frame`): same values, dtypes, column order, row order.
- The Arrow frame copies pandas' inference on the documents column by column (an int
  column with a null is float64, a column of only nulls is object, …); the tests compare
  both paths with ``check_exact`` on FerretDB, the real wire-protocol server.

The names of :data:`MARKS` (``~t00`` … ``~t27``) are reserved: a document holding such a
field would have it replaced by the computed type on the Arrow path (and in its fallback).
"""

from __future__ import annotations

import functools
import logging
import struct
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from tacn.validators.records import FIELDS

log = logging.getLogger("tacn.stores.mongo")

ABSENT = ("null", "missing")  # a null or a missing field: every contract field may be either
# The BSON types ($type names) each kind of contract field may hold on the Arrow path, and
# the Arrow type its column is read as. Everything else goes the pymongo way.
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "str": (("string",), "string"),
    "float": (("double",), "float64"),
    "int": (("int", "long"), "int64"),  # pymongo gives int for both: one int64 column
    "datetime": (("date",), "timestamp"),
    "objectid": (("objectId",), "objectid"),
}
ALLOWED: dict[str, tuple[str, ...]] = {"_id": KINDS["objectid"][0], **{f.name: KINDS[f.kind][0] for f in FIELDS}}
ARROW_KIND: dict[str, str] = {"_id": "objectid", **{f.name: f.kind for f in FIELDS}}
# The computed type fields, one per contract field: short names, since they travel in every document
# (28 of them nearly double a document's bytes with names like "__tacn_type_open").
MARK = "~t"  # their reserved prefix
MARKS: dict[str, str] = {name: f"{MARK}{i:02d}" for i, name in enumerate(ALLOWED)}
# Where pymongo can decode a BSON date into a Python datetime (the plain read raises beyond it)
PY_DATETIME_MS = (-62135596800000, 253402300799999)  # 0001-01-01 .. 9999-12-31T23:59:59.999 UTC
_INT32 = struct.Struct("<i")


@functools.lru_cache(maxsize=1)
def arrow_context_class():
    """pymongoarrow's decoder, or None when the extra is not installed or does not load.

    Imported here only, inside the read: ``tacn --help`` and every other command stay free of it.
    pymongoarrow 1.15's wheels are built against pyarrow 25.0.0; with 25.0.1 (the extra's pin:
    25.0.0 has a segfault tacn hits) its import warns once per Arrow class "pyarrow.lib.X size
    changed, may indicate binary incompatibility. Expected 72 from C header, got 80 from
    PyObject": Cython's check that a class grew, which it tolerates (a class that shrank fails
    the import, and the plain path reads). Exactly those warnings are silenced, here.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r"pyarrow\.lib\.\w+ size changed, may indicate binary incompatibility",
                category=RuntimeWarning)
            from pymongoarrow.context import PyMongoArrowContext
    except Exception as exc:  # ImportError, or a build that does not load against this pyarrow
        log.debug("pymongoarrow not usable (%s): MongoDB reads use pymongo", exc)
        return None
    return PyMongoArrowContext


def typed_pipeline(query: dict) -> list[dict]:
    """The read's filter, then the BSON type of each contract field in each document."""
    return [{"$match": query}, {"$addFields": {MARKS[name]: {"$type": "$" + name} for name in ALLOWED}}]


def documents_frame(docs: list[dict]):
    """The plain read's frame: every field and type as stored, ``_id`` as text."""
    import pandas as pd

    for doc in docs:
        doc["_id"] = str(doc["_id"])
    return pd.DataFrame.from_records(docs, coerce_float=False)


class ReadStats:
    """Which path each chunk of one read took (MongoStore.last_read), and why a chunk fell back."""

    def __init__(self, mode: str, reason: str | None = None):
        self.mode = mode  # "arrow" (the typed aggregate) or "pymongo" (plain find: why in `reason`)
        self.reason = reason
        self.arrow_chunks = self.pymongo_chunks = 0
        self.arrow_records = self.pymongo_records = 0
        self.fallbacks: dict[str, int] = {}

    def took(self, path: str, records: int, why: str | None = None) -> None:
        if path == "arrow":
            self.arrow_chunks += 1
            self.arrow_records += records
        else:
            self.pymongo_chunks += 1
            self.pymongo_records += records
        if why is not None:
            self.fallbacks[why] = self.fallbacks.get(why, 0) + 1
        log.debug("MongoDB chunk of %d records read by %s%s", records, path, f" ({why})" if why else "")

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason, "arrow_chunks": self.arrow_chunks,
                "pymongo_chunks": self.pymongo_chunks, "arrow_records": self.arrow_records,
                "pymongo_records": self.pymongo_records, "fallbacks": dict(self.fallbacks)}


def raw_chunks(batches: Iterable[bytes], chunk_size: int) -> Iterator[tuple[bytes, int]]:
    """Raw BSON reply batches regrouped into chunks of ``chunk_size`` documents: (bytes, documents)."""
    parts: list[bytes] = []
    count = 0
    for batch in batches:
        view = memoryview(batch)
        start = offset = 0
        end = len(batch)
        while offset < end:
            size = _INT32.unpack_from(batch, offset)[0]
            if size < 5:
                raise ValueError(f"a BSON document of {size} bytes in a reply")
            offset += size
            count += 1
            if count == chunk_size:
                parts.append(bytes(view[start:offset]))
                yield b"".join(parts), count
                parts, count, start = [], 0, offset
        if start < end:
            parts.append(bytes(view[start:end]))
    if count:
        yield b"".join(parts), count


def chunk_frame(raw: bytes, count: int, context_class, codec_options, stats: ReadStats):
    """One chunk's frame: from Arrow when the guard holds, else pymongo's decode of the same bytes."""
    why = None
    try:
        context = context_class(None)
        context.process_bson_stream(raw)
        table = context.finish()
        frame, why = arrow_frame(table, count)
    except Exception as exc:  # pymongoarrow's TypeError/ValueError/InvalidBSON, an Arrow error: the exact way
        frame, why = None, f"Arrow decode failed: {type(exc).__name__}"
    if frame is not None:
        stats.took("arrow", count)
        return frame
    from bson import decode_all

    docs = decode_all(raw, codec_options)
    for doc in docs:
        for mark in MARKS.values():
            doc.pop(mark, None)
    stats.took("pymongo", count, why)
    return documents_frame(docs)


def arrow_frame(table, count: int):
    """(frame, None) when every document of the chunk fits its Arrow column exactly, else (None, why)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows != count:
        return None, "Arrow rows != documents"
    names = table.column_names
    kinds = {}
    for name, mark in MARKS.items():
        if mark not in names:
            return None, "the server did not compute the types"
        column = table.column(mark)
        if not pa.types.is_string(column.type) or column.null_count:
            return None, "the server did not compute the types"
        seen = set(pc.unique(column).to_pylist())
        bad = seen - set(ALLOWED[name]) - (set() if name == "_id" else set(ABSENT))  # a null _id reads "None"
        if bad:
            return None, f"{name} holds {', '.join(sorted(bad))}"
        kinds[name] = (column, seen)
    marks = set(MARKS.values())
    fields = [name for name in names if name not in marks]
    extra = [name for name in fields if name not in ALLOWED]
    if extra:
        return None, "fields outside the contract"
    columns = {}
    for name in fields:
        column, seen = kinds[name]
        values = seen - set(ABSENT)
        if not values:  # only nulls (and missing): what pandas makes of None / NaN objects
            columns[name] = _absent_column(column, count)
            continue
        columns[name] = _typed_column(table.column(name), ARROW_KIND[name])
        if columns[name] is None:
            return None, f"{name}: a date outside Python's datetime range"
    import pandas as pd

    return pd.DataFrame(columns), None


def _absent_column(marks, count: int):
    """None where the field is null, NaN where it is missing: object if all null, else float64 (as pandas does)."""
    import numpy as np
    import pyarrow.compute as pc

    null = pc.equal(marks, "null").to_numpy(zero_copy_only=False)
    if null.all():
        return np.full(count, None, dtype=object)
    return np.full(count, np.nan)


def _typed_column(column, kind: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "objectid":
        return _hex_ids(column)
    if kind == "datetime":
        column = column.cast(pa.timestamp("ms")) if not pa.types.is_timestamp(column.type) else column
        bounds = pc.min_max(column.cast(pa.int64()))
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is not None and (low < PY_DATETIME_MS[0] or high > PY_DATETIME_MS[1]):
            return None
        return column.cast(pa.timestamp("us")).to_pandas()
    target = {"str": pa.string(), "float": pa.float64(), "int": pa.int64()}[kind]
    return column.cast(target).to_pandas()


def _hex_ids(column):
    """ObjectIds (12 bytes each, no nulls: the guard admits only ObjectIds) as pymongo's str(): 24 hex digits."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    chunks = []
    for chunk in column.chunks:
        storage = chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
        data = np.frombuffer(storage.buffers()[1], dtype=np.uint8)[storage.offset * 12:(storage.offset + len(storage)) * 12]
        digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
        out = np.empty(data.size * 2, dtype=np.uint8)
        out[0::2] = digits[data >> 4]
        out[1::2] = digits[data & 15]
        offsets = np.arange(0, out.size + 1, 24, dtype=np.int32)
        chunks.append(pa.StringArray.from_buffers(len(storage), pa.py_buffer(offsets), pa.py_buffer(out)))
    return pd.Series(pa.chunked_array(chunks, pa.string()).to_pandas()) if chunks else pd.Series([], dtype="str")
