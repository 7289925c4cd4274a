"""Incremental AKShare sync of 1,000 symbols after a dividend of one of them: what a re-base costs.

The real akshare code parses Eastmoney kline replies served at the requests layer
(``responses``, as in the tests). The store first holds each symbol's history up
to one day; then the sources move on two weeks, and one symbol has an ex-date in
between. Counted: fetches (requests to the kline endpoint). Target: at most one
extra fetch per re-based symbol (each symbol's incremental fetch already starts
at its latest stored session, so the overlap check itself costs nothing extra).
Timed: the same incremental sync without the event (the floor) and with it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report, scaled  # noqa: E402

SYMBOLS = scaled(1000)
START, STORED_UNTIL, NOW = "2025-06-02", "2025-10-10", "2025-10-24"
EX_DATE = "2025-10-15"
MAX_EXTRA_PER_REBASE = 1


def codes(n: int) -> list[str]:
    return [f"{600000 + s:06d}" if s % 2 else f"{s + 1:06d}" for s in range(n)]


def main() -> None:
    import responses

    from tacn.pipelines.sources.dev_server import Event, SyntheticMarket, synthetic_quotes
    from tacn.pipelines.stores.sqlite import SQLiteStore
    from tacn.pipelines.sync import SyncRequest, run_sync

    symbols = codes(SYMBOLS)
    data = {s: synthetic_quotes(s, START, NOW) for s in symbols}
    rebased_symbol = symbols[len(symbols) // 2]
    kline_url = "https://push2his.eastmoney.com/api/qt/stock/kline/get"

    def serve(market: SyntheticMarket, counter: list[int]):
        import json
        import re
        from urllib.parse import parse_qs, urlsplit

        def callback(request):
            params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
            code = params["secid"].split(".", 1)[1]
            counter[0] += 1
            beg, end = (f"{p[:4]}-{p[4:6]}-{p[6:]}" for p in (params["beg"], params["end"]))
            body = {"rc": 0, "data": {"code": code, "klines": market.kline_lines(code, params["fqt"], beg, end)}}
            return 200, {"Content-Type": "application/json"}, json.dumps(body)

        mocked = responses.RequestsMock(assert_all_requests_are_fired=False)
        mocked.add_callback("GET", re.compile(re.escape(kline_url) + r".*"), callback=callback)
        return mocked

    def run(store, market, end, counter, backups):
        request = SyncRequest(source="akshare", symbols=tuple(symbols), end=end, default_start=START,
                              akshare_min_interval=0, rejects_path=None, backup_dir=backups)
        with serve(market, counter):
            t0 = time.perf_counter()
            result = run_sync(store, request)
            return time.perf_counter() - t0, result

    with tempfile.TemporaryDirectory() as tmp:
        timings = {}
        for label, events in (("floor", {}), ("event", {rebased_symbol: [Event(EX_DATE, 1.05, 0.5)]})):
            market = SyntheticMarket(data, events, as_of=STORED_UNTIL)
            with SQLiteStore(Path(tmp) / f"{label}.db") as store:
                run(store, market, STORED_UNTIL, [0], Path(tmp) / "backups")  # the stored history
                market.as_of = NOW
                counter = [0]
                seconds, result = run(store, market, NOW, counter, Path(tmp) / "backups")
                timings[label] = (seconds, counter[0], result)
    floor_s, floor_fetches, floor_result = timings["floor"]
    event_s, event_fetches, event_result = timings["event"]
    rebased = len(event_result.rebased)
    extra = event_fetches - floor_fetches
    per = extra / rebased if rebased else float("inf")
    ok = rebased == 1 and floor_result.rebased == {} and per <= MAX_EXTRA_PER_REBASE
    report(f"incremental tacn sync --source akshare of {SYMBOLS:,} symbols, one dividend in between", [
        ("floor: the same sync, no event", f"{floor_s:.2f} s, {floor_fetches:,} fetches, "
         f"inserted={floor_result.inserted:,}"),
        ("with one ex-date", f"{event_s:.2f} s, {event_fetches:,} fetches, inserted={event_result.inserted:,}, "
         f"re-based {event_result.rebased}"),
        ("extra fetches per re-based symbol", f"{per:.2f}  (target <= {MAX_EXTRA_PER_REBASE}) {'OK' if ok else 'OVER'}"),
        ("time ratio event / floor", f"{event_s / floor_s:.2f}"),
    ])


if __name__ == "__main__":
    main()
