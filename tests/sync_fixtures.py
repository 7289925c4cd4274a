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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from validators.calendar import sessions_between

KLINE_URL = "https://push2his.eastmoney.com/api/qt/stock/kline/get"


def synthetic_quotes(symbol: str, start: str = "2025-09-01", end: str = "2025-10-24") -> list[dict]:
    """Sessions between start and end with a deterministic random walk (prices in yuan, volume in lots)."""
    seed = int(symbol)
    price = 5.0 + seed % 40
    rows = []
    for i, day in enumerate(sessions_between(start, end)):
        pre_close = round(price, 2)
        close = round(pre_close * (1 + (((seed + i * 7) % 11) - 5) / 500), 2)
        high = round(max(pre_close, close) * 1.01, 2)
        low = round(min(pre_close, close) * 0.99, 2)
        lots = 10_000 + (seed + i * 13) % 5000
        rows.append({
            "date": day, "open": pre_close, "close": close, "high": high, "low": low, "pre_close": pre_close,
            "vol": lots, "amount": round(lots * 100 * close / 1000, 3),  # thousand yuan (Tushare's unit)
            "change": round(close - pre_close, 2), "pct_chg": round((close - pre_close) / pre_close * 100, 2),
            "turnover": round(0.1 + (i % 9) / 10, 2),
        })
        price = close
    return rows


# -- AKShare ----------------------------------------------------------------------


def kline_line(row: dict) -> str:
    """One Eastmoney kline: date, open, close, high, low, volume, amount, amplitude, pct, change, turnover."""
    amplitude = round((row["high"] - row["low"]) / row["pre_close"] * 100, 2)
    return ",".join(str(v) for v in (
        row["date"], row["open"], row["close"], row["high"], row["low"], row["vol"],
        round(row["amount"] * 1000, 2), amplitude, row["pct_chg"], row["change"], row["turnover"],
    ))


class EastmoneyFake:
    """A callback for ``responses``: serves klines per secid, filtered by beg/end, with injected faults."""

    def __init__(self, data: dict[str, list[dict]]):
        self.data = data
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
        lines = [kline_line(r) for r in self.data.get(code, []) if beg <= r["date"] <= end]
        lines += self.extra_lines[code]
        body = {"rc": 0, "data": {"code": code, "market": int(params["secid"][0]), "name": "SYNTH", "klines": lines}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


# -- Tushare ----------------------------------------------------------------------

DAILY_FIELDS = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount"]


def ts_code(symbol: str) -> str:
    return f"{symbol}.{'SH' if symbol.startswith('6') else 'SZ'}"


class TushareFake:
    """Tushare's HTTP API on 127.0.0.1: ``POST /dataapi/<api_name>`` with the JSON body the client sends."""

    def __init__(self, data: dict[str, list[dict]], token: str = "tk-test-0123456789abcdef"):
        self.data = data
        self.token = token
        self.faults: dict[str, list] = defaultdict(list)  # by symbol, or "*" for any request
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.received = threading.Event()  # set on every request (wait on it instead of sleeping)
        self.release = threading.Event()  # a "block" fault waits for this
        self.stock_basic: list[str] | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                status, reply = fake.answer(self.path, body)
                payload = reply.encode() if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dataapi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> TushareFake:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

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
        if body.get("token") != self.token:
            return 200, {"code": 2002, "msg": "您的token不对，请确认。", "data": None}
        if api == "stock_basic":
            codes = self.stock_basic if self.stock_basic is not None else sorted(self.data)
            return 200, {"code": 0, "msg": "", "data": {
                "fields": ["ts_code", "symbol", "name"], "items": [[ts_code(c), c, "SYNTH"] for c in codes]}}
        start, end = params.get("start_date", "19000101"), params.get("end_date", "29991231")
        items = []
        for row in self.data.get(symbol, []):
            day = row["date"].replace("-", "")
            if start <= day <= end:
                items.append([ts_code(symbol), day, row["open"], row["high"], row["low"], row["close"],
                              row["pre_close"], row["change"], row["pct_chg"], row["vol"], row["amount"]])
        items.sort(key=lambda item: item[1], reverse=True)  # Tushare answers newest first
        return 200, {"code": 0, "msg": "", "data": {"fields": DAILY_FIELDS, "items": items}}


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
