"""A local stand-in for the quote sources, with adjustment events: tests and `make demo`.

Synthetic quotes (a deterministic random walk, never market data) served in the
sources' real wire formats, so the real akshare and tushare library code parses
them:

- Tushare's HTTP API (``POST /dataapi/<api_name>``: ``daily``, ``adj_factor``,
  ``stock_basic``) on 127.0.0.1; point tacn at it with ``TACN_TUSHARE_URL``.
- Eastmoney's kline JSON (what ``ak.stock_zh_a_hist`` reads), through
  :meth:`SyntheticMarket.kline_lines`, for a ``responses`` callback in tests
  (AKShare's endpoint is HTTPS on a fixed host).

An adjustment event (ex-date, factor ratio, cash dividend per share) changes the
adjusted history as the sources do: Tushare's ``adj_factor`` steps up by the
ratio on the ex-date; Eastmoney's qfq (``fqt=1``) subtracts the dividend from
every earlier price (which is how very old qfq prices reach zero or below).
Events and days after ``as_of`` are not known yet, so moving ``as_of`` past an
ex-date between two syncs is "a dividend happened".

Run it for the demo: ``python -m tacn.pipelines.sources.dev_server --port-file F --as-of-file A``;
the file A holds the as-of date and is read on every request.
"""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DAILY_FIELDS = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount"]
PRICES = ("open", "close", "high", "low", "pre_close")


def synthetic_quotes(symbol: str, start: str = "2025-09-01", end: str = "2025-10-24") -> list[dict]:
    """Unadjusted sessions between start and end (prices in yuan, volume in lots, amount in thousand yuan)."""
    from tacn.validators.calendar import sessions_between

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
            "vol": lots, "amount": round(lots * 100 * close / 1000, 3),
            "change": round(close - pre_close, 2), "pct_chg": round((close - pre_close) / pre_close * 100, 2),
            "turnover": round(0.1 + (i % 9) / 10, 2),
        })
        price = close
    return rows


@dataclass(frozen=True)
class Event:
    """An ex-date: Tushare's adj_factor is multiplied by ``ratio``; Eastmoney's qfq subtracts ``cash``."""

    ex_date: str
    ratio: float
    cash: float


def ts_code(symbol: str) -> str:
    from tacn.validators.records import exchange_suffix

    return f"{symbol}.{exchange_suffix(symbol)}"


@dataclass
class SyntheticMarket:
    """Raw quotes per symbol plus adjustment events, as known on ``as_of`` (YYYY-MM-DD)."""

    data: dict[str, list[dict]]
    events: dict[str, list[Event]] = field(default_factory=dict)
    as_of: str = "2999-12-31"
    base_factor: float = 1.0

    def known_events(self, symbol: str) -> list[Event]:
        return [e for e in self.events.get(symbol, []) if e.ex_date <= self.as_of]

    def raw_rows(self, symbol: str, start: str = "0000-00-00", end: str = "9999-99-99") -> list[dict]:
        """Rows as Tushare's ``daily`` has them: on an ex-date, pre_close is the ex-rights reference price."""
        out = []
        for row in self.data.get(symbol, []):
            if start <= row["date"] <= end and row["date"] <= self.as_of:
                ratio = 1.0
                for event in self.known_events(symbol):
                    if event.ex_date == row["date"]:
                        ratio *= event.ratio
                out.append({**row, "pre_close": round(row["pre_close"] / ratio, 2)} if ratio != 1.0 else row)
        return out

    def factor(self, symbol: str, day: str) -> float:
        value = self.base_factor
        for event in self.known_events(symbol):
            if event.ex_date <= day:
                value *= event.ratio
        return round(value, 6)

    def factor_rows(self, symbol: str, start: str, end: str) -> list[tuple[str, float]]:
        return [(row["date"], self.factor(symbol, row["date"])) for row in self.raw_rows(symbol, start, end)]

    def eastmoney_rows(self, symbol: str, fqt: str, start: str, end: str) -> list[dict]:
        """Eastmoney's rows: fqt 0 raw; 1 qfq (later dividends subtracted); 2 hfq (earlier ones added)."""
        rows = []
        for row in self.raw_rows(symbol, start, end):
            later = sum(e.cash for e in self.known_events(symbol) if e.ex_date > row["date"])
            earlier = sum(e.cash for e in self.known_events(symbol) if e.ex_date <= row["date"])
            shift = {"0": 0.0, "1": -later, "2": earlier}[fqt]
            adjusted = {name: round(row[name] + shift, 2) for name in PRICES}
            adjusted["change"] = round(adjusted["close"] - adjusted["pre_close"], 2)
            adjusted["pct_chg"] = round(adjusted["change"] / adjusted["pre_close"] * 100, 2) if adjusted["pre_close"] else 0.0
            rows.append({**row, **adjusted})
        return rows

    def kline_lines(self, symbol: str, fqt: str, beg: str, end: str) -> list[str]:
        """Eastmoney klines: date, open, close, high, low, volume, amount, amplitude, pct change, change, turnover."""
        lines = []
        for row in self.eastmoney_rows(symbol, fqt, beg, end):
            amplitude = round((row["high"] - row["low"]) / row["pre_close"] * 100, 2) if row["pre_close"] else 0.0
            lines.append(",".join(str(v) for v in (
                row["date"], row["open"], row["close"], row["high"], row["low"], row["vol"],
                round(row["amount"] * 1000, 2), amplitude, row["pct_chg"], row["change"], row["turnover"],
            )))
        return lines

    # -- Tushare's reply bodies ------------------------------------------------
    def tushare_answer(self, api: str, params: dict) -> dict:
        symbol = str(params.get("ts_code", "")).split(".")[0]
        start = _iso(params.get("start_date") or "19000101")
        end = _iso(params.get("end_date") or "29991231")
        if api == "stock_basic":
            return _ok(["ts_code", "symbol", "name"], [[ts_code(c), c, "SYNTH"] for c in sorted(self.data)])
        if api == "adj_factor":
            items = [[ts_code(symbol), day.replace("-", ""), value] for day, value in self.factor_rows(symbol, start, end)]
            return _ok(["ts_code", "trade_date", "adj_factor"], sorted(items, key=lambda i: i[1], reverse=True))
        items = [[ts_code(symbol), r["date"].replace("-", ""), r["open"], r["high"], r["low"], r["close"],
                  r["pre_close"], round(r["close"] - r["pre_close"], 2),
                  round((r["close"] - r["pre_close"]) / r["pre_close"] * 100, 4), r["vol"], r["amount"]]
                 for r in self.raw_rows(symbol, start, end)]
        return _ok(DAILY_FIELDS, sorted(items, key=lambda i: i[1], reverse=True))  # Tushare answers newest first


def _iso(compact: str) -> str:
    return f"{compact[:4]}-{compact[4:6]}-{compact[6:8]}"


def _ok(fields: list[str], items: list) -> dict:
    return {"code": 0, "msg": "", "data": {"fields": fields, "items": items}}


class TushareStandIn:
    """Tushare's HTTP API on 127.0.0.1 answering from a :class:`SyntheticMarket`; ``answer`` may be overridden."""

    def __init__(self, market: SyntheticMarket, token: str, *, port: int = 0):
        self.market = market
        self.token = token
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                status, reply = server.answer(self.path, body)
                payload = reply.encode() if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dataapi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, body: dict) -> tuple[int, dict | str]:
        if body.get("token") != self.token:
            return 200, {"code": 2002, "msg": "您的token不对，请确认。", "data": None}
        return 200, self.market.tushare_answer(path.rsplit("/", 1)[-1], body.get("params", {}))

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


DEMO_SYMBOLS = ("000001", "600000")
DEMO_EVENT = {"600000": [Event("2025-10-20", ratio=1.05, cash=0.5)]}  # a dividend on 2025-10-20


def demo_market() -> SyntheticMarket:
    return SyntheticMarket({s: synthetic_quotes(s, "2025-06-02", "2025-10-24") for s in DEMO_SYMBOLS},
                           dict(DEMO_EVENT), base_factor=1.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="write the chosen port here once listening")
    parser.add_argument("--token", default="demo-token-0123456789abcdef")
    parser.add_argument("--as-of-file", type=Path, help="a file holding the as-of date, read on every request")
    args = parser.parse_args(argv)
    market = demo_market()
    stand_in = TushareStandIn(market, args.token, port=args.port)
    if args.as_of_file is not None:
        answer = stand_in.answer

        def answer_as_of(path: str, body: dict):
            try:
                market.as_of = args.as_of_file.read_text().strip() or market.as_of
            except OSError:
                pass
            return answer(path, body)

        stand_in.answer = answer_as_of
    if args.port_file is not None:
        args.port_file.write_text(str(stand_in.server.server_address[1]))
    try:
        stand_in.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stand_in.server.server_close()


if __name__ == "__main__":
    main()
