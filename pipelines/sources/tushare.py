"""Tushare: ``pro.daily`` (``weekly``/``monthly`` for those periods) through the real client.

The token comes from configuration and is handed to the client object; never
``ts.set_token``, which writes it in plain text to ``~/tk.csv``. Adjusted prices
multiply by ``pro.adj_factor`` (hfq) and divide by the latest factor (qfq), rounded to 2
decimals, as ``pro_bar`` does, without calling ``pro_bar``: it retries at once and
turns token and rate-limit errors into a bare "ERROR.", and it anchors qfq on
the last factor of the requested window rather than the latest one.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

API_BY_PERIOD = {"daily": "daily", "weekly": "weekly", "monthly": "monthly"}
# pro.daily returns at most 6000 rows per call: ask for ranges well under that.
WINDOW_DAYS = 3650
PRICE_COLUMNS = ("open", "high", "low", "close", "pre_close")


def ts_code(symbol: str) -> str:
    """Tushare's code: 600000.SH, 000001.SZ, 830799.BJ."""
    from tacn.validators.records import exchange_suffix

    return f"{symbol}.{exchange_suffix(symbol)}"


def windows(start: str, end: str, days: int = WINDOW_DAYS) -> list[tuple[str, str]]:
    """[start, end] (YYYY-MM-DD) split into consecutive ranges of at most ``days`` days."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    out = []
    while first <= last:
        stop = min(last, first + timedelta(days=days - 1))
        out.append((first.isoformat(), stop.isoformat()))
        first = stop + timedelta(days=1)
    return out


class TushareClient:
    """A ``tushare.pro.client.DataApi`` for one token; ``http_url`` redirects it (tests, proxies)."""

    def __init__(self, token: str, *, timeout: float = 30.0, http_url: str | None = None):
        from tushare.pro import client

        self.api = client.DataApi(token=token, timeout=timeout)
        if http_url:
            self.api._DataApi__http_url = http_url.rstrip("/")

    def call(self, api_name: str, **params) -> pd.DataFrame:
        """One request (the rate limiter counts these)."""
        return self.api.query(api_name, **params)

    def quotes_window(self, symbol: str, start: str, end: str, period: str = "daily") -> pd.DataFrame:
        return self.call(API_BY_PERIOD[period], ts_code=ts_code(symbol),
                         start_date=start.replace("-", ""), end_date=end.replace("-", ""))

    def adj_factors(self, symbol: str, start: str, end: str) -> pd.DataFrame:
        return self.call("adj_factor", ts_code=ts_code(symbol),
                         start_date=start.replace("-", ""), end_date=end.replace("-", ""))

    def stock_codes(self) -> list[str]:
        frame = self.call("stock_basic", exchange="", list_status="L", fields="ts_code,symbol,name")
        if frame is None or frame.empty:
            return []
        column = "symbol" if "symbol" in frame.columns else "ts_code"
        return sorted({str(v).split(".")[0] for v in frame[column].tolist() if str(v).split(".")[0].isdigit()})


def pro_bar_round(value: float) -> float:
    """``pro_bar``'s rounding of an adjusted price, ``float('%.2f' % x)``: the exact binary value, half-even."""
    return float(f"{value:.2f}")


def apply_adjustment(quotes: pd.DataFrame, factors: pd.DataFrame, adjust: str) -> pd.DataFrame:
    """Adjusted prices exactly as ``pro_bar(adj=...)`` computes them, asked up to today.

    hfq: price x adj_factor; qfq: price x adj_factor / the latest adj_factor in
    ``factors`` (the caller fetches factors up to today, so the anchor is the
    latest factor, as the application's ``pro_bar`` call up to today has it).
    A day without a factor takes the factor of the nearest earlier day
    (``pro_bar``'s ``bfill`` over its newest-first frame). Each adjusted price is
    rounded to 2 decimals as ``pro_bar`` does; change and pct_chg are then
    recomputed from the rounded prices by the conversion, as the application does.
    """
    import pandas as pd

    if adjust == "none" or quotes.empty:
        return quotes
    if factors is None or factors.empty or "adj_factor" not in factors.columns:
        raise ValueError("no adj_factor rows for an adjusted request")
    ordered = factors.assign(adj_factor=pd.to_numeric(factors["adj_factor"], errors="coerce"))
    ordered = ordered.dropna(subset=["adj_factor"]).sort_values("trade_date", kind="stable")
    if ordered.empty:
        raise ValueError("no usable adj_factor rows for an adjusted request")
    by_day = dict(zip(ordered["trade_date"], ordered["adj_factor"], strict=True))
    adjusted = quotes.sort_values("trade_date", kind="stable").copy()
    factor = adjusted["trade_date"].map(by_day).astype("float64").ffill()
    latest = float(ordered["adj_factor"].iloc[-1])
    for name in PRICE_COLUMNS:
        if name in adjusted.columns:
            prices = pd.to_numeric(adjusted[name], errors="coerce").astype("float64") * factor
            if adjust == "qfq":
                prices = prices / latest
            adjusted[name] = [pro_bar_round(v) for v in prices.tolist()]
    return adjusted
