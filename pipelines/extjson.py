"""MongoDB Extended JSON v2 (relaxed) with two tacn tags, for every value tacn serialises.

Relaxed mode is what ``mongoexport`` writes and ``mongoimport`` reads. Two values
Extended JSON cannot carry exactly get a tag that :func:`decode_line` reads back:
a bare ``datetime.date`` (only the SQLite store can hold one) as
``{"$tacnDate": "YYYY-MM-DD"}``, and a naive datetime with sub-millisecond digits
(Extended JSON keeps milliseconds) as ``{"$tacnDatetime": "ISO"}``. NaN and
±Infinity become ``$numberDouble``. Used by backups and by the SQLite store's
``extra`` column, so both keep documents exactly.

:func:`jsonable` is the one "make this JSON-safe" helper, for reports rather than documents:
``--json`` output, rejects files, JUnit samples. It writes plain JSON types (ISO strings for
dates, hex for ObjectIds, null for NaN/NaT) that any JSON reader takes as they are.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import PurePath
from typing import Any

from bson import Code, Int64, ObjectId, json_util


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dataclasses and mappings as objects, sequences and sets as
    arrays, dates and datetimes as ISO strings, NaN/NaT/NA as null, numpy and BSON scalars as
    numbers, anything else (ObjectId, Path, Decimal128, …) as its string."""
    if value is None or isinstance(value, str) or type(value) in (bool, int):
        return value
    if isinstance(value, int):  # Int64, numpy-free int subclasses
        return int(value)
    if isinstance(value, float):
        return None if value != value else float(value)
    if is_dataclass(value) and not isinstance(value, type):
        # field by field, as asdict would give them, without its deep copy of every value
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if _missing(value):  # NaT (a datetime), pd.NA
        return None
    if isinstance(value, date):  # datetime included
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return jsonable(value.item())
        except (ValueError, TypeError):
            pass
    return str(value)


def _missing(value: Any) -> bool:
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pd.NA has no truth value; arrays have no single one
        return type(value).__name__ == "NAType"


DATE_TAG = "$tacnDate"
DATETIME_TAG = "$tacnDatetime"

_OPTIONS = json_util.RELAXED_JSON_OPTIONS.with_options(tz_aware=False)


@lru_cache(maxsize=4096)  # a backup's documents share a handful of timestamps
def _encode_datetime(value: datetime) -> dict:
    if value.tzinfo is None:
        if value.microsecond % 1000:
            return {DATETIME_TAG: value.isoformat()}
        if 1970 <= value.year <= 9999:  # relaxed form, as bson.json_util writes it
            ms = f".{value.microsecond // 1000:03d}" if value.microsecond else ""
            return {"$date": f"{value.strftime('%Y-%m-%dT%H:%M:%S')}{ms}Z"}
    return json_util.default(value, json_options=_OPTIONS)


def _default(value: Any) -> Any:
    """Extended JSON for what plain JSON cannot hold (called by json.dumps)."""
    kind = type(value)
    if kind is datetime:
        return _encode_datetime(value)
    if kind is ObjectId:
        return {"$oid": str(value)}
    if isinstance(value, datetime):
        return _encode_datetime(value)
    if isinstance(value, date):
        return {DATE_TAG: value.isoformat()}
    return json_util.default(value, json_options=_OPTIONS)


def _tagged(value: Any) -> Any:
    """The value with what the C encoder would write as a plain number or string tagged:
    ``Int64`` (an int subclass) as ``$numberLong``, ``Code`` (a str subclass) as ``$code``,
    NaN and ±Infinity as ``$numberDouble``."""
    kind = type(value)
    if kind is float:
        if math.isfinite(value):
            return value
        return {"$numberDouble": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if kind is Int64:
        return {"$numberLong": str(int(value))}
    if kind is Code:
        return json_util.default(value, json_options=_OPTIONS)
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tagged(v) for v in value]
    return value


# Values of these types are written exactly by the C encoder (or by _default); any other
# type in a document (Int64, Code, nested containers) sends it through _tagged first.
_DIRECT_TYPES = frozenset((str, int, float, bool, type(None), datetime, date, ObjectId))


def _make_encoder():
    """One compact encoder for every line (json.dumps would build a new one per call)."""
    encoder = json.JSONEncoder(default=_default, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:
        return encoder.encode
    # what JSONEncoder.iterencode(_one_shot=True) builds, made once; no circular check (documents are trees)
    iterencode = c_make_encoder(None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    return lambda doc: "".join(iterencode(doc, 0))


_ENCODE = _make_encoder()


def encode_document(doc: Any) -> str:
    """One line of relaxed Extended JSON (no newline): a document or any other value.

    Every value keeps its BSON type: ``Int64`` is written as ``$numberLong`` (relaxed
    mode would write a bare number, read back as a plain int), so what is read back
    equals what was written, type included.
    """
    if type(doc) is not dict or not _DIRECT_TYPES.issuperset(map(type, doc.values())):
        return _ENCODE(_tagged(doc))
    try:
        return _ENCODE(doc)
    except ValueError:  # NaN or ±Infinity somewhere: rare, so the slow walk only then
        return _ENCODE(_tagged(doc))


def _object_pairs_hook(pairs: list[tuple[str, Any]]) -> Any:
    if len(pairs) == 1:
        key, value = pairs[0]
        if key == DATE_TAG:
            return date.fromisoformat(value)
        if key == DATETIME_TAG:
            return datetime.fromisoformat(value)
        if key == "$oid":
            return ObjectId(value)
    return json_util.object_pairs_hook(pairs, _OPTIONS)


def decode_line(line: str) -> Any:
    """A document from one line of (relaxed or canonical) Extended JSON, tacn tags included.

    Any malformed line raises ValueError, bson's own errors (a bad ``$oid``) included,
    so every reader reports it as a bad line rather than an unexpected error.
    """
    from bson.errors import BSONError

    try:
        return json.loads(line, object_pairs_hook=_object_pairs_hook)
    except BSONError as exc:
        raise ValueError(f"invalid Extended JSON: {exc}") from None
