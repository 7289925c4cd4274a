"""Source layouts → documents in the application's exact shape, a whole frame at a time.

Three layouts reach the sync: AKShare's (Chinese column names, ``stock_zh_a_hist``),
Tushare's (``pro.daily``: ``ts_code``, ``vol`` in lots, ``amount`` in thousands)
and the store's own document layout (an export). :func:`convert_frame` turns
any of them into a frame of documents with the same values
:func:`tacn.validators.records.build_document` gives row by row, vectorised so that a
file of a million rows converts in seconds.

Rules of the contract that apply here:

- trade_date comes from the date column (日期 / trade_date), never from the
  frame's index (a RangeIndex turned row numbers into dates on 2025-10-23), and
  is normalised exactly as :func:`tacn.validators.dates.normalize_trade_date` does;
  a value it refuses makes the row a reject, never a substituted date.
- Tushare's volume is multiplied by 100 (lots → shares) and amount by 1000
  (thousand yuan → yuan), as the application converts them; AKShare's values are
  stored as AKShare returns them.
- change and pct_chg are recomputed from close and pre_close (4 decimals); where
  pre_close is absent (AKShare has none), the source's own values are kept, as
  the application does.
- zero is written as the application writes it: ``volume or None`` for every
  source and ``amount or None`` for Tushare, so a 0 becomes null.
- a code's exchange suffix (Tushare's ts_code, a document's full_symbol) must be
  .SH, .SZ or .BJ; ts_code must name the code's own exchange.

pandas is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tacn.validators.dates import ASCII_BLANKS, InvalidTradeDate, normalize_trade_date, valid_iso_mask
from tacn.validators.records import (
    DOCUMENT_VERSION,
    FIELD_NAMES,
    OPTIONAL_FIELDS,
    PERIODS,
    utc_now,
)

if TYPE_CHECKING:
    import pandas as pd

LAYOUTS = ("akshare", "tushare", "document")

# AKShare column → document field (振幅, the amplitude, is not part of the document).
AKSHARE_FIELDS = {
    "日期": "trade_date",
    "股票代码": "symbol",
    "开盘": "open",
    "收盘": "close",
    "最高": "high",
    "最低": "low",
    "成交量": "volume",
    "成交额": "amount",
    "涨跌幅": "pct_chg",
    "涨跌额": "change",
}
# 换手率 is not written: the application renames it to ``turnover``, a name its writer never
# reads, so its AKShare documents carry no turnover_rate (a writer that added one would flip
# the field on every alternate sync).
AKSHARE_COLUMNS = ("日期", "股票代码", "开盘", "收盘", "最高", "最低", "成交量", "成交额", "振幅", "涨跌幅", "涨跌额", "换手率")
TUSHARE_VOLUME_FACTOR = 100  # lots → shares
TUSHARE_AMOUNT_FACTOR = 1000  # thousand yuan → yuan

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "akshare": ("日期", "开盘", "收盘", "最高", "最低", "成交量"),
    "tushare": ("ts_code", "trade_date", "open", "high", "low", "close", "vol"),
    "document": ("symbol", "trade_date", "open", "high", "low", "close"),
}
# Columns whose text must stay text when a file is read (leading zeros, YYYYMMDD dates).
TEXT_COLUMNS = ("日期", "股票代码", "ts_code", "trade_date", "symbol", "code", "full_symbol",
                "market", "period", "data_source")
DATE_COLUMN = {"akshare": "日期", "tushare": "trade_date", "document": "trade_date"}

_BASE_FIELDS = tuple(name for name in FIELD_NAMES if name not in OPTIONAL_FIELDS
                     and name not in ("created_at", "updated_at", "version"))
_REQUIRED_VALUES = ("open", "high", "low", "close", "volume")
_NUMERIC_FIELDS = ("open", "high", "low", "close", "pre_close", "volume", "amount", "change", "pct_chg")


class LayoutError(ValueError):
    """The frame is not in the layout it claims (missing columns, unknown layout)."""


def detect_layout(columns: Iterable[str]) -> str | None:
    """Which layout a set of column names is in, or None."""
    names = set(columns)
    if "日期" in names:
        return "akshare"
    if "ts_code" in names and "vol" in names:
        return "tushare"
    if {"symbol", "trade_date"} <= names:
        return "document"
    return None


def missing_columns(columns: Iterable[str], layout: str) -> list[str]:
    names = set(columns)
    return [c for c in REQUIRED_COLUMNS[layout] if c not in names]


@dataclass
class ConvertedFrame:
    """Documents as a frame (index = the source rows' index) and why rows could not be converted.

    ``problems`` maps a source row's index label to its reasons; those rows are
    still in ``frame`` (with the offending value missing) so the rules see them,
    but must never be written.
    """

    frame: pd.DataFrame
    problems: dict[Any, list[str]] = field(default_factory=dict)
    now: datetime | None = None

    def add_problem(self, label: Any, reason: str) -> None:
        self.problems.setdefault(label, []).append(reason)


# -- trade_date, vectorised ------------------------------------------------------


def normalize_trade_dates(series: pd.Series, *, now: datetime | None = None) -> tuple[pd.Series, dict[Any, str]]:
    """``normalize_trade_date`` over a Series: (ISO strings, missing where refused; {label: reason}).

    Text columns (CSV, JSON) go through vectorised string operations; other
    values (datetime.date from AKShare, Timestamps, numbers) element by element.
    The reason of a refused value is the scalar normaliser's own.
    """
    import pandas as pd

    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        if isinstance(series.dtype, pd.DatetimeTZDtype):  # an instant: its date on the exchange's clock
            series = series.dt.tz_convert("Asia/Shanghai")
        candidates = series.dt.strftime("%Y-%m-%d").astype("string")
        text_rows = pd.Series(True, index=series.index)
    else:
        if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
            text_rows = pd.Series(True, index=series.index)
            text = series.astype("string")
        else:
            text_rows = series.map(type).eq(str)
            text = series.where(text_rows).astype("string")
        text = text.str.strip(ASCII_BLANKS)  # as the scalar normaliser: ASCII blanks only
        compact = text.str.len().eq(8).fillna(False)  # YYYYMMDD
        slashed = text.str.contains("/", regex=False).fillna(False)  # YYYY/MM/DD
        candidates = text.copy()
        if compact.any():
            candidates[compact] = text[compact].str.replace(r"^([0-9]{4})([0-9]{2})([0-9]{2})$", r"\1-\2-\3", regex=True)
        if slashed.any():
            candidates[slashed] = text[slashed].str.replace(r"^([0-9]{4})/([0-9]{2})/([0-9]{2})$", r"\1-\2-\3", regex=True)
    ok = valid_iso_mask(candidates, now=now) & text_rows
    iso = candidates.where(ok)
    reasons: dict[Any, str] = {}
    for label in series.index[~ok.to_numpy()]:
        value = series.at[label]
        try:
            iso.at[label] = normalize_trade_date(value, now=now)
        except InvalidTradeDate as exc:
            reasons[label] = exc.reason
        except (TypeError, ValueError) as exc:
            reasons[label] = f"unreadable date ({exc})"
    return iso.astype("string"), reasons


# -- numbers ----------------------------------------------------------------------


def _numbers(series: pd.Series, name: str, converted: ConvertedFrame) -> pd.Series:
    """float64; a present value that is not a number becomes missing and a problem of its row."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        for label in series.index:
            converted.add_problem(label, f"{name} is not a number ({series.at[label]!r})")
        return pd.Series(float("nan"), index=series.index)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    values = series
    if pd.api.types.is_string_dtype(series.dtype):
        values = series.where(series.astype("string").str.strip().ne("").fillna(False))
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = values.notna() & numbers.isna()
    if bad.any():
        for label in series.index[bad.to_numpy()]:
            converted.add_problem(label, f"{name} is not a number ({series.at[label]!r})")
    return numbers


def _rounded4(values) -> list:
    """Python's round(x, 4) (what build_document uses), NaN kept."""
    return [round(v, 4) if v == v else v for v in values]


def _symbols(series: pd.Series) -> pd.Series:
    """Codes as text; integer codes (a spreadsheet dropped the zeros) get them back."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype("string").str.zfill(6)
    if series.dtype == object:
        is_int = series.map(lambda v: isinstance(v, int) and not isinstance(v, bool))
        if is_int.any():
            series = series.copy()
            series[is_int] = series[is_int].map(lambda v: f"{v:06d}")
    text = series.astype("string").str.strip()
    if text.str.contains(".", regex=False).any():  # 000001.SZ → 000001 (a wrong suffix is a problem of its own)
        text = text.str.replace(r"^([0-9]{6})\.(?:SH|SZ|BJ|sh|sz|bj)$", r"\1", regex=True)
    return text


# -- the conversion ---------------------------------------------------------------


def convert_frame(
    raw: pd.DataFrame,
    layout: str,
    *,
    period: str = "daily",
    symbol: str | None = None,
    data_source: str | None = None,
    now: datetime | None = None,
) -> ConvertedFrame:
    """A frame in ``layout`` → a frame of documents (one per row, same index).

    ``symbol`` fills the symbol when the frame has no code column (AKShare's
    frame always has 股票代码). ``data_source`` defaults to the layout's own
    (akshare, tushare) or, for documents, their data_source column.
    """
    import numpy as np
    import pandas as pd

    if layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if period not in PERIODS:
        raise LayoutError(f"unknown period {period!r}: expected one of {', '.join(PERIODS)}")
    lacking = missing_columns(raw.columns, layout)
    if layout == "document" and "symbol" in lacking and symbol is not None:
        lacking.remove("symbol")
    if lacking:
        raise LayoutError(f"{layout} layout but the columns {', '.join(lacking)} are missing")
    stamp = now or utc_now()
    converted = ConvertedFrame(pd.DataFrame(index=raw.index), now=stamp)
    out = converted.frame
    index = raw.index

    def column(name: str) -> pd.Series | None:
        return raw[name] if name in raw.columns else None

    # symbol
    if layout == "akshare":
        source_symbol = column("股票代码")
    elif layout == "tushare":
        source_symbol = raw["ts_code"].astype("string").str.split(".", n=1).str[0]
    else:
        source_symbol = column("symbol")
    if source_symbol is None:
        symbols = pd.Series(symbol, index=index, dtype="string")
    else:
        symbols = _symbols(source_symbol)
        if symbol is not None:
            symbols = symbols.fillna(symbol)

    dates, reasons = normalize_trade_dates(raw[DATE_COLUMN[layout]], now=stamp)
    for label, reason in reasons.items():
        converted.add_problem(label, f"trade_date_iso: {reason}")

    # numbers, in the document's units
    if layout == "akshare":
        names = {field_: source for source, field_ in AKSHARE_FIELDS.items() if field_ in _NUMERIC_FIELDS}
    elif layout == "tushare":
        names = {n: n for n in _NUMERIC_FIELDS if n != "volume"}
        names["volume"] = "vol"
    else:
        names = {n: n for n in _NUMERIC_FIELDS}
    numbers: dict[str, pd.Series] = {}
    for field_ in _NUMERIC_FIELDS:
        source = names.get(field_)
        values = column(source) if source else None
        numbers[field_] = (
            _numbers(values, source, converted) if values is not None else pd.Series(np.nan, index=index)
        )
    # A row of a source that always sends these values but lacks one is malformed, not a null to store.
    for field_ in _REQUIRED_VALUES:
        source = names[field_]
        if source in REQUIRED_COLUMNS[layout]:
            missing = numbers[field_].isna()
            for label in index[missing.to_numpy(dtype=bool)]:
                if not any(p.startswith(f"{source} ") for p in converted.problems.get(label, ())):
                    converted.add_problem(label, f"{source} is missing")
    if layout == "tushare":
        numbers["volume"] = numbers["volume"] * TUSHARE_VOLUME_FACTOR
        numbers["amount"] = numbers["amount"] * TUSHARE_AMOUNT_FACTOR
    _check_suffixes(raw, layout, converted)

    # change / pct_chg: recomputed where close and pre_close are present and non-zero
    # (records.recompute_change: pct_chg from the rounded change), else the source's own
    close, pre_close = numbers["close"], numbers["pre_close"]
    both = close.notna() & pre_close.notna() & (close != 0) & (pre_close != 0)
    change = numbers["change"].copy()
    pct_chg = numbers["pct_chg"].copy()
    if both.any():
        rounded_change = np.array(_rounded4((close[both] - pre_close[both]).to_numpy()), dtype=float)
        change[both] = rounded_change
        pct_chg[both] = _rounded4(rounded_change / pre_close[both].to_numpy() * 100)

    def text_column(name: str, default: str | None) -> pd.Series:
        values = column(name) if layout == "document" else None
        if values is None:
            return pd.Series(default, index=index, dtype="string")
        values = values.astype("string")
        return values.fillna(default) if default is not None else values

    default_source = data_source or (layout if layout != "document" else None)
    # The application writes ``volume or None`` (every source) and ``amount or None`` (Tushare).
    numbers["volume"] = numbers["volume"].where(numbers["volume"] != 0)
    if default_source == "tushare":
        numbers["amount"] = numbers["amount"].where(numbers["amount"] != 0)
    elif layout == "document" and data_source is None and "data_source" in raw.columns:
        tushare_rows = raw["data_source"].astype("string").eq("tushare").fillna(False).to_numpy(dtype=bool)
        numbers["amount"] = numbers["amount"].where(~(tushare_rows & (numbers["amount"] == 0).to_numpy()))
    out["symbol"] = symbols
    out["code"] = symbols
    out["full_symbol"] = symbols + np.where(symbols.str.startswith("6").fillna(False), ".SH", ".SZ")
    out["market"] = text_column("market", "CN")
    out["trade_date"] = dates
    out["period"] = text_column("period", period) if layout == "document" else pd.Series(period, index=index, dtype="string")
    if layout == "document" and data_source is None:
        out["data_source"] = text_column("data_source", None)
    else:
        out["data_source"] = pd.Series(default_source, index=index, dtype="string")
    for name in ("open", "high", "low", "close", "pre_close", "volume", "amount"):
        out[name] = numbers[name]
    out["change"] = change
    out["pct_chg"] = pct_chg
    optional_sources = {n: n for n in OPTIONAL_FIELDS} if layout == "document" else {}
    for name, source in optional_sources.items():
        values = column(source)
        if values is not None:
            out[name] = _numbers(values, source, converted)
    return converted


def _check_suffixes(raw: pd.DataFrame, layout: str, converted: ConvertedFrame) -> None:
    """A row whose code carries an unknown exchange suffix (``000001.XX``) is a reject, not a guess.

    Tushare's ts_code, and a code column written with a suffix (``000001.SZ``), must
    name the code's own exchange; a document's full_symbol may carry the
    application's .SZ for Beijing codes, but no unknown suffix.
    """
    from tacn.validators.records import EXCHANGE_SUFFIXES, parse_code

    columns = {"tushare": ("ts_code",), "document": ("symbol", "full_symbol"), "akshare": ("股票代码",)}[layout]
    for name in columns:
        if name not in raw.columns:
            continue
        values = raw[name]
        text = values.where(values.map(type).eq(str)).astype("string").str.strip()
        why: dict[str, str] = {}
        for value in text.dropna().unique().tolist():
            prefix, dot, suffix = value.partition(".")
            if name == "full_symbol":
                if suffix and suffix.upper() not in EXCHANGE_SUFFIXES:
                    why[value] = f"unknown exchange suffix {'.' + suffix!r} in {value!r}: expected .SH, .SZ or .BJ"
                continue
            if name != "ts_code" and not dot:
                continue  # a bare code: symbol_format judges it
            try:
                if not dot:
                    raise ValueError(f"{value!r} has no exchange suffix")
                parse_code(value)
            except ValueError as exc:
                why[value] = str(exc)
        if why:
            bad = text.isin(list(why)).fillna(False).to_numpy(dtype=bool)
            for label, value in zip(raw.index[bad], text[bad].tolist(), strict=True):
                converted.add_problem(label, f"{name}: {why[value]}")


@lru_cache(maxsize=32)
def _document_builder(names: tuple[str, ...]):
    """``lambda a0, a1, …: {"symbol": a0, …}``: a dict display builds a million documents about
    a third faster than ``dict(zip(names, row))``. The names are the contract's field names."""
    args = ", ".join(f"a{i}" for i in range(len(names)))
    body = ", ".join(f"{name!r}: a{i}" for i, name in enumerate(names))
    return eval(f"lambda {args}: {{{body}}}")  # noqa: S307 - built from FIELD_NAMES only, never from data


def documents(frame: pd.DataFrame, *, now: datetime | None = None) -> list[dict]:
    """Rows of a converted frame as documents: the app's field order, NaN → None, optional fields only when present."""
    from itertools import repeat

    stamp = now or utc_now()
    if frame.empty:
        return []

    def values(name: str) -> list:
        series = frame[name]
        missing = series.isna()
        if not missing.any():
            return series.tolist()
        array = series.to_numpy(dtype=object, copy=True)
        array[missing.to_numpy()] = None
        return array.tolist()

    optional = [name for name in OPTIONAL_FIELDS if name in frame.columns and frame[name].notna().any()]
    sparse = [name for name in optional if frame[name].isna().any()]  # present on some rows only
    names = [*_BASE_FIELDS, *optional, "created_at", "updated_at", "version"]
    columns = [values(name) for name in names[: len(_BASE_FIELDS) + len(optional)]]
    docs = list(map(_document_builder(tuple(names)), *columns, repeat(stamp), repeat(stamp), repeat(DOCUMENT_VERSION)))
    for name in sparse:  # the app writes an optional field only when it has a value
        for doc in docs:
            if doc[name] is None:
                del doc[name]
    return docs
