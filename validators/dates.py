"""What a valid ``trade_date`` is, in one place.

A valid trade_date is a ``str`` in the form ``YYYY-MM-DD`` that is a real
calendar date between the first day of the Shanghai exchange (1990-12-19) and
tomorrow in Asia/Shanghai. Every check in tacn (the scalar normaliser, the
vectorised pandas test, the SQL of the SQLite store and the MongoDB query)
derives from the constants here.

This module imports nothing heavy: pandas and numpy are only touched when the
caller already passed one of their objects.
"""

from __future__ import annotations

import math
import re
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_TRADE_DATE = date(1990, 12, 19)
FIRST_TRADE_DATE_ISO = FIRST_TRADE_DATE.isoformat()

# The ISO shape with real month lengths and leap days, unanchored. Leap years are
# written out for 1900-2099 (every fourth year; 1900 is excluded), which covers the
# allowed range, so a store can evaluate it without date functions.
#
# One text for three regex dialects (Python ``re`` for the scalar test, pandas and
# mongomock; PCRE in MongoDB; RE2 in FerretDB and pyarrow), so it only uses
# constructs that mean the same in all three: explicit ``[0-9]`` (``\d`` is Unicode
# in Python, ASCII in PCRE and RE2) and no ``$`` (Python and PCRE let it match before
# a final newline, RE2 does not). Each evaluator anchors the end its own exact way:
# ``re.fullmatch`` in Python and pandas, a length test in SQL and in MongoDB.
ISO_DATE_SHAPE = (
    r"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    r"|(?:19(?:0[48]|[2468][048]|[13579][26])|20(?:[02468][048]|[13579][26]))-02-29)"
)
ISO_DATE_LENGTH = 10  # characters (and bytes: the shape is ASCII) of a valid trade_date
ISO_DATE_RE = re.compile(ISO_DATE_SHAPE)  # use with .fullmatch, never .match
# MongoDB: the shape from the start, and nothing after the tenth character ("(?s)" so
# that "." also covers a newline, in all three dialects).
MONGO_ISO_DATE_START = "^" + ISO_DATE_SHAPE
MONGO_LONGER_THAN_A_DATE = f"(?s)^.{{{ISO_DATE_LENGTH + 1}}}"

# Only ASCII digits are digits: Python's \d and int() also take "２０２５" and "٢٠٢٥".
_ACCEPTED_TEXT = (
    re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"),
    re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})"),
    re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2})"),
)
_DIGITS_RE = re.compile(r"[0-9]+")
ASCII_BLANKS = " \t\r\n\f\v"


class InvalidTradeDate(ValueError):
    """A value that is not, and cannot be turned into, a valid trade_date."""

    def __init__(self, value: object, reason: str):
        self.value = value
        self.reason = reason
        super().__init__(f"invalid trade_date {value!r}: {reason}")


def shanghai_today(now: datetime | None = None) -> date:
    """Today's date on the Shanghai exchange's clock."""
    now = now or datetime.now(tz=SHANGHAI)
    if now.tzinfo is None:  # naive means UTC, like the stored timestamps
        now = now.replace(tzinfo=ZoneInfo("UTC"))
    return now.astimezone(SHANGHAI).date()


def latest_allowed_trade_date(now: datetime | None = None) -> date:
    """Tomorrow in Asia/Shanghai: the newest date a record may carry."""
    return shanghai_today(now) + timedelta(days=1)


def _check_range(value: object, day: date, now: datetime | None) -> str:
    if day < FIRST_TRADE_DATE:
        raise InvalidTradeDate(value, f"before the first trading day {FIRST_TRADE_DATE_ISO}")
    latest = latest_allowed_trade_date(now)
    if day > latest:
        raise InvalidTradeDate(value, f"after tomorrow in Asia/Shanghai ({latest.isoformat()})")
    return day.isoformat()


def _from_numpy(value: object) -> date | None:
    numpy = sys.modules.get("numpy")
    if numpy is None or not isinstance(value, numpy.datetime64):
        return None
    if numpy.isnat(value):
        raise InvalidTradeDate(value, "missing (NaT)")
    as_day = value.astype("datetime64[D]").item()
    if not isinstance(as_day, date):  # outside Python's date range
        raise InvalidTradeDate(value, "outside the representable date range")
    return as_day


def normalize_trade_date(value: object, *, now: datetime | None = None) -> str:
    """Return ``value`` as a ``YYYY-MM-DD`` string or raise :class:`InvalidTradeDate`.

    Accepts date, datetime, pandas.Timestamp, numpy.datetime64 and the texts
    ``YYYYMMDD``, ``YYYY-MM-DD`` and ``YYYY/MM/DD``. Never substitutes a date:
    integers, row numbers such as "0", NaN, None and impossible dates fail.
    """
    if value is None:
        raise InvalidTradeDate(value, "missing")
    if isinstance(value, bool) or isinstance(value, int):
        raise InvalidTradeDate(value, "an integer is not a date (row numbers caused the 2025-10-23 bug)")
    if isinstance(value, float):
        raise InvalidTradeDate(value, "missing (NaN)" if math.isnan(value) else "a number is not a date")
    numpy_day = _from_numpy(value)
    if numpy_day is not None:
        return _check_range(value, numpy_day, now)
    if isinstance(value, datetime):  # before date: datetime is a date subclass
        if value != value:  # pandas.NaT
            raise InvalidTradeDate(value, "missing (NaT)")
        return _check_range(value, value.date(), now)
    if isinstance(value, date):
        return _check_range(value, value, now)
    if isinstance(value, str):
        text = value.strip(ASCII_BLANKS)
        for pattern in _ACCEPTED_TEXT:
            match = pattern.fullmatch(text)
            if match:
                year, month, day = (int(part) for part in match.groups())
                try:
                    parsed = date(year, month, day)
                except ValueError:
                    raise InvalidTradeDate(value, "not a real calendar date") from None
                return _check_range(value, parsed, now)
        if not text:
            raise InvalidTradeDate(value, "empty")
        if _DIGITS_RE.fullmatch(text):
            raise InvalidTradeDate(value, "digits that are not YYYYMMDD (a row number?)")
        raise InvalidTradeDate(value, "not one of YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD")
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.integer | numpy.floating):
        raise InvalidTradeDate(value, "a number is not a date")
    raise InvalidTradeDate(value, f"unsupported type {type(value).__name__}")


def is_valid_iso_trade_date(value: object, *, now: datetime | None = None) -> bool:
    """True when ``value`` is already stored correctly: an ISO string, real, in range."""
    if not isinstance(value, str) or not ISO_DATE_RE.fullmatch(value):
        return False
    return FIRST_TRADE_DATE_ISO <= value <= latest_allowed_trade_date(now).isoformat()


# Kinds of bad stored value, for the breakdowns of clean and verify-fix.
KIND_VALID = "valid"
KIND_MISSING = "missing"
KIND_DIGITS = "pure_digits"
KIND_IMPOSSIBLE = "impossible_date"
KIND_OUT_OF_RANGE = "out_of_range"
KIND_OTHER_FORMAT = "other_format"
KIND_WRONG_TYPE = "wrong_type"


def classify_stored_trade_date(value: object, *, now: datetime | None = None) -> str:
    """Name the kind of problem of a stored trade_date (``valid`` when none)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return KIND_MISSING
    if not isinstance(value, str):
        return KIND_WRONG_TYPE
    if value == "":
        return KIND_MISSING
    if is_valid_iso_trade_date(value, now=now):
        return KIND_VALID
    if _ACCEPTED_TEXT[0].fullmatch(value):
        return KIND_IMPOSSIBLE if not ISO_DATE_RE.fullmatch(value) else KIND_OUT_OF_RANGE
    if _DIGITS_RE.fullmatch(value):
        return KIND_DIGITS
    return KIND_OTHER_FORMAT


def arrow_strings(series):
    """The pyarrow array behind a pandas text column (``str`` or ``string`` dtype, Arrow storage), else None.

    Such a column holds only text and missing values, so the vectorised rules can ask Arrow
    compute directly (comparisons, regexes, set membership) instead of testing each value's type.
    """
    import pandas as pd

    if not (isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow"):
        return None
    return getattr(series.array, "_pa_array", None)


def valid_iso_mask(series, *, now: datetime | None = None):
    """Vectorised :func:`is_valid_iso_trade_date` over a pandas Series (bool Series)."""
    import pandas as pd

    latest = latest_allowed_trade_date(now).isoformat()
    strings = arrow_strings(series)
    if strings is not None:  # a str column: Arrow answers in C, without pandas' copies to its "string" dtype
        import numpy as np
        import pyarrow.compute as pc

        ok = pc.and_(pc.and_(pc.equal(pc.binary_length(strings), ISO_DATE_LENGTH),
                             pc.match_substring_regex(strings, "^" + ISO_DATE_SHAPE)),
                     pc.and_(pc.greater_equal(strings, FIRST_TRADE_DATE_ISO), pc.less_equal(strings, latest)))
        return pd.Series(np.asarray(pc.fill_null(ok, False)), index=series.index)
    is_text = series.map(type).eq(str) if series.dtype == object else pd.Series(
        pd.api.types.is_string_dtype(series.dtype), index=series.index
    )
    text = series.where(is_text).astype("string")
    shaped = text.str.fullmatch(ISO_DATE_SHAPE).fillna(False).astype(bool)
    in_range = (text >= FIRST_TRADE_DATE_ISO).fillna(False) & (text <= latest).fillna(False)
    return is_text & shaped & in_range.astype(bool)
