"""Benchmark of `--html` (issue 14): what the report adds to a 1,000,000-record `tacn validate`.

The dataset is bench_validate's (1,000 symbols x 1,000 sessions, 5% bad trade_dates,
SQLite). Both runs are subprocesses, `tacn validate --json` with and without
`--html`. Target: the report adds at most 20% or 1 s, whichever is larger. Also
prints the page's size (it must stay small enough to mail: <= 5 MB for the whole market,
which tests/test_report_html.py checks at about 5,400 symbols).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_validate import N_SMALL, SYMBOLS, build  # noqa: E402
from common import report, run_tacn_json  # noqa: E402

from tacn.validators.calendar import sessions_between  # noqa: E402


def main() -> None:
    per_symbol = -(-N_SMALL // SYMBOLS)  # sessions per symbol, rounded up
    days = sessions_between("1990-12-19", "2025-10-23")[-per_symbol:]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        db = tmp_path / "store.db"
        build(db, 0, N_SMALL, days)
        url = f"sqlite:///{db}"
        base_s, base_rss, _, _ = run_tacn_json(["validate", "--store", url, "--json"], tmp_path / "a.json")
        page = tmp_path / "report.html"
        html_s, html_rss, _, code = run_tacn_json(["validate", "--store", url, "--json", "--html", str(page)],
                                                  tmp_path / "b.json")
        size = page.stat().st_size if page.exists() else 0
    extra = html_s - base_s
    allowed = max(0.2 * base_s, 1.0)
    report(f"tacn validate --html on the SQLite store, {N_SMALL:,} records", [
        ("tacn validate --json", f"{base_s:.2f} s  peak RSS {base_rss:.0f} MiB"),
        ("tacn validate --json --html", f"{html_s:.2f} s  peak RSS {html_rss:.0f} MiB  exit {code}"),
        ("added by --html", f"{extra:.2f} s  (target <= {allowed:.2f} s) {'OK' if extra <= allowed else 'OVER'}"),
        ("page size", f"{size / 1024:.0f} KiB"),
    ])


if __name__ == "__main__":
    main()
