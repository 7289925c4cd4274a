"""The ``stock_daily_quotes`` document, as TradingAgents-CN writes it.

One definition of the fields, their types and the key. Stores, sources,
schemas and reports all read it from here. See
../shared/reference/tradingagents-cn.md for where each fact comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

COLLECTION = "stock_daily_quotes"
DEFAULT_DATABASE = "tradingagents"

KEY_FIELDS: tuple[str, ...] = ("symbol", "trade_date", "data_source", "period")
UNIQUE_INDEX_NAME = "symbol_date_source_period_unique"
LEGACY_UNIQUE_INDEX_NAME = "symbol_date_source_unique"

PERIODS = ("daily", "weekly", "monthly")
DATA_SOURCES = ("tushare", "akshare", "baostock")
MARKETS = ("CN", "HK", "US")
DOCUMENT_VERSION = 1


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "str", "float", "int", "datetime"
    always_written: bool  # the app writes it (possibly null) on every document
    description: str


FIELDS: tuple[Field, ...] = (
    Field("symbol", "str", True, "6-digit code, e.g. 000001"),
    Field("code", "str", True, "same as symbol"),
    Field("full_symbol", "str", True, "code with exchange suffix, e.g. 600000.SH"),
    Field("market", "str", True, "CN, HK or US"),
    Field("trade_date", "str", True, "YYYY-MM-DD"),
    Field("period", "str", True, "daily, weekly or monthly"),
    Field("data_source", "str", True, "tushare, akshare or baostock"),
    Field("open", "float", True, "opening price"),
    Field("high", "float", True, "highest price"),
    Field("low", "float", True, "lowest price"),
    Field("close", "float", True, "closing price"),
    Field("pre_close", "float", True, "previous close"),
    Field("volume", "float", True, "shares (Tushare lots x100); a 0 is written null"),
    Field("amount", "float", True, "yuan (Tushare thousands x1000); a Tushare 0 is written null"),
    Field("change", "float", True, "close - pre_close, 4 decimals"),
    Field("pct_chg", "float", True, "percent change, 4 decimals"),
    Field("turnover_rate", "float", False, "optional"),
    Field("volume_ratio", "float", False, "optional"),
    Field("pe", "float", False, "optional"),
    Field("pb", "float", False, "optional"),
    Field("ps", "float", False, "optional"),
    Field("adjustflag", "float", False, "optional"),
    Field("tradestatus", "float", False, "optional"),
    Field("isST", "float", False, "optional"),
    Field("created_at", "datetime", True, "naive UTC"),
    Field("updated_at", "datetime", True, "naive UTC"),
    Field("version", "int", True, "document version, 1"),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
PRICE_FIELDS = ("open", "high", "low", "close", "pre_close")
OPTIONAL_FIELDS = tuple(f.name for f in FIELDS if not f.always_written)


def utc_now() -> datetime:
    """Naive UTC, truncated to milliseconds as MongoDB stores it."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


EXCHANGE_SUFFIXES = ("SH", "SZ", "BJ")


def exchange_suffix(code: str) -> str:
    """The exchange of an A-share code (6xx SH; 0xx/3xx SZ; 4xx/8xx/92x BJ)."""
    if code.startswith("6"):
        return "SH"
    if code.startswith(("4", "8", "92")):
        return "BJ"
    return "SZ"


def parse_code(text: str) -> str:
    """A 6-digit code from ``000001`` or ``000001.SZ`` (suffix in any case); ValueError says why not.

    A suffix must name the code's own exchange: ``000001.XX`` is no exchange, and
    ``000001.SH`` is another instrument (the SSE index), not the Shenzhen stock.
    """
    code, dot, suffix = text.strip().partition(".")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        raise ValueError(f"not a 6-digit code: {text!r}")
    if dot:
        wanted = exchange_suffix(code)
        if suffix.upper() not in EXCHANGE_SUFFIXES:
            raise ValueError(f"unknown exchange suffix {'.' + suffix!r} in {text!r}: expected .SH, .SZ or .BJ "
                             f"({code} is .{wanted})")
        if suffix.upper() != wanted:
            raise ValueError(f"{text!r}: {code} is a .{wanted} code, not .{suffix.upper()}")
    return code


def app_full_symbol(code: str) -> str:
    """full_symbol exactly as the application writes it (Beijing codes get .SZ, its known flaw)."""
    return f"{code}.{'SH' if code.startswith('6') else 'SZ'}"


def can_recompute_change(close: float | None, pre_close: float | None) -> bool:
    """The application recomputes only when both are truthy (present, not NaN, not zero)."""
    return bool(close) and bool(pre_close) and close == close and pre_close == pre_close


def recompute_change(close: float | None, pre_close: float | None) -> tuple[float | None, float | None]:
    """change and pct_chg exactly as the application's _standardize_record computes them.

    pct_chg is derived from the already rounded change, as the application does.
    """
    if not can_recompute_change(close, pre_close):
        return None, None
    change = round(close - pre_close, 4)
    return change, round(change / pre_close * 100, 4)


def _float_or_none(value) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number else number


def build_document(
    *,
    symbol: str,
    trade_date: str,
    data_source: str,
    period: str = "daily",
    open: float | None = None,
    high: float | None = None,
    low: float | None = None,
    close: float | None = None,
    pre_close: float | None = None,
    volume: float | None = None,
    amount: float | None = None,
    market: str = "CN",
    optional: dict | None = None,
    now: datetime | None = None,
    change: float | None = None,
    pct_chg: float | None = None,
) -> dict:
    """A document in the application's exact shape. ``trade_date`` must already be normalised.

    ``change``/``pct_chg`` are the source's own values: used only when close or
    pre_close is missing or zero (AKShare has no pre_close), as the application does.
    """
    close_f, pre_close_f = _float_or_none(close), _float_or_none(pre_close)
    source_change, source_pct_chg = _float_or_none(change), _float_or_none(pct_chg)
    if can_recompute_change(close_f, pre_close_f):
        change, pct_chg = recompute_change(close_f, pre_close_f)
    else:
        change, pct_chg = source_change, source_pct_chg
    stamp = now or utc_now()
    doc = {
        "symbol": symbol,
        "code": symbol,
        "full_symbol": app_full_symbol(symbol),
        "market": market,
        "trade_date": trade_date,
        "period": period,
        "data_source": data_source,
        "open": _float_or_none(open),
        "high": _float_or_none(high),
        "low": _float_or_none(low),
        "close": close_f,
        "pre_close": pre_close_f,
        "volume": _float_or_none(volume) or None,  # the app writes `volume or None`
        "amount": (_float_or_none(amount) or None) if data_source == "tushare" else _float_or_none(amount),
        "change": change,
        "pct_chg": pct_chg,
    }
    for name, value in (optional or {}).items():
        if name in OPTIONAL_FIELDS and value is not None and value == value:
            doc[name] = float(value)
    doc["created_at"] = stamp
    doc["updated_at"] = stamp
    doc["version"] = DOCUMENT_VERSION
    return doc
