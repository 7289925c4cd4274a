"""tacn sync from a file: 1,000,000 rows (AKShare's CSV layout) into the SQLite store.

Floor, measured in the same run: the store's bare batch upsert of the same
records already normalised (the documents the sync produces, built beforehand
and not timed) into a fresh store. Target: sync / floor <= 1.5. Each side runs
twice into a fresh store and the best of two counts; CPU time is printed too
(the machine is shared and noisy).
The sync reads the file in chunks, so its peak RSS is printed before the floor
builds its million documents in memory.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import peak_rss_mb, report, scaled  # noqa: E402

N = scaled(1_000_000)
SYMBOLS = 1000
TARGET = 1.5


def write_csv(path: Path, n: int) -> None:
    """n rows in AKShare's layout: SYMBOLS codes x consecutive XSHG sessions, synthetic prices."""
    import numpy as np
    import pandas as pd

    from tacn.validators.calendar import sessions_between
    from tacn.validators.source_layouts import AKSHARE_COLUMNS

    per_symbol = -(-n // SYMBOLS)
    days = np.array(sessions_between("2015-01-05", "2026-12-31")[:per_symbol])
    symbols = np.array([f"{600000 + s:06d}" if s % 2 else f"{s:06d}" for s in range(SYMBOLS)])
    rng = np.random.default_rng(20251023)
    dates = np.tile(days, SYMBOLS)[:n]
    codes = np.repeat(symbols, len(days))[:n]
    close = np.round(10 + rng.random(n) * 90, 2)
    open_ = np.round(close * (1 + (rng.random(n) - 0.5) / 50), 2)
    high = np.round(np.maximum(open_, close) * 1.01, 2)
    low = np.round(np.minimum(open_, close) * 0.99, 2)
    volume = rng.integers(1_000, 2_000_000, n)
    frame = pd.DataFrame({
        "日期": dates, "股票代码": codes, "开盘": open_, "收盘": close, "最高": high, "最低": low, "成交量": volume,
        "成交额": np.round(volume * 100 * close, 2), "振幅": np.round((high - low) / close * 100, 2),
        "涨跌幅": np.round(rng.normal(0, 2, n), 2), "涨跌额": np.round(rng.normal(0, 0.3, n), 2),
        "换手率": np.round(rng.random(n) * 5, 2),
    }, columns=list(AKSHARE_COLUMNS))
    frame.to_csv(path, index=False)


def normalised_documents(path: Path) -> list[dict]:
    """The documents the sync writes, built without timing (the floor's input)."""
    from tacn.pipelines.sources.files import iter_frames, open_file_source
    from tacn.validators.source_layouts import convert_frame, documents

    source = open_file_source(path)
    docs: list[dict] = []
    for chunk in iter_frames(source):
        docs.extend(documents(convert_frame(chunk, source.layout).frame))
    return docs


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result): CPU time shows through a busy shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


# Runs the CLI and prints the process's own peak RSS (VmHWM is per address space, so it starts afresh
# at exec; ru_maxrss would carry the parent's size over into a forked child).
_CLI_WITH_PEAK = (
    "import atexit, sys\n"
    "def peak():\n"
    "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "    sys.stderr.write('PEAK ' + line.split()[1] + '\\n')\n"
    "atexit.register(peak)\n"
    "sys.argv = ['tacn', *sys.argv[1:]]\n"
    "from tacn.cli.app import main\n"
    "main()\n"
)


def cli_sync(csv: Path, tmp: Path) -> tuple[float, float]:
    """`tacn sync --source file:…` as operators run it, in its own process: (wall seconds, peak RSS MiB)."""
    import os
    import subprocess

    env = {**os.environ, "TACN_HOME": str(tmp / "home")}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CLI_WITH_PEAK, "sync", "--source", f"file:{csv}", "--store",
                           f"sqlite:///{tmp / 'cli.db'}", "--json"], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=True)
    elapsed = time.perf_counter() - start
    peak_kib = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK "))
    return elapsed, peak_kib / 1024


def main() -> None:
    from tacn.pipelines.stores.sqlite import SQLiteStore
    from tacn.pipelines.sync import SyncRequest, run_sync

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "quotes.csv"
        write_csv(csv, N)
        size_mb = csv.stat().st_size / 2**20

        def sync_into(name: str, **kwargs):
            with SQLiteStore(Path(tmp) / name) as store:
                return timed(lambda: run_sync(store, SyncRequest(source=f"file:{csv}", **kwargs)))

        # The floor's input: the documents the sync writes, built beforehand (not timed).
        docs = normalised_documents(csv)

        def floor_into(name: str):
            with SQLiteStore(Path(tmp) / name) as store:
                return timed(lambda: store.upsert(docs))

        # Each side twice, interleaved, best of two: the machine is shared and its load comes and goes.
        syncs, floors = [], []
        for i in range(2):
            syncs.append(sync_into(f"sync{i}.db", rejects_path=Path(tmp) / "rejects.jsonl"))
            floors.append(floor_into(f"floor{i}.db"))
        rerun = sync_into("sync1.db", rejects_path=None)
        cli_s, sync_rss = cli_sync(csv, Path(tmp))
    sync_s, sync_cpu, result = min(syncs, key=lambda t: t[0])
    floor_s, floor_cpu, floor = min(floors, key=lambda t: t[0])
    ratio, cpu_ratio = sync_s / floor_s, sync_cpu / floor_cpu
    report(f"tacn sync from a CSV file into SQLite, {N:,} rows ({size_mb:.0f} MiB, AKShare layout)", [
        ("floor: store.upsert of the normalised records", f"{floor_s:.2f} s (cpu {floor_cpu:.2f} s)  "
         f"inserted={floor.inserted:,}  [best of {', '.join(f'{t[0]:.1f}' for t in floors)}]"),
        ("sync --source file:quotes.csv", f"{sync_s:.2f} s (cpu {sync_cpu:.2f} s)  inserted={result.inserted:,} "
         f"rejected={result.rejected:,}  [best of {', '.join(f'{t[0]:.1f}' for t in syncs)}]"),
        ("ratio sync / floor", f"{ratio:.2f}  (target <= {TARGET}) {'OK' if ratio <= TARGET else 'OVER'}"
         f"; CPU-time ratio {cpu_ratio:.2f}"),
        ("sync again (all unchanged)", f"{rerun[0]:.2f} s  unchanged={rerun[2].unchanged:,}"),
        ("tacn sync CLI, own process (start-up included)", f"{cli_s:.2f} s, peak RSS {sync_rss:.0f} MiB"),
        (f"peak RSS of this process (the floor holds {N:,} documents)", f"{peak_rss_mb():.0f} MiB"),
    ])


if __name__ == "__main__":
    main()
