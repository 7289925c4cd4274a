"""Recorded AKShare and Tushare responses, served in their real wire formats.

- AKShare (Eastmoney kline JSON over HTTPS): intercepted at the ``requests``
  layer with the ``responses`` library, so ``ak.stock_zh_a_hist`` parses it.
- Tushare (JSON body over HTTP POST): a real ``http.server`` on a free
  127.0.0.1 port; the client's ``_DataApi__http_url`` points at it.

Both take faults to inject per symbol, consumed in order (a request after the
list is exhausted gets the data). The quotes are synthetic, never market data.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from datetime import date

from tacn.pipelines.sources.akshare import KLINE_URL
from tacn.pipelines.sources.dev_server import (
    Event,
    SyntheticMarket,
    TushareStandIn,
    synthetic_quotes,
    ts_code,
)

__all__ = ["Event", "EastmoneyFake", "FakeClock", "TushareFake", "free_closed_port_url", "synthetic_quotes", "ts_code"]



# -- AKShare ----------------------------------------------------------------------


class EastmoneyFake:
    """A callback for ``responses``: serves klines per secid, filtered by beg/end, with injected faults."""

    def __init__(self, data: dict[str, list[dict]], events: dict[str, list[Event]] | None = None):
        self.data = data
        self.events = events or {}
        self.as_of = "2999-12-31"  # days and events after it are not known yet
        self.faults: dict[str, list] = defaultdict(list)
        self.extra_lines: dict[str, list[str]] = defaultdict(list)  # raw kline strings appended (malformed rows)
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def install(self, mocked) -> None:
        mocked.add_callback("GET", re.compile(re.escape(KLINE_URL) + r".*"), callback=self)

    def __call__(self, request):
        from urllib.parse import parse_qs, urlsplit

        params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        code = params["secid"].split(".", 1)[1]
        with self.lock:
            self.requests.append(params)
            fault = self.faults[code].pop(0) if self.faults[code] else None
        if isinstance(fault, BaseException):
            raise fault
        if fault == 500:
            return 500, {"Content-Type": "text/html"}, "<html><body>502 Bad Gateway</body></html>"
        if fault == "null":
            return 200, {}, json.dumps({"rc": 0, "data": None})
        beg = f"{params['beg'][:4]}-{params['beg'][4:6]}-{params['beg'][6:]}"
        end = f"{params['end'][:4]}-{params['end'][4:6]}-{params['end'][6:]}"
        market = SyntheticMarket(self.data, self.events, self.as_of)
        lines = market.kline_lines(code, params.get("fqt", "0"), beg, end)
        lines += self.extra_lines[code]
        body = {"rc": 0, "data": {"code": code, "market": int(params["secid"][0]), "name": "SYNTH", "klines": lines}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


# -- Tushare ----------------------------------------------------------------------

class TushareFake(TushareStandIn):
    """Tushare's HTTP API on 127.0.0.1 (``daily``, ``adj_factor``, ``stock_basic``) with injected faults."""

    def __init__(self, data: dict[str, list[dict]], token: str = "tk-test-0123456789abcdef",
                 events: dict[str, list[Event]] | None = None, base_factor: float = 1.0):
        super().__init__(SyntheticMarket(data, events or {}, base_factor=base_factor), token)
        self.data = data
        self.faults: dict[str, list] = defaultdict(list)  # by symbol, or "*" for any request
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.received = threading.Event()  # set on every request (wait on it instead of sleeping)
        self.release = threading.Event()  # a "block" fault waits for this
        self.stock_basic: list[str] | None = None

    def stop(self) -> None:
        self.release.set()
        super().stop()

    def answer(self, path: str, body: dict):
        api = path.rsplit("/", 1)[-1]
        params = body.get("params", {})
        symbol = str(params.get("ts_code", "")).split(".")[0] or "*"
        with self.lock:
            self.requests.append({"api": api, "token": body.get("token"), **params})
            queue = self.faults[symbol] or self.faults["*"]
            fault = queue.pop(0) if queue else None
        self.received.set()
        if fault == "block":
            self.release.wait(timeout=30)
        elif fault == 500:
            return 500, "Internal Server Error"
        elif isinstance(fault, str):  # an error message with a non-zero code
            return 200, {"code": 40203, "msg": fault, "data": None}
        if api == "stock_basic" and self.stock_basic is not None and body.get("token") == self.token:
            return 200, {"code": 0, "msg": "", "data": {
                "fields": ["ts_code", "symbol", "name"], "items": [[ts_code(c), c, "SYNTH"] for c in self.stock_basic]}}
        return super().answer(path, body)


def free_closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/dataapi"


class FakeClock:
    """time.monotonic and time.sleep for tests: sleeping advances the clock and is recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


def iso(day: date) -> str:
    return day.isoformat()
