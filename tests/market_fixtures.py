"""Generated daily bars as the application stores them: qfq prices, volume and amount as traded.

``bars()`` draws a random walk of traded prices with a traded volume in shares,
then applies forward adjustment (qfq) for the ex-dates given (prices before an
ex-date are multiplied by its factor; volume and amount stay as traded) and
stores the volume in the requested unit. Used by the unit, reconcile and report
tests and by bench_reconcile.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from tacn.validators.calendar import sessions_between
from tacn.validators.records import build_document

STAMP = datetime(2025, 10, 23, 9, 0, 0)


def sessions(last: str = "2025-10-23", count: int = 60) -> list[str]:
    return sessions_between("2020-01-01", last)[-count:]


def bars(symbol: str, data_source: str, days: list[str], *, unit: str = "shares", seed: int = 0,
         ex_dates: dict[str, float] | None = None, start_price: float = 10.0) -> list[dict]:
    """One document per day. ``ex_dates`` maps a day to its qfq factor (< 1) for earlier prices."""
    rng = np.random.default_rng(seed)
    n = len(days)
    close = start_price * np.cumprod(1 + rng.normal(0, 0.015, n))
    close = np.round(close, 2)
    open_ = np.round(close * (1 + rng.normal(0, 0.005, n)), 2)
    high = np.round(np.maximum(open_, close) * (1 + rng.uniform(0.002, 0.02, n)), 2)
    low = np.round(np.minimum(open_, close) * (1 - rng.uniform(0.002, 0.02, n)), 2)
    vwap = low + (high - low) * rng.uniform(0.2, 0.8, n)
    shares = np.round(rng.uniform(2e5, 5e6, n) / 100) * 100
    amount = np.round(shares * vwap, 2)
    factor = np.ones(n)
    for day, f in (ex_dates or {}).items():
        factor[np.asarray(days) < day] *= f
    pre_close = np.r_[close[0], close[:-1]]
    docs = []
    for i, day in enumerate(days):
        adj = factor[i]
        volume = shares[i] / 100 if unit == "lots" else shares[i]
        docs.append(build_document(
            symbol=symbol, trade_date=day, data_source=data_source,
            open=round(open_[i] * adj, 2), high=round(high[i] * adj, 2), low=round(low[i] * adj, 2),
            close=round(close[i] * adj, 2), pre_close=round(pre_close[i] * (factor[i - 1] if i else adj), 2),
            volume=float(volume), amount=float(amount[i]), now=STAMP,
        ))
    return docs
