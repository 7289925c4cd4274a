"""tacn reconcile: two sources (default akshare vs tushare) compared day by day for each symbol.

Both sources store forward-adjusted (qfq) prices, but they adjust differently:
Eastmoney (AKShare) subtracts cash dividends from earlier prices, Tushare
multiplies them by the ratio of adjustment factors, and each series is re-based
whenever it is fetched again. Old absolute qfq prices therefore disagree by
design. What must agree:

- day-over-day close returns, everywhere (a one-day spike is blamed on its day,
  not on the day after, whose return merely undoes it);
- absolute open/high/low/close only where both series are on the traded basis:
  the bars after each series' last ex-date, found from the data itself as in
  :mod:`tacn.validators.units` (amount/volume inside the bar's [low, high]);
- volume in shares, after each series' proven unit (lots x 100);
- amount;
- the set of XSHG sessions inside both sources' common span (a day stored in one
  source only). Records on days that are not sessions are counted, not compared.

The store is read by symbol, a batch of symbols at a time, so memory is bounded
by the batch, never by the store. Two files are first loaded into a temporary
SQLite store, then read the same way.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tacn.pipelines.errors import CalendarEnded, UsageError
from tacn.pipelines.progress import ProgressReport
from tacn.pipelines.stores.base import RecordFilter

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SOURCES = ("akshare", "tushare")
PRICE_FIELDS = ("open", "high", "low", "close")
BATCH_ROWS = 100_000  # rows per source read at a time (a batch of whole symbols)


@dataclass(frozen=True)
class Check:
    name: str
    severity: str  # "error" fails the run; "warning" is reported only
    description: str


CHECKS: tuple[Check, ...] = (
    Check("price_return", "error", "day-over-day close returns agree within the price tolerance "
          "(a one-day spike is attributed to its day)"),
    Check("price_level", "error", "open, high, low and close agree within the price tolerance where both "
          "series are on the traded basis (after their last ex-date)"),
    Check("volume", "error", "volume in shares (each series normalised by its proven unit) agrees within "
          "the volume tolerance"),
    Check("amount", "error", "amount agrees within the amount tolerance"),
    Check("missing_day", "error", "no XSHG session inside both sources' common span of a symbol is stored in "
          "one source only"),
    Check("off_session", "warning", "records on days that are not XSHG sessions (not compared; "
          "validate's trading_day rule judges them)"),
)
COMPARED = ("price_return", "price_level", "volume", "amount", "missing_day")


@dataclass
class ReconcileOptions:
    sources: tuple[str, str] = DEFAULT_SOURCES
    period: str = "daily"
    symbols: tuple[str, ...] | None = None
    since: str | None = None  # trade_date >= since (YYYY-MM-DD)
    price_tolerance: float = 0.005  # relative
    price_tolerance_yuan: float = 0.01  # absolute; the larger of the two applies
    volume_tolerance: float = 0.005  # relative, at least one lot
    amount_tolerance: float = 0.005  # relative, at least one yuan
    volume_units: dict[str, str] | None = None  # expected unit per data_source when a series proves none
    max_samples: int = 5
    failures_out: Path | None = None
    batch_rows: int = BATCH_ROWS
    worst: int = 10
    now_utc: datetime | None = None  # the clock that decides which dates are valid (tests pin it)

    def tolerances(self) -> dict:
        return {"price": self.price_tolerance, "price_yuan": self.price_tolerance_yuan,
                "volume": self.volume_tolerance, "amount": self.amount_tolerance}


@dataclass
class CheckOutcome:
    name: str
    severity: str
    description: str
    failing: int = 0
    checked: int = 0
    samples: list[dict] = field(default_factory=list)

    @property
    def fails_run(self) -> bool:
        return self.severity == "error" and self.failing > 0


@dataclass
class ReconcileResult:
    target: dict
    sources: list[str]
    filters: dict
    tolerances: dict
    records: dict[str, int]
    symbols: int  # in both sources, compared
    symbols_only_in: dict[str, int]
    common_days: int
    checks: list[CheckOutcome]
    units: dict[str, dict[str, int]]  # per source: series per proven unit
    worst: list[dict]
    duration_s: float
    failures_out: dict | None = None
    per_symbol: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    per_date: dict[str, int] = field(default_factory=dict, repr=False)  # symbols disagreeing per trade_date

    @property
    def passed(self) -> bool:
        """No disagreement, and something was compared: two sources without a common symbol do not pass."""
        return self.symbols > 0 and not any(c.fails_run for c in self.checks)

    @property
    def disagreeing_symbols(self) -> int:
        return sum(1 for counts in self.per_symbol.values() if counts.get("days", 0))

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("per_symbol")
        out.pop("per_date")
        out["verdict"] = "pass" if self.passed else "fail"
        out["disagreeing_symbols"] = self.disagreeing_symbols
        out["duration_s"] = round(self.duration_s, 3)
        return out


# -- preparing one source's rows -------------------------------------------------------------


def _prepare(frame: pd.DataFrame, source: str, expected_unit: str | None, last_session: str, now=None):
    """Comparable rows of one source (XSHG sessions only) and its off-session rows, plus unit counts."""
    import numpy as np
    import pandas as pd

    from tacn.validators.calendar import session_set
    from tacn.validators.dates import valid_iso_mask
    from tacn.validators.rules import as_number, column
    from tacn.validators.units import (
        IN_LOTS,
        LOT,
        UNIT_CODES,
        UNIT_NAMES,
        bar_classes,
        prove_units,
        volume_scale,
    )

    frame = frame.reset_index(drop=True)
    dates = column(frame, "trade_date")
    valid = valid_iso_mask(dates, now=now)
    late = valid & (dates.where(valid).astype("string") > last_session).fillna(False).astype(bool)
    if late.any():
        row = frame[late].iloc[0]
        raise CalendarEnded(
            f"{source} has records after the XSHG calendar's last session ({row['symbol']} {row['trade_date']}); "
            "they cannot be judged"
        )
    on_session = valid & dates.isin(session_set())
    off = frame[valid & ~on_session]
    part = frame[on_session]
    rows = pd.DataFrame({"symbol": part["symbol"].astype(str).to_numpy(), "trade_date": part["trade_date"].to_numpy()})
    rows["pos"] = part.index.to_numpy()
    for name in (*PRICE_FIELDS, "volume", "amount"):
        rows[name] = as_number(column(part, name)).to_numpy()
    rows = rows.drop_duplicates(["symbol", "trade_date"], keep="last")
    days = rows["trade_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    codes, uniques = pd.factorize(rows["symbol"])
    classes = bar_classes(rows["volume"], rows["amount"], rows["low"], rows["high"])
    proof = prove_units(codes, days, classes, volume_scale(rows["volume"], rows["amount"], rows["close"]))
    rows = rows.iloc[proof.order].reset_index(drop=True)
    rows["day"] = days[proof.order]
    rows["traded"] = proof.traded_basis
    unit = proof.unit[proof.group]
    fallback = UNIT_CODES.get(expected_unit or "", 0)
    unit = np.where((unit == IN_LOTS) | ((unit != 1) & (fallback == IN_LOTS)), LOT, 1)
    rows["shares"] = rows["volume"] * unit
    counts: dict[str, int] = {"changed": int((proof.changes > 0).sum())}
    for code in proof.unit:
        counts[UNIT_NAMES[int(code)]] = counts.get(UNIT_NAMES[int(code)], 0) + 1
    return rows, off, counts


def _within(a, b, rel: float, absolute: float):
    """True where both present and |a - b| <= max(rel * max(|a|, |b|), absolute)."""
    import numpy as np

    return np.abs(a - b) <= np.maximum(rel * np.maximum(np.abs(a), np.abs(b)), absolute)


# -- comparing one batch of symbols ------------------------------------------------------------


class _Accumulator:
    def __init__(self, options: ReconcileOptions, writer):
        self.options = options
        self.writer = writer
        self.outcomes = {c.name: CheckOutcome(c.name, c.severity, c.description) for c in CHECKS}
        self.per_symbol: dict[str, dict[str, int]] = {}
        self.per_date: Counter = Counter()
        from tacn.validators.units import APP_UNITS

        expected = {**APP_UNITS, **(options.volume_units or {})}
        self.units: dict[str, dict] = {s: {"expected": expected.get(s)} for s in options.sources}
        self.records = dict.fromkeys(options.sources, 0)
        self.symbols = 0
        self.only_in = dict.fromkeys(options.sources, 0)
        self.common_days = 0

    def count(self, name: str, flags, checked: int, merged, describe: Callable[[Any], dict]) -> None:
        import numpy as np

        outcome = self.outcomes[name]
        outcome.checked += int(checked)
        hits = np.flatnonzero(flags)
        outcome.failing += len(hits)
        for i in hits[: max(0, self.options.max_samples - len(outcome.samples))]:
            row = merged.iloc[i]
            outcome.samples.append({"key": {"symbol": row["symbol"], "trade_date": row["trade_date"]}, **describe(row)})

    def compare(self, frame_a: pd.DataFrame, frame_b: pd.DataFrame) -> None:
        import numpy as np
        import pandas as pd

        from tacn.validators.calendar import last_known_session
        from tacn.validators.units import APP_UNITS

        opts = self.options
        a_name, b_name = opts.sources
        expected = {**APP_UNITS, **(opts.volume_units or {})}
        last = last_known_session()
        a, off_a, units_a = _prepare(frame_a, a_name, expected.get(a_name), last, opts.now_utc)
        b, off_b, units_b = _prepare(frame_b, b_name, expected.get(b_name), last, opts.now_utc)
        for source, counts in ((a_name, units_a), (b_name, units_b)):
            for unit, n in counts.items():
                self.units[source][unit] = self.units[source].get(unit, 0) + n
        self.records[a_name] += len(frame_a)
        self.records[b_name] += len(frame_b)
        # off-session records: counted per source, never compared
        off = self.outcomes["off_session"]
        off.checked += len(frame_a) + len(frame_b)
        for source, frame, rows in ((a_name, frame_a, off_a), (b_name, frame_b, off_b)):
            off.failing += len(rows)
            for _, row in rows.head(max(0, opts.max_samples - len(off.samples))).iterrows():
                off.samples.append({"key": {"symbol": row.get("symbol"), "trade_date": row.get("trade_date")},
                                    "value": source, "reason": f"{row.get('trade_date')} is not an XSHG session "
                                    f"(in {source})"})
            if self.writer is not None:
                for pos in rows.index:
                    self.writer.write(frame["symbol"].iloc[pos], frame["trade_date"].iloc[pos], ["off_session"],
                                      {source: frame}, {source: pos}, opts.sources)

        sym_a, sym_b = set(a["symbol"].unique()), set(b["symbol"].unique())
        self.only_in[a_name] += len(sym_a - sym_b)
        self.only_in[b_name] += len(sym_b - sym_a)
        both_symbols = sym_a & sym_b
        self.symbols += len(both_symbols)
        a = a[a["symbol"].isin(both_symbols)]
        b = b[b["symbol"].isin(both_symbols)]
        merged = pd.merge(a, b, on=["symbol", "trade_date", "day"], how="outer", suffixes=("_a", "_b"),
                          indicator=True, sort=False)
        merged = merged.sort_values(["symbol", "day"], kind="stable").reset_index(drop=True)
        if merged.empty:
            return
        # the common span of each symbol: from the later first day to the earlier last day
        span = pd.DataFrame({"lo": np.maximum(a.groupby("symbol")["day"].min(), b.groupby("symbol")["day"].min()),
                             "hi": np.minimum(a.groupby("symbol")["day"].max(), b.groupby("symbol")["day"].max())})
        lo = merged["symbol"].map(span["lo"]).to_numpy()
        hi = merged["symbol"].map(span["hi"]).to_numpy()
        day = merged["day"].to_numpy()
        inside = (day >= lo) & (day <= hi)
        side = merged["_merge"].astype(str).to_numpy()
        both = side == "both"
        missing = inside & ~both
        self.count("missing_day", missing, inside.sum(), merged,
                   lambda r: {"value": a_name if r["_merge"] == "left_only" else b_name,
                              "reason": f"stored in {a_name if r['_merge'] == 'left_only' else b_name} only; "
                              f"missing in {b_name if r['_merge'] == 'left_only' else a_name}"})

        # returns: close_t against yesterday's close on the other source's basis (consecutive common days)
        rel, yuan = opts.price_tolerance, opts.price_tolerance_yuan
        m = merged[both].reset_index(drop=True)
        self.common_days += len(m)
        ca, cb = m["close_a"].to_numpy(), m["close_b"].to_numpy()
        symbol = m["symbol"].to_numpy()
        q = ca / cb
        same_prev = np.r_[False, symbol[1:] == symbol[:-1]]
        q_prev = np.r_[np.nan, q[:-1]]
        judged = same_prev & np.isfinite(q) & np.isfinite(q_prev) & (cb > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            err = np.abs(ca - q_prev * cb)
            bad_ret = judged & (err > np.maximum(rel * np.abs(ca), yuan))
            # a one-day spike: today's return undoes yesterday's; blame yesterday only
            q_prev2 = np.r_[np.nan, np.nan, q[:-2]]
            same_prev2 = np.r_[False, same_prev[:-1]] & same_prev
            undo = same_prev2 & np.r_[False, bad_ret[:-1]] & bad_ret & (
                np.abs(ca - q_prev2 * cb) <= np.maximum(rel * np.abs(ca), yuan))
        bad_ret &= ~undo
        close_prev_a, close_prev_b = np.r_[np.nan, ca[:-1]], np.r_[np.nan, cb[:-1]]
        ret_a, ret_b = ca / close_prev_a - 1, cb / close_prev_b - 1
        self.count("price_return", bad_ret, judged.sum(), m,
                   lambda r: {"value": {a_name: r["close_a"], b_name: r["close_b"]},
                              "reason": f"close-to-close return {a_name} {_pct(ret_a[r.name])}, "
                              f"{b_name} {_pct(ret_b[r.name])}"})

        # absolute prices where both series are on the traded basis
        traded = m["traded_a"].to_numpy(dtype=bool) & m["traded_b"].to_numpy(dtype=bool)
        level_bad = np.zeros(len(m), dtype=bool)
        level_checked = np.zeros(len(m), dtype=bool)
        for name in PRICE_FIELDS:
            pa, pb = m[f"{name}_a"].to_numpy(), m[f"{name}_b"].to_numpy()
            present = traded & np.isfinite(pa) & np.isfinite(pb)
            level_checked |= present
            with np.errstate(invalid="ignore"):
                level_bad |= present & ~_within(pa, pb, rel, yuan)
        self.count("price_level", level_bad, level_checked.sum(), m,
                   lambda r: {"value": {a_name: {f: r[f"{f}_a"] for f in PRICE_FIELDS},
                                        b_name: {f: r[f"{f}_b"] for f in PRICE_FIELDS}},
                              "reason": "traded-basis prices differ: " + ", ".join(
                                  f"{f} {r[f'{f}_a']} vs {r[f'{f}_b']}" for f in PRICE_FIELDS
                                  if not _within(r[f"{f}_a"], r[f"{f}_b"], rel, yuan))})

        bad_by = {"missing_day": missing, "price_return": np.zeros(len(merged), dtype=bool),
                  "price_level": np.zeros(len(merged), dtype=bool)}
        both_index = np.flatnonzero(both)
        bad_by["price_return"][both_index] = bad_ret
        bad_by["price_level"][both_index] = level_bad
        for name, column_a, column_b, tolerance, floor in (
            ("volume", "shares_a", "shares_b", opts.volume_tolerance, 100.0),
            ("amount", "amount_a", "amount_b", opts.amount_tolerance, 1.0),
        ):
            va, vb = m[column_a].to_numpy(), m[column_b].to_numpy()
            has_a, has_b = np.isfinite(va) & (va > 0), np.isfinite(vb) & (vb > 0)
            with np.errstate(invalid="ignore"):
                bad = (has_a != has_b) | (has_a & has_b & ~_within(va, vb, tolerance, floor))
            self.count(name, bad, (has_a | has_b).sum(), m,
                       lambda r, ca_=column_a, cb_=column_b, n=name: {
                           "value": {a_name: r[ca_], b_name: r[cb_]},
                           "reason": f"{n} {a_name} {_num(r[ca_])} vs {b_name} {_num(r[cb_])}"
                           + (" (shares after unit normalisation)" if n == "volume" else "")})
            flags = np.zeros(len(merged), dtype=bool)
            flags[both_index] = bad
            bad_by[name] = flags

        any_bad = np.logical_or.reduce([bad_by[n] for n in COMPARED])
        frame_sym = merged["symbol"].to_numpy()
        common = pd.Series(both).groupby(frame_sym).sum()
        table = pd.DataFrame({n: bad_by[n] for n in COMPARED}).groupby(frame_sym).sum()
        table["days"] = pd.Series(any_bad).groupby(frame_sym).sum()
        table["common"] = common
        self.per_date.update(merged.loc[any_bad, "trade_date"].value_counts().to_dict())
        for sym, row in table.iterrows():
            self.per_symbol[sym] = {k: int(v) for k, v in row.items()}
        if self.writer is not None and any_bad.any():
            for i in np.flatnonzero(any_bad):
                row = merged.iloc[i]
                checks = [n for n in COMPARED if bad_by[n][i]]
                positions = {a_name: row.get("pos_a"), b_name: row.get("pos_b")}
                self.writer.write(row["symbol"], row["trade_date"], checks,
                                  {a_name: frame_a, b_name: frame_b}, positions, opts.sources)


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{value * 100:+.2f}%"


def _num(value: float) -> str:
    return "missing" if value != value else f"{value:,.0f}"


# -- failures file --------------------------------------------------------------------------------


def _pair_writer(path: Path):
    from tacn.pipelines.validate import _FailuresWriter

    class PairWriter(_FailuresWriter):  # validate's --failures-out file, with pairs of documents per line
        """One JSON line per disagreeing (symbol, trade_date): the checks and both sources' documents."""

        write = _write_pair

    return PairWriter(path)


def _write_pair(self, symbol, trade_date, checks, frames: dict, positions: dict, sources) -> None:
    from tacn.pipelines.extjson import encode_document

    documents = {}
    for source in sources:
        frame, pos = frames.get(source), positions.get(source)
        documents[source] = None if frame is None or pos is None or pos != pos else _document(frame, int(pos))
    line = {"symbol": symbol, "trade_date": trade_date, "checks": checks, "documents": documents}
    self._handle.write(encode_document(line) + "\n")
    self.records += 1


def _document(frame: pd.DataFrame, pos: int) -> dict:
    import pandas as pd

    out = {}
    for name, value in frame.iloc[pos].items():
        if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
            continue  # a field absent from this document
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        elif hasattr(value, "item") and not isinstance(value, str):
            value = value.item()
        out[name] = value
    return out


# -- reading by symbol ---------------------------------------------------------------------------


def _symbol_batches(store, options: ReconcileOptions) -> list[list[str]]:
    """The symbols of either source in batches of about ``batch_rows`` records each (all known up front:
    they are the progress total)."""
    a_name, b_name = options.sources
    last_a = store.latest_valid_trade_dates(a_name, options.period, options.symbols)
    last_b = store.latest_valid_trade_dates(b_name, options.period, options.symbols)
    symbols = sorted(set(last_a) | set(last_b))
    if not symbols:
        return []
    records = store.count(RecordFilter(data_source=a_name, period=options.period, symbols=options.symbols)) + \
        store.count(RecordFilter(data_source=b_name, period=options.period, symbols=options.symbols))
    per_symbol = max(1, records // (2 * len(symbols)))
    size = max(1, min(options.batch_rows // per_symbol, 5_000))
    return [symbols[start:start + size] for start in range(0, len(symbols), size)]


def _read(store, source: str, batch: list[str], options: ReconcileOptions) -> pd.DataFrame:
    import pandas as pd

    flt = RecordFilter(data_source=source, period=options.period, symbols=tuple(batch), start=options.since)
    frames = [f for f in store.iter_frames(flt, chunk_size=options.batch_rows) if not f.empty]
    if not frames:
        return pd.DataFrame({"symbol": pd.Series(dtype=object), "trade_date": pd.Series(dtype=object)})
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _check_options(options: ReconcileOptions) -> None:
    from tacn.validators.records import DATA_SOURCES, PERIODS

    if len(options.sources) != 2 or options.sources[0] == options.sources[1]:
        raise UsageError("--data-source needs two different sources, e.g. akshare,tushare")
    for source in options.sources:
        if source not in DATA_SOURCES:
            raise UsageError(f"unknown data_source {source!r}: expected one of {', '.join(sorted(DATA_SOURCES))}")
    if options.period not in PERIODS:
        raise UsageError(f"--period must be one of {', '.join(PERIODS)}")
    for name, value in options.tolerances().items():
        if not value >= 0:
            raise UsageError(f"the {name} tolerance must be 0 or more, got {value}")


def reconcile_store(store, options: ReconcileOptions, *, target: dict | None = None,
                    progress: ProgressReport | None = None) -> ReconcileResult:
    """Compare the two sources of ``store`` symbol batch by symbol batch.

    ``progress``: the symbols compared so far of all the symbols either source holds, after each batch."""
    _check_options(options)
    from tacn.validators.calendar import last_known_session

    if options.since is not None and options.since > last_known_session():
        raise CalendarEnded(f"--start {options.since} is after the XSHG calendar's last session")
    started = time.perf_counter()
    writer = _pair_writer(options.failures_out) if options.failures_out else None
    acc = _Accumulator(options, writer)
    try:
        batches = _symbol_batches(store, options)
        total, done = sum(len(batch) for batch in batches), 0
        for batch in batches:
            acc.compare(_read(store, options.sources[0], batch, options),
                        _read(store, options.sources[1], batch, options))
            done += len(batch)
            if progress is not None:
                progress(done, total, "symbols")
    finally:
        if writer is not None:
            writer.close()
    filters = {"period": options.period, **({"symbols": list(options.symbols)} if options.symbols else {}),
               **({"since": options.since} if options.since else {})}
    worst = sorted(((s, c) for s, c in acc.per_symbol.items() if c["days"]), key=lambda kv: (-kv[1]["days"], kv[0]))
    return ReconcileResult(
        target=target or {"kind": "store", "name": store.display_url, "format": store.kind},
        sources=list(options.sources),
        filters=filters,
        tolerances=options.tolerances(),
        records=acc.records,
        symbols=acc.symbols,
        symbols_only_in=acc.only_in,
        common_days=acc.common_days,
        checks=[acc.outcomes[c.name] for c in CHECKS],
        units=acc.units,
        worst=[{"symbol": s, **c} for s, c in worst[: options.worst]],
        duration_s=time.perf_counter() - started,
        failures_out=None if writer is None else {"path": str(writer.path), "records": writer.records},
        per_symbol=acc.per_symbol,
        per_date=dict(acc.per_date),
    )


def reconcile_files(path_a: Path | str, path_b: Path | str, options: ReconcileOptions,
                    progress: ProgressReport | None = None) -> ReconcileResult:
    """Compare two files (CSV, Parquet, JSON Lines of documents): the first as source A, the second as B.

    Each file is loaded into a temporary SQLite store first (memory stays bounded), under
    the data_source names of ``options.sources``, whatever the files' own data_source says.
    """
    _check_options(options)
    from tacn.pipelines.stores.sqlite import SQLiteStore

    paths = (Path(path_a), Path(path_b))
    with tempfile.TemporaryDirectory(prefix="tacn-reconcile-") as tmp:
        store = SQLiteStore(Path(tmp) / "pair.db")
        try:
            with store.bulk_load():
                for path, source in zip(paths, options.sources, strict=True):
                    store.upsert(_file_documents(path, source, options.period))
            target = {"kind": "files", "name": f"{paths[0]} vs {paths[1]}", "format": "files"}
            return reconcile_store(store, options, target=target, progress=progress)
        finally:
            store.close()


def _file_documents(path: Path, source: str, period: str) -> Iterator[dict]:
    import pandas as pd

    from tacn.pipelines.validate import ValidateOptions, read_file_documents
    from tacn.validators.rules import HIDDEN_COLUMNS

    for frame in read_file_documents(path, ValidateOptions()):
        frame = frame.drop(columns=[c for c in (*HIDDEN_COLUMNS, "_id") if c in frame.columns])
        frame["data_source"] = source
        if "period" not in frame.columns:
            frame["period"] = period
        frame["period"] = frame["period"].fillna(period)
        keep = frame["symbol"].map(type).eq(str) & frame["trade_date"].map(type).eq(str) \
            if {"symbol", "trade_date"} <= set(frame.columns) else pd.Series(False, index=frame.index)
        for doc in frame[keep].to_dict("records"):
            yield {k: (None if isinstance(v, float) and v != v else (v.to_pydatetime() if isinstance(v, pd.Timestamp)
                                                                     else v))
                   for k, v in doc.items()}


def junit_xml(result: ReconcileResult) -> str:
    """One testcase per check; disagreements of an error check are failures with samples."""
    import json
    import xml.etree.ElementTree as ET

    from tacn.pipelines.extjson import jsonable

    failures = sum(1 for c in result.checks if c.fails_run)
    suites = ET.Element("testsuites", name="tacn reconcile", tests=str(len(result.checks)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=f"tacn reconcile {' vs '.join(result.sources)}",
                          tests=str(len(result.checks)), failures=str(failures), errors="0", skipped="0",
                          time=f"{result.duration_s:.3f}", timestamp=datetime.now().isoformat(timespec="seconds"))
    props = ET.SubElement(suite, "properties")
    for name, value in (("target", result.target["name"]), ("symbols", result.symbols),
                        ("common_days", result.common_days), ("tolerances", json.dumps(result.tolerances))):
        ET.SubElement(props, "property", name=name, value=str(value))
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"tacn.reconcile.{check.severity}", name=check.name, time="0")
        summary = f"{check.failing} of {check.checked} disagree: {check.description}"
        detail = "\n".join(json.dumps(jsonable(s), ensure_ascii=False) for s in check.samples)
        if check.fails_run:
            ET.SubElement(case, "failure", message=summary, type=check.severity).text = detail
        elif check.failing:
            ET.SubElement(case, "system-out").text = f"{summary}\n{detail}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
