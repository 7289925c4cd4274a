"""The rule catalogue: every check a quote document must pass, in one place.

Each rule has a stable name, a severity and a one-line description. Row-level
rules also have a vectorised check that returns a boolean Series, True where a
row FAILS; the validator counts and samples failures from these masks (no
per-row Python objects), sync gates records with them, and the pandera schemas
in :mod:`tacn.validators.schemas` wrap the same functions as their Checks.

Dataset-level rules (key uniqueness across chunks, volume units, completeness) are listed here
so the catalogue is complete; the validate pipeline evaluates them.

pandas and numpy are imported inside the functions (fast CLI start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tacn.validators.dates import (
    FIRST_TRADE_DATE_ISO,
    ISO_DATE_LENGTH,
    ISO_DATE_SHAPE,
    InvalidTradeDate,
    arrow_strings,
    normalize_trade_date,
    valid_iso_mask,
)
from tacn.validators.records import (
    DATA_SOURCES,
    FIELDS,
    KEY_FIELDS,
    MARKETS,
    PERIODS,
    PRICE_FIELDS,
    exchange_suffix,
    utc_now,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SEVERITIES = ("error", "warning")
ROW = "row"
DATASET = "dataset"

# pct_chg is stored to 4 decimals by the app, but AKShare's own 涨跌幅 is rounded to 2.
PCT_CHG_TOLERANCE = 0.01
# Clocks of the writer and the checker differ a little; a minute is not "the future".
CLOCK_SKEW = timedelta(minutes=1)

VOLUME_FIELDS = ("volume", "amount")
TIMESTAMP_FIELDS = ("created_at", "updated_at")
NUMBER_FIELDS = tuple(f.name for f in FIELDS if f.kind in ("float", "int"))
# Hidden columns a reader adds beside the document's own (never part of a record):
ROW_COLUMN = "__row"  # the 1-based row/line of a file
PROBLEM_COLUMN = "__problem"  # why a file's row could not be read or converted as sync would
NESTED_COLUMN = "__nested"  # the fields of the row that held an object or a list
HIDDEN_COLUMNS = (ROW_COLUMN, PROBLEM_COLUMN, NESTED_COLUMN)


@dataclass(frozen=True)
class Rule:
    name: str  # stable: reports, --rules, failures files and CI history use it
    severity: str  # "error" | "warning"
    description: str  # one line
    scope: str = ROW  # ROW: failing_masks evaluates it; DATASET: the validate pipeline does
    fields: tuple[str, ...] = ()  # the values a sample of a failing record shows
    opt_in: bool = False  # runs only when asked (completeness)
    # The part of the rule pandera can say with its own built-in checks, for `tacn schema --pandera`:
    # (column, check name, argument; a tuple: the arguments). The rule's own check (CHECKS) is what runs; a rule without
    # a portable part, or with more than it (the date bound that moves with "tomorrow"), is listed by name.
    portable: tuple[tuple[str, str, Any], ...] = ()


@dataclass
class CheckContext:
    """What a check may depend on besides the frame: the clock."""

    now_utc: datetime = field(default_factory=utc_now)


RULES: tuple[Rule, ...] = (
    Rule(
        "trade_date_iso",
        "error",
        f"trade_date is a YYYY-MM-DD string, a real calendar date, from {FIRST_TRADE_DATE_ISO} to tomorrow (Asia/Shanghai)",
        fields=("trade_date",),
        portable=(("trade_date", "str_matches", "^" + ISO_DATE_SHAPE),
                  ("trade_date", "str_length", (ISO_DATE_LENGTH, ISO_DATE_LENGTH)),
                  ("trade_date", "ge", FIRST_TRADE_DATE_ISO)),
    ),
    Rule("symbol_format", "error", "symbol is a string of 6 digits", fields=("symbol",),
         portable=(("symbol", "str_matches", r"^[0-9]{6}$"),)),
    Rule("code_matches_symbol", "error", "code is present and equals symbol", fields=("code", "symbol")),
    Rule("period_known", "error", f"period is one of {', '.join(PERIODS)}", fields=("period",),
         portable=(("period", "isin", PERIODS),)),
    Rule("data_source_known", "error", f"data_source is one of {', '.join(sorted(DATA_SOURCES))}", fields=("data_source",),
         portable=(("data_source", "isin", DATA_SOURCES),)),
    Rule("market_known", "error", f"market is one of {', '.join(MARKETS)}", fields=("market",),
         portable=(("market", "isin", MARKETS),)),
    Rule(
        "value_types",
        "error",
        "every value is a single value (no object or list) and the number fields hold numbers where present",
        fields=NUMBER_FIELDS,
    ),
    Rule(
        "row_readable",
        "error",
        "a file's row is a JSON object and, in an AKShare or Tushare file, converts to a document as sync converts it",
        fields=(PROBLEM_COLUMN,),
    ),
    Rule(
        "key_unique",
        "error",
        "the key (symbol, trade_date, data_source, period) is unique across the whole target",
        scope=DATASET,
        fields=KEY_FIELDS,
    ),
    Rule("prices_numeric", "error", "open, high, low, close, pre_close are finite numbers where present", fields=PRICE_FIELDS),
    # A warning, not an error: forward-adjusted (qfq) history can be zero or negative. Eastmoney's qfq
    # subtracts later dividends, so the application itself stores such prices for long-listed stocks.
    Rule("prices_positive", "warning", "open, high, low, close, pre_close are positive where present "
         "(qfq history of long-listed stocks can be zero or negative, as the application stores it)", fields=PRICE_FIELDS,
         portable=tuple((name, "gt", 0) for name in PRICE_FIELDS)),
    Rule("high_is_highest", "error", "high >= open, close and low (where present)", fields=("high", "open", "close", "low")),
    Rule("low_is_lowest", "error", "low <= open and close (where present)", fields=("low", "open", "close")),
    Rule("volume_amount_non_negative", "error", "volume and amount are numbers >= 0 where present", fields=VOLUME_FIELDS,
         portable=tuple((name, "ge", 0) for name in VOLUME_FIELDS)),
    Rule(
        "full_symbol_exchange",
        "warning",
        "full_symbol is code plus its exchange: 6xx .SH, 0xx/3xx .SZ, 4xx/8xx/92x .BJ",
        fields=("full_symbol", "code"),
    ),
    Rule(
        "pct_chg_consistent",
        "warning",
        f"pct_chg equals (close - pre_close) / pre_close * 100 within {PCT_CHG_TOLERANCE}",
        fields=("pct_chg", "close", "pre_close"),
    ),
    Rule(
        "trading_day",
        "warning",
        "trade_date is a session of the Shanghai exchange (XSHG; dates past the calendar's end are not judged)",
        fields=("trade_date",),
    ),
    Rule(
        "timestamps_valid",
        "warning",
        "created_at and updated_at are datetimes and updated_at is not in the future",
        fields=TIMESTAMP_FIELDS,
    ),
    Rule(
        "volume_unit",
        "warning",
        "volume is in the unit expected for its data_source (default: the application's, akshare lots, tushare "
        "shares), proven by amount/volume within [low, high] on the latest traded-basis bars, over the whole history",
        scope=DATASET,
        fields=("symbol", "data_source", "period"),
    ),
    Rule(
        "completeness",
        "warning",
        "no XSHG trading day is missing between a symbol's first and last stored date (--completeness)",
        scope=DATASET,
        fields=("symbol", "data_source", "period"),
        opt_in=True,
    ),
)
RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}


def error_rule_names() -> tuple[str, ...]:
    """Row-level rules of severity error: the ones a record must pass to be written."""
    return tuple(r.name for r in RULES if r.severity == "error" and r.scope == ROW)


def catalogue() -> list[dict]:
    """The catalogue as plain dicts (``tacn schema --json``, the rule table in docs/validate.md)."""
    return [
        {"name": r.name, "severity": r.severity, "scope": r.scope, "opt_in": r.opt_in, "description": r.description}
        for r in RULES
    ]


def catalogue_markdown() -> str:
    """The rule table of docs/validate.md, generated from :data:`RULES` (a test keeps the page in step)."""
    lines = ["| rule | severity | checks |", "|---|---|---|"]
    for r in RULES:
        lines.append(f"| `{r.name}` | {r.severity} | {r.description} |")
    return "\n".join(lines)


# -- vectorised building blocks -------------------------------------------------


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """The column, or an all-missing object column when the frame lacks it."""
    import numpy as np
    import pandas as pd

    if name in frame.columns:
        return frame[name]
    return pd.Series(np.full(len(frame), None, dtype=object), index=frame.index)


def is_text(series: pd.Series) -> pd.Series:
    """True where the value is a Python/pandas string (not a number, not missing)."""
    import pandas as pd

    if series.dtype == object:
        return series.map(type).eq(str)
    if pd.api.types.is_string_dtype(series.dtype):
        return series.notna()
    return pd.Series(False, index=series.index)


def present(series: pd.Series) -> pd.Series:
    """True where a value is there (None, NaN and NaT count as absent)."""
    return series.notna()


def as_number(series: pd.Series) -> pd.Series:
    """Numeric values as float64; text, bools and other non-numbers become NaN."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return pd.Series(np.nan, index=series.index)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    kinds = series.map(type)
    numeric_kinds = [k for k in kinds.unique() if issubclass(k, int | float | np.integer | np.floating) and k is not bool]
    numeric = kinds.isin(numeric_kinds)
    return pd.to_numeric(series.where(numeric), errors="coerce").astype("float64")


def _is_string_dtype(series: pd.Series) -> bool:
    """A pandas string column (every present value is text): no per-value type test needed."""
    import pandas as pd

    return series.dtype != object and pd.api.types.is_string_dtype(series.dtype)


def as_text(series: pd.Series) -> pd.Series:
    """The text values as a string column; non-text values missing."""
    if _is_string_dtype(series):
        return series
    return series.where(is_text(series)).astype("string")


def in_set(series: pd.Series, allowed) -> pd.Series:
    """True where the value is text and one of ``allowed`` (hashed in C; pandas' isin on Arrow
    strings turns every allowed value into a Python scalar first, which costs 0.1 s per 10k values)."""
    strings = arrow_strings(series)
    if strings is not None:
        import pyarrow.compute as pc

        return _arrow_mask(pc.is_in(strings, value_set=_arrow_values(frozenset(allowed))), series.index)
    return is_text(series) & series.isin(list(allowed))


def _arrow_mask(found, index) -> pd.Series:
    """A bool Series from an Arrow boolean array (a null, from a missing value, is False)."""
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    return pd.Series(np.asarray(pc.fill_null(found, False)), index=index)


@lru_cache(maxsize=16)
def _arrow_values(values: frozenset):
    import pyarrow as pa

    return pa.array(sorted(values), type=pa.large_string())


def six_digits(series: pd.Series) -> pd.Series:
    """True where the value is text of exactly six ASCII digits (symbol, code)."""
    strings = arrow_strings(series)
    if strings is not None:  # six bytes, all ASCII decimals: the regex's answer, ~7x cheaper
        import pyarrow.compute as pc

        return _arrow_mask(pc.and_(pc.equal(pc.binary_length(strings), 6), pc.ascii_is_decimal(strings)), series.index)
    return _fullmatch(series, r"[0-9]{6}")


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    """:func:`as_number` of a column as a float64 array; a float or int column as it is (no per-value test)."""
    import numpy as np

    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[name]
    if _plain_numbers(values):
        return values.to_numpy(dtype="float64", copy=False)
    return as_number(values).to_numpy()


def _plain_numbers(series: pd.Series) -> bool:
    """A numpy float or int column: every value is a number or NaN (missing), so the type rules have nothing to say."""
    import numpy as np

    return isinstance(series.dtype, np.dtype) and series.dtype.kind in "fiu"


def _fullmatch(series: pd.Series, pattern: str) -> pd.Series:
    if _is_string_dtype(series):
        return series.str.fullmatch(pattern).fillna(False).astype(bool)
    text = is_text(series)
    matched = series.where(text).astype("string").str.fullmatch(pattern)
    return text & matched.fillna(False).astype(bool)


# -- the row-level checks: each returns True where the row FAILS ----------------


def _frame_memo(frame, ctx) -> dict:
    """Work the rules share on one frame (the trade_date answers), kept while that frame is the one judged."""
    import weakref

    memo = ctx.__dict__.get("_frame_memo")
    if memo is None or memo[0]() is not frame:
        # a weak reference: the context lives as long as the schema, which must not keep a chunk alive
        memo = (weakref.ref(frame), {})
        ctx.__dict__["_frame_memo"] = memo
    return memo[1]


def _date_answer(frame, ctx, question: str, answer: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``answer`` (bool per value, False for a missing one) of the frame's trade_date, once per frame.

    A str column is factorized once per frame and asked once per distinct date (a chunk of 100,000
    rows holds about 1,000); an object column is asked value by value (factorize would take 1 and "1"
    for one value).
    """
    import numpy as np
    import pandas as pd

    memo = _frame_memo(frame, ctx)
    if question not in memo:
        dates = column(frame, "trade_date")
        if arrow_strings(dates) is None:
            memo[question] = answer(dates)
        else:
            if "trade_date_codes" not in memo:
                memo["trade_date_codes"] = dates.factorize()
            codes, distinct = memo["trade_date_codes"]
            answers = np.append(np.asarray(answer(pd.Series(distinct)), dtype=bool), False)  # code -1: missing
            memo[question] = pd.Series(answers[codes], index=frame.index)
    return memo[question]


def valid_dates(frame, ctx):
    """valid_iso_mask of the frame's trade_date, computed once per frame (two rules and completeness use it)."""
    return _date_answer(frame, ctx, "valid", lambda dates: valid_iso_mask(dates, now=ctx.now_utc))


def _fails_trade_date(frame, ctx):
    return ~valid_dates(frame, ctx)


def _fails_symbol(frame, ctx):
    return ~six_digits(column(frame, "symbol"))


def _fails_code(frame, ctx):
    code, symbol = column(frame, "code"), column(frame, "symbol")
    if _is_string_dtype(code) and _is_string_dtype(symbol):
        return ~(code == symbol).fillna(False).astype(bool)
    same = (code.astype(object) == symbol.astype(object)).fillna(False).astype(bool)
    return ~(is_text(code) & same)


def _member_fails(name: str, allowed: tuple[str, ...]):
    def check(frame, ctx):
        return ~in_set(column(frame, name), allowed)

    return check


def _present(frame, name):
    """present() of a column as a bool array; a column the frame lacks is absent everywhere."""
    import numpy as np

    if name not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return present(frame[name]).to_numpy()


def _row_mask(fails, frame) -> pd.Series:
    import pandas as pd

    return pd.Series(fails, index=frame.index)


# The number rules compute on float64 arrays (NaN: missing or not a number) and wrap the result once.


def _fails_value_types(frame, ctx):
    fails = _present(frame, NESTED_COLUMN)
    for name in NUMBER_FIELDS:
        if name in frame.columns and not _plain_numbers(frame[name]):
            fails = fails | (_present(frame, name) & (as_number(frame[name]).isna().to_numpy()))
    return _row_mask(fails, frame)


def _fails_row_readable(frame, ctx):
    return _row_mask(_present(frame, PROBLEM_COLUMN), frame)


def _fails_prices(frame, ctx):
    import numpy as np

    fails = np.zeros(len(frame), dtype=bool)
    for name in PRICE_FIELDS:
        fails |= _numbers(frame, name) <= 0  # NaN (missing, or a non-number: prices_numeric's business) is False
    return _row_mask(fails, frame)


def _fails_prices_numeric(frame, ctx):
    import numpy as np

    fails = np.zeros(len(frame), dtype=bool)
    for name in PRICE_FIELDS:
        fails |= _present(frame, name) & ~np.isfinite(_numbers(frame, name))
    return _row_mask(fails, frame)


def _fails_high(frame, ctx):
    high = _numbers(frame, "high")
    return _row_mask((_numbers(frame, "open") > high) | (_numbers(frame, "close") > high)
                     | (_numbers(frame, "low") > high), frame)


def _fails_low(frame, ctx):
    low = _numbers(frame, "low")
    return _row_mask((low > _numbers(frame, "open")) | (low > _numbers(frame, "close")), frame)


def _fails_volume(frame, ctx):
    import numpy as np

    fails = np.zeros(len(frame), dtype=bool)
    for name in VOLUME_FIELDS:
        fails |= _present(frame, name) & ~(_numbers(frame, name) >= 0)
    return _row_mask(fails, frame)


def _fails_full_symbol(frame, ctx):
    """code + its exchange suffix (:func:`tacn.validators.records.exchange_suffix`), vectorised as
    comparisons with constants, which Arrow strings answer without building the expected text."""
    code, full_symbol = column(frame, "code"), column(frame, "full_symbol")
    judged = six_digits(code)  # a bad code is already an error of its own
    code_strings, full_strings = arrow_strings(code), arrow_strings(full_symbol)
    if code_strings is not None and full_strings is not None:  # Arrow builds code + suffix and compares, in C
        import pyarrow as pa
        import pyarrow.compute as pc

        def constant(value: str):
            return pa.scalar(value, type=code_strings.type)

        starts = [pc.starts_with(code_strings, prefix) for prefix in ("6", "4", "8", "92")]
        beijing = pc.or_(pc.or_(starts[1], starts[2]), starts[3])
        suffix = pc.if_else(starts[0], constant(".SH"), pc.if_else(beijing, constant(".BJ"), constant(".SZ")))
        expected = pc.binary_join_element_wise(code_strings, suffix, constant(""))
        if expected.type != full_strings.type:
            expected = expected.cast(full_strings.type)
        return judged & ~_arrow_mask(pc.equal(full_strings, expected), frame.index)
    text, full = as_text(code), as_text(full_symbol)
    shanghai = text.str.startswith("6").fillna(False).astype(bool)
    beijing = text.str.startswith(("4", "8", "92")).fillna(False).astype(bool)
    suffix = full.str.slice(6)

    def has(wanted: str):
        return suffix.eq(wanted).fillna(False).astype(bool)

    right_suffix = (shanghai & has(".SH")) | (beijing & has(".BJ")) | (~shanghai & ~beijing & has(".SZ"))
    same_code = (full.str.slice(0, 6) == text).fillna(False).astype(bool)
    return judged & ~(same_code & right_suffix)


def _fails_pct_chg(frame, ctx):
    import numpy as np

    close, pre_close, pct_chg = (_numbers(frame, name) for name in ("close", "pre_close", "pct_chg"))
    with np.errstate(all="ignore"):  # inf and NaN are answers here (a NaN comparison is False: not judged)
        expected = (close - pre_close) / np.where(pre_close != 0, pre_close, np.nan) * 100
        return _row_mask(np.abs(pct_chg - expected) > PCT_CHG_TOLERANCE, frame)


def _fails_trading_day(frame, ctx):
    from tacn.validators.calendar import last_known_session, session_set

    def off_calendar(dates):  # up to the calendar's last session and not a session
        return (as_text(dates) <= last_known_session()).fillna(False).astype(bool) & ~in_set(dates, session_set())

    return valid_dates(frame, ctx) & _date_answer(frame, ctx, "off_calendar", off_calendar)


def as_naive_utc(series: pd.Series) -> pd.Series:
    """Datetimes as naive UTC datetime64; anything that is not a datetime becomes NaT."""
    import pandas as pd

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return series
    kinds = series.map(type)
    is_datetime = kinds.isin([k for k in kinds.unique() if issubclass(k, datetime)])
    if not is_datetime.any():
        return pd.Series(pd.NaT, index=series.index, dtype="datetime64[us]")
    kept = series.where(is_datetime)
    return pd.to_datetime(kept.map(_naive_utc_scalar, na_action="ignore"), errors="coerce")


def _naive_utc_scalar(value: datetime) -> datetime:
    if value.tzinfo is not None:
        from datetime import UTC

        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _fails_timestamps(frame, ctx):
    import pandas as pd

    created = as_naive_utc(column(frame, "created_at"))
    updated = as_naive_utc(column(frame, "updated_at"))
    latest = pd.Timestamp(ctx.now_utc + CLOCK_SKEW)
    return created.isna() | updated.isna() | (updated > latest).fillna(False).astype(bool)


CHECKS: dict[str, Callable[[Any, CheckContext], Any]] = {
    "trade_date_iso": _fails_trade_date,
    "symbol_format": _fails_symbol,
    "code_matches_symbol": _fails_code,
    "period_known": _member_fails("period", PERIODS),
    "data_source_known": _member_fails("data_source", DATA_SOURCES),
    "market_known": _member_fails("market", MARKETS),
    "value_types": _fails_value_types,
    "row_readable": _fails_row_readable,
    "prices_numeric": _fails_prices_numeric,
    "prices_positive": _fails_prices,
    "high_is_highest": _fails_high,
    "low_is_lowest": _fails_low,
    "volume_amount_non_negative": _fails_volume,
    "full_symbol_exchange": _fails_full_symbol,
    "pct_chg_consistent": _fails_pct_chg,
    "trading_day": _fails_trading_day,
    "timestamps_valid": _fails_timestamps,
}


def select_rules(
    *, severity: str | None = None, rules: Iterable[str] | None = None, scope: str | None = None
) -> tuple[Rule, ...]:
    """Rules by severity and name, catalogue order kept. Unknown names raise ValueError."""
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}: expected one of {', '.join(SEVERITIES)}")
    wanted = None
    if rules is not None:
        wanted = set(rules)
        unknown = sorted(wanted - set(RULES_BY_NAME))
        if unknown:
            raise ValueError(f"unknown rule(s) {', '.join(unknown)}: known rules are {', '.join(RULES_BY_NAME)}")
    return tuple(
        r
        for r in RULES
        if (severity is None or r.severity == severity)
        and (wanted is None or r.name in wanted)
        and (scope is None or r.scope == scope)
    )


def failing_masks(
    frame: pd.DataFrame,
    *,
    severity: str | None = None,
    rules: Iterable[str] | None = None,
    context: CheckContext | None = None,
) -> dict[str, pd.Series]:
    """For each selected row-level rule, a bool Series aligned to ``frame.index``: True where the row FAILS.

    Works on a frame of documents (the store's iter_frames output, a file's
    rows, or records about to be written). Dataset-level rules are skipped.
    """
    ctx = context or CheckContext()
    masks: dict[str, pd.Series] = {}
    for rule in select_rules(severity=severity, rules=rules, scope=ROW):
        mask = CHECKS[rule.name](frame, ctx)
        masks[rule.name] = mask.fillna(False).astype(bool) if mask.dtype != bool else mask
    ctx.__dict__.pop("_frame_memo", None)  # the shared answers of this frame end with this call
    return masks


# -- explaining one failing record (samples only: a handful of rows) -----------


def explain(rule_name: str, record: dict, *, context: CheckContext | None = None) -> str:
    """Why ``record`` fails ``rule_name``, in a few words, for reports."""
    ctx = context or CheckContext()
    get = record.get
    if rule_name == "trade_date_iso":
        value = get("trade_date")
        try:
            normalized = normalize_trade_date(value, now=ctx.now_utc)
        except InvalidTradeDate as exc:
            return exc.reason
        if isinstance(value, str):
            return f"not stored as YYYY-MM-DD (would be {normalized})"
        return f"stored as {type(value).__name__}, not a string"
    if rule_name == "symbol_format":
        value = get("symbol")
        return "missing" if _missing(value) else f"not 6 digits ({type(value).__name__} {value!r})"
    if rule_name == "code_matches_symbol":
        return "code missing" if _missing(get("code")) else f"code {get('code')!r} != symbol {get('symbol')!r}"
    if rule_name in ("period_known", "data_source_known", "market_known"):
        name = rule_name.removesuffix("_known")
        value = get(name)
        return f"{name} missing" if _missing(value) else f"unknown {name} {value!r}"
    if rule_name == "prices_numeric":
        bad = [f"{n}={get(n)!r}" for n in PRICE_FIELDS if not _missing(get(n)) and not _number_ok(get(n), rule_name)]
        return f"not a finite number: {', '.join(bad)}"
    if rule_name in ("prices_positive", "volume_amount_non_negative"):
        names = PRICE_FIELDS if rule_name == "prices_positive" else VOLUME_FIELDS
        bound = "> 0" if rule_name == "prices_positive" else ">= 0"
        bad = [f"{n}={get(n)!r}" for n in names if not _missing(get(n)) and not _number_ok(get(n), rule_name)]
        return f"not a number {bound}: {', '.join(bad)}"
    if rule_name == "value_types":
        nested = get(NESTED_COLUMN)
        if not _missing(nested):
            return f"an object or a list in {nested}"
        bad = [f"{n}={get(n)!r}" for n in NUMBER_FIELDS if not _missing(get(n)) and not _is_number(get(n))]
        return f"not a number: {', '.join(bad)}"
    if rule_name == "row_readable":
        return str(get(PROBLEM_COLUMN))
    if rule_name == "high_is_highest":
        return f"high {get('high')} below " + ", ".join(
            f"{n} {get(n)}" for n in ("open", "close", "low") if _gt(get(n), get("high"))
        )
    if rule_name == "low_is_lowest":
        return f"low {get('low')} above " + ", ".join(f"{n} {get(n)}" for n in ("open", "close") if _gt(get("low"), get(n)))
    if rule_name == "full_symbol_exchange":
        code = get("code")
        return f"full_symbol {get('full_symbol')!r}, expected {code}.{exchange_suffix(code)}"
    if rule_name == "pct_chg_consistent":
        close, pre_close = get("close"), get("pre_close")
        expected = round((close - pre_close) / pre_close * 100, 4)
        return f"pct_chg {get('pct_chg')} but close/pre_close give {expected}"
    if rule_name == "trading_day":
        return f"{get('trade_date')} is not an XSHG session (weekend or holiday)"
    if rule_name == "timestamps_valid":
        for name in TIMESTAMP_FIELDS:
            value = get(name)
            if not isinstance(value, datetime) or value != value:
                return f"{name} is {'missing' if _missing(value) else type(value).__name__}, not a datetime"
        return f"updated_at {get('updated_at')} is in the future"
    return RULES_BY_NAME[rule_name].description


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (value != value)


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            import numpy as np

            return isinstance(value, np.integer | np.floating)
        except ImportError:  # pragma: no cover - numpy ships with pandas
            return False
    return True


def _number_ok(value: object, rule_name: str) -> bool:
    if not _is_number(value):
        return False
    if rule_name == "prices_numeric":
        return value == value and abs(value) != float("inf")
    return value > 0 if rule_name == "prices_positive" else value >= 0


def _gt(a: object, b: object) -> bool:
    try:
        return a is not None and b is not None and a > b
    except TypeError:
        return False


# -- nested values: judged by value_types, never a crash in the other rules ---------------

_SCALAR_INFERRED = frozenset({"string", "empty", "floating", "integer", "mixed-integer-float", "decimal", "boolean",
                              "datetime64", "datetime", "date", "timedelta64", "timedelta", "time", "period", "bytes"})


def flatten_nested(frame: pd.DataFrame) -> pd.DataFrame:
    """Objects and lists in any column become their JSON text, and NESTED_COLUMN names the fields they were in.

    The other rules then see an ordinary (wrong) value instead of an unhashable
    one; value_types fails the record. The frame is returned unchanged (no copy)
    when nothing is nested, which pandas can tell in C for each column.
    """
    import numpy as np
    import pandas as pd

    flattened = {}
    names_at: dict[int, list[str]] = {}
    for name in frame.columns:
        values = frame[name]
        if values.dtype != object or name in HIDDEN_COLUMNS:
            continue
        if pd.api.types.infer_dtype(values, skipna=True) in _SCALAR_INFERRED:
            continue
        nested = values.map(lambda v: isinstance(v, dict | list | tuple | set)).to_numpy(dtype=bool)
        if not nested.any():
            continue
        fixed = values.copy()
        fixed[nested] = [_as_json(v) for v in values[nested]]
        flattened[name] = fixed
        for position in np.flatnonzero(nested):
            names_at.setdefault(int(position), []).append(str(name))
    if not flattened:
        return frame
    label = np.full(len(frame), None, dtype=object)
    for position, names in names_at.items():
        label[position] = ", ".join(names)
    flattened[NESTED_COLUMN] = label
    return frame.assign(**flattened)


def _as_json(value) -> str:
    import json

    if isinstance(value, set):
        value = sorted(map(str, value))
    return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
