"""--html reports: one self-contained file, nothing from the network, plots that render in headless Chromium."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from datetime import datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines import freshness
from tacn.pipelines.report_html import ValidateReportData, reconcile_report, validate_report
from tests.market_fixtures import bars, sessions
from tests.redis_fixtures import server_unavailable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# any attribute or CSS that would fetch from elsewhere: src/href/url()/@import with a scheme or //
NETWORK = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:|ftp:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import)""",
    re.I,
)


def _store(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    days = sessions("2025-10-23", 120)
    a = bars("000001", "akshare", days, unit="lots") + bars("600000", "akshare", days[:-30], unit="shares", seed=2)
    b = bars("000001", "tushare", days) + bars("600000", "tushare", days[:-30], seed=2)
    b[40]["close"] = round(b[40]["close"] * 1.05, 2)
    del a[70]
    a[10]["high"] = a[10]["low"] - 0.5  # an error rule fails on one day
    db = tmp_path / "s.db"
    with SQLiteStore(db) as store:
        store.upsert(a + b)
    return f"sqlite:///{db}"


@pytest.fixture
def reports(tmp_path, monkeypatch):
    url = _store(tmp_path)
    monkeypatch.setattr(freshness, "utc_now", lambda: datetime(2025, 10, 23, 10, 0))
    runner = CliRunner()
    validate_html, reconcile_html = tmp_path / "out" / "validate.html", tmp_path / "out" / "reconcile.html"
    res = runner.invoke(app, ["validate", "--store", url, "--freshness", "--completeness", "--html", str(validate_html)])
    assert res.exit_code == 1 and f"HTML report written to {validate_html}" in res.stderr, res.output
    res = runner.invoke(app, ["reconcile", "--store", url, "--html", str(reconcile_html)])
    assert res.exit_code == 1 and f"HTML report written to {reconcile_html}" in res.stderr, res.output
    return validate_html, reconcile_html


def test_reports_are_self_contained(reports):
    for path in reports:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>") and text.count("<svg") >= 3
        assert not NETWORK.search(text), NETWORK.search(text).group(0)
        assert "<script" not in text  # no JavaScript at all
    validate_text = reports[0].read_text(encoding="utf-8")
    for words in ("high_is_highest", "Completeness", "Volume units", "Freshness", "600000"):
        assert words in validate_text
    assert "missing_day" in reports[1].read_text(encoding="utf-8")


def test_the_network_pattern_catches_what_it_must():
    for bad in ('<img src="https://x/y.png">', "<link href='//cdn/x.css'>", "a{background:url(http://x)}",
                '<script src="http://x.js">', "@import 'x.css';"):
        assert NETWORK.search(bad), bad
    for fine in ('<svg xmlns="http://www.w3.org/2000/svg">', 'xlink:href="#m1"', "clip-path=\"url(#p1)\"",
                 'href="data:image/png;base64,AAAA"'):
        assert not NETWORK.search(fine), fine


def _open_in_chromium(browser, path, shot):
    """Load one page (playwright gives each launch a fresh --user-data-dir); (console errors, requests
    that were not file:, per-figure [width, height, shapes])."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    requests, errors = [], []

    def route(route):
        requests.append(route.request.url)
        return route.continue_() if route.request.url.startswith("file:") else route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    sizes = page.evaluate("""[...document.querySelectorAll('figure svg')].map(s => {
        const r = s.getBoundingClientRect();
        return [r.width, r.height, s.querySelectorAll('path, image, rect').length];
    })""")
    page.screenshot(path=str(shot), full_page=True)
    context.close()
    return errors, [u for u in requests if not u.startswith("file:")], sizes


def test_reports_render_in_headless_chromium(reports, tmp_path):
    if CHROMIUM is None:
        server_unavailable("chromium is not installed (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[f for f in CHROMIUM_FLAGS if f != "--headless"],
        )
        try:
            for path in reports:
                shot = tmp_path / f"{path.stem}.png"
                errors, remote, sizes = _open_in_chromium(browser, path, shot)
                assert errors == [] and remote == []
                assert len(sizes) >= 3 and all(w > 100 and h > 50 and n > 5 for w, h, n in sizes), sizes
                assert shot.stat().st_size > 20_000
        finally:
            browser.close()


def test_a_whole_market_report_stays_small_enough_to_mail():
    """About 5,400 symbols x 10 years: the page stays under 5 MB (symbols aggregated, series by month)."""
    import numpy as np

    from tacn.pipelines.validate import ValidationResult

    rng = np.random.default_rng(0)
    data = ValidateReportData()
    symbols = [f"{i:06d}" for i in range(5_400)]
    months = [f"{y}-{m:02d}" for y in range(2016, 2026) for m in range(1, 13)]
    index = pd.MultiIndex.from_product([symbols, months])
    data._months.append(pd.Series(rng.integers(15, 23, len(index)), index=index))
    data._spans.append(pd.DataFrame({"min": "2016-01-04", "max": "2025-12-31"}, index=symbols))
    days = pd.bdate_range("2016-01-01", "2025-12-31").strftime("%Y-%m-%d")
    for rule in ("trade_date_iso", "high_is_highest", "pct_chg_consistent", "trading_day", "volume_unit"):
        data.failing_by_date[rule] = Counter(dict(zip(days, rng.integers(0, 50, len(days)).tolist(), strict=True)))
    result = ValidationResult(target={"name": "market", "format": "sqlite"}, filters={}, threshold="error",
                              records=13_000_000, rules=[], skipped_rules=[], failing_records={}, duration_s=1.0,
                              chunks=1, volume_units={"akshare": {"expected": "lots", "lots": 5_400},
                                                      "tushare": {"expected": "shares", "shares": 5_399, "unknown": 1}})
    page = validate_report(result, data)
    assert len(page.encode()) < 5 * 2**20

    from tacn.pipelines.reconcile import ReconcileResult

    per_symbol = {s: {"days": int(rng.integers(0, 20)), "common": 2_400, "price_return": 1, "price_level": 0,
                      "volume": 0, "amount": 0, "missing_day": 0} for s in symbols}
    rec = ReconcileResult(target={"name": "market"}, sources=["akshare", "tushare"], filters={}, tolerances={},
                          records={}, symbols=5_400, symbols_only_in={}, common_days=13_000_000, checks=[], units={},
                          worst=[], duration_s=1.0, per_symbol=per_symbol,
                          per_date=dict(zip(days, rng.integers(0, 30, len(days)).tolist(), strict=True)))
    assert len(reconcile_report(rec).encode()) < 5 * 2**20
