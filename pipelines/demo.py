"""A deterministic, synthetic dataset in the application's exact document shape.

About 20 symbols x 2 years of daily quotes from AKShare and Tushare, plus the
2025-10-23 bug: for some AKShare symbols a copy of their latest rows whose
trade_date is the row number ("0", "1", "2", …), as the broken sync wrote them.
The data is synthetic (random walks), never market data. The files to try next
(a CSV in AKShare's layout, a fake .env) ship in the wheel as ``tacn.examples``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tacn.pipelines.stores.base import QuoteStore, UpsertResult
from tacn.validators.calendar import sessions_between
from tacn.validators.records import build_document

DEMO_SEED = 20251023
DEMO_START, DEMO_END = "2024-01-01", "2025-12-31"
DEMO_SYMBOLS = (
    "000001", "000002", "000333", "000858", "002415", "002594", "300059", "300750",
    "600000", "600036", "600519", "601318", "601398", "603259", "688981", "601012",
    "000725", "300015", "830799", "430047",
)
TUSHARE_SYMBOLS = DEMO_SYMBOLS[:10]
BUGGY_SYMBOLS = DEMO_SYMBOLS[::2]  # 10 AKShare symbols hit by the bug
BUGGY_ROWS = 300  # rows per buggy symbol: trade_date "0" … "299"
DEMO_CLOCK = datetime(2025, 10, 23, 9, 0, 0)


EXAMPLE_FILES = {"quotes_csv": "akshare_quotes_sample.csv", "env_file": "demo.env"}


def example_path(name: str) -> Path:
    """A file shipped in tacn.examples (the repository's examples/ folder), as a path on disk.

    pip installs wheels unpacked, so the resource is a real file that other programs can open.
    """
    from importlib.resources import files

    return Path(str(files("tacn.examples").joinpath(name)))


def example_paths() -> dict[str, str]:
    return {key: str(example_path(name)) for key, name in EXAMPLE_FILES.items()}


@dataclass
class DemoResult:
    store: str
    symbols: int
    trading_days: int
    good_records: int
    bad_records: int
    upsert: UpsertResult = field(default_factory=UpsertResult)
    synthetic: bool = True
    examples: dict[str, str] = field(default_factory=example_paths)  # shipped files for the next steps


def _walk(symbol: str, days: list[str], source: str) -> list[dict]:
    rng = random.Random(f"{DEMO_SEED}-{symbol}")
    price = rng.uniform(5, 200)
    docs = []
    for day in days:
        pre_close = round(price, 2)
        close = round(max(0.5, pre_close * (1 + rng.gauss(0, 0.02))), 2)
        open_ = round(pre_close * (1 + rng.gauss(0, 0.01)), 2)
        high = round(max(open_, close) * (1 + abs(rng.gauss(0, 0.008))), 2)
        low = round(min(open_, close) * (1 - abs(rng.gauss(0, 0.008))), 2)
        lots = rng.randint(10_000, 2_000_000)
        volume = lots * 100.0 if source == "tushare" else float(lots)
        amount = round(lots * 100 * (high + low) / 2, 2)
        rng.uniform(0.1, 8)  # was turnover_rate, which the application never writes: drawn so the walks stay the same
        docs.append(
            build_document(
                symbol=symbol, trade_date=day, data_source=source, open=open_, high=high, low=low,
                close=close, pre_close=pre_close, volume=volume, amount=amount,
                now=DEMO_CLOCK,
            )
        )
        price = close
    return docs


def _plant_disagreements(symbol: str, docs: list[dict]) -> list[dict]:
    """Two days on which Tushare disagrees with AKShare, for `tacn reconcile` to find."""
    if symbol == "600036":
        bad = docs[-40]
        bad["close"] = round(bad["close"] * 1.06, 2)  # a stale or bad fetch: one close 6% off
        bad["high"] = max(bad["high"], bad["close"])
    if symbol == "000858":
        docs[-25]["volume"] = docs[-25]["volume"] * 100  # a 100x volume on one day
    return docs


def demo_documents() -> tuple[list[dict], list[dict], int]:
    """(good documents, buggy documents, trading days)."""
    days = sessions_between(DEMO_START, DEMO_END)
    good: list[dict] = []
    bad: list[dict] = []
    for symbol in DEMO_SYMBOLS:
        akshare_docs = _walk(symbol, days, "akshare")
        good.extend(akshare_docs)
        if symbol in TUSHARE_SYMBOLS:
            good.extend(_plant_disagreements(symbol, _walk(symbol, days, "tushare")))
        if symbol in BUGGY_SYMBOLS:
            for row_number, doc in enumerate(akshare_docs[-BUGGY_ROWS:]):
                bad.append({**doc, "trade_date": str(row_number)})
    return good, bad, len(days)


def seed_demo(store: QuoteStore) -> DemoResult:
    good, bad, days = demo_documents()
    result = DemoResult(store.display_url, len(DEMO_SYMBOLS), days, len(good), len(bad))
    result.upsert = store.upsert(good + bad, now=DEMO_CLOCK)
    return result
