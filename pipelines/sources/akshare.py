"""AKShare: ``ak.stock_zh_a_hist`` (Eastmoney kline), always with a timeout.

Returns AKShare's own frame (日期, 股票代码, 开盘, …) untouched; the layout is
converted by :func:`tacn.validators.source_layouts.convert_frame`, which takes the
date from 日期 and never from the index (a RangeIndex: the 2025-10-23 bug).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

ADJUST = {"none": "", "qfq": "qfq", "hfq": "hfq"}
KLINE_URL = "https://push2his.eastmoney.com/api/qt/stock/kline/get"  # what stock_zh_a_hist requests


def fetch_quotes(symbol: str, *, start: str, end: str, period: str = "daily", adjust: str = "none",
                 timeout: float = 30.0) -> pd.DataFrame:
    """One symbol's quotes from ``start`` to ``end`` (YYYY-MM-DD), AKShare's layout; empty frame when none."""
    import akshare as ak

    return ak.stock_zh_a_hist(
        symbol=symbol,
        period=period,
        start_date=start.replace("-", ""),
        end_date=end.replace("-", ""),
        adjust=ADJUST[adjust],
        timeout=timeout,
    )


def stock_codes() -> list[str]:
    """Every A-share code AKShare lists (SSE, SZSE, BSE lists: ``stock_info_a_code_name``)."""
    import akshare as ak

    frame = ak.stock_info_a_code_name()
    if frame is None or frame.empty or "code" not in frame.columns:
        return []
    return sorted({str(code).strip().zfill(6) for code in frame["code"].tolist() if str(code).strip().isdigit()})
