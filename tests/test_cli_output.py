"""What every command prints: progress on a terminal only (tqdm, with totals), --quiet, -v/--verbose,
and summary tables that fit an 80-column terminal with one-line titles."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tacn.cli import render
from tacn.cli.app import app
from tests.sync_fixtures import TushareFake, free_closed_port_url, synthetic_quotes
from tests.terminal_fixtures import read_terminal

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "akshare_quotes_sample.csv"  # 25 rows, one of them with a bad date
TOKEN = "tk-test-0123456789abcdef"
WIDTH = 80

runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def good_sample(tmp_path: Path) -> Path:
    """The example file without its bad row: a sync of it exits 0."""
    frame = pd.read_csv(SAMPLE, dtype={"股票代码": str})
    good = frame[frame["日期"].str.match(r"^\d{4}-\d{2}-\d{2}$")]
    path = tmp_path / "good.csv"
    good.to_csv(path, index=False)
    return path


@pytest.fixture
def demo_url(tmp_path):
    """The demo store: 17,550 records, 3,000 with an invalid trade_date."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert run("demo", "--store", url, "--json").exit_code == 0
    return url


@pytest.fixture
def clean_url(tmp_path):
    """A store holding only valid records (the example file synced)."""
    url = f"sqlite:///{tmp_path / 'clean.db'}"
    result = run("sync", "--source", f"file:{good_sample(tmp_path)}", "--store", url, "--json")
    assert result.exit_code == 0, result.stderr
    return url


# -- progress: tqdm on a terminal, with a total ----------------------------------------------------


def run_on_terminal(args: list[str], tmp_path: Path, env: dict | None = None, timeout: float = 120) -> tuple[str, str, int]:
    """Run tacn with stderr on a pseudo-terminal (100x24), stdout on a pipe: (stderr text, stdout, exit code)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "TACN_HOME": str(tmp_path / "home"), **(env or {})}
    full_env.pop("COLUMNS", None)
    proc = subprocess.Popen([sys.executable, "-m", "tacn.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=full_env, cwd=tmp_path)
    os.close(slave)
    try:
        seen = read_terminal(master, timeout)
        stdout = proc.stdout.read().decode()
        proc.wait(timeout=10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    return seen.decode(errors="replace"), stdout, proc.returncode


# "label:  100%|███| 1.20k/1.20k [00:00<00:00, …": a percentage, done/total, elapsed<time left.
def bar_pattern(label: str, done_total: str) -> re.Pattern:
    return re.compile(rf"{label}: +100%\|[^\r\n]*\| *{done_total} \[\d\d:\d\d<\d\d:\d\d")


def test_file_sync_on_a_terminal_shows_bytes_of_the_file_with_percentage_and_time_left(tmp_path):
    shown, stdout, code = run_on_terminal(["sync", "--source", f"file:{SAMPLE}", "--store",
                                           f"sqlite:///{tmp_path / 's.db'}"], tmp_path)
    assert code == 1, shown  # the example's bad row is rejected
    size = SAMPLE.stat().st_size
    total = f"{size / 1024:.2f}k"  # tqdm's unit_scale with unit_divisor=1024
    assert bar_pattern("sync", f"{re.escape(total)}/{re.escape(total)}").search(shown), shown
    assert "B/s" in shown  # a byte rate
    assert "\r" not in stdout and "sync" in stdout  # the bar never reaches stdout


def test_api_sync_on_a_terminal_shows_symbols_of_the_total(tmp_path):
    symbols = ("000001", "600000", "300750")
    fake = TushareFake({s: synthetic_quotes(s) for s in symbols}, token=TOKEN).start()
    try:
        shown, _, code = run_on_terminal(
            ["sync", "--source", "tushare", "--symbols", ",".join(symbols), "--end", "2025-10-24",
             "--tushare-rate", "100000", "--store", f"sqlite:///{tmp_path / 's.db'}"],
            tmp_path, env={"TUSHARE_TOKEN": TOKEN, "TACN_TUSHARE_URL": fake.url})
    finally:
        fake.stop()
    assert code == 0, shown
    assert bar_pattern("sync", "3/3").search(shown), shown
    assert "symbols/s" in shown


def test_validate_on_a_terminal_shows_records_of_the_store_count(tmp_path, demo_url):
    shown, _, code = run_on_terminal(["validate", "--store", demo_url], tmp_path)
    assert code == 1, shown
    assert bar_pattern("validate", "17550/17550").search(shown), shown


def test_verify_fix_on_a_terminal_shows_records_of_the_store_count(tmp_path, demo_url):
    shown, _, code = run_on_terminal(["verify-fix", "--store", demo_url], tmp_path)
    assert code == 1, shown
    assert bar_pattern("verify", "17550/17550").search(shown), shown


def test_clean_and_restore_on_a_terminal_show_records_of_the_backup(tmp_path, demo_url):
    shown, stdout, code = run_on_terminal(["clean-invalid-trade-date", "--yes", "--store", demo_url,
                                           "--backup-dir", str(tmp_path / "b")], tmp_path)
    assert code == 0, shown
    assert bar_pattern("delete", "3000/3000").search(shown), shown
    manifest = next((tmp_path / "b").glob("*.manifest.json"))
    shown, _, code = run_on_terminal(["restore", str(manifest), "--store", demo_url], tmp_path)
    assert code == 0, shown
    assert bar_pattern("restore", "3000/3000").search(shown), shown


def broken_tushare_store(tmp_path: Path, symbols: tuple[str, ...], rows: int = 4) -> str:
    """Each symbol's last ``rows`` sessions written by tushare with trade_date "0".."N" (the 2025-10-23 bug)."""
    from datetime import datetime

    from bson import ObjectId

    from tacn.pipelines.stores.sqlite import SQLiteStore
    from tests.clean_fixtures import quote

    written = datetime(2025, 10, 23, 9, 0)  # 17:00 in Shanghai
    path = tmp_path / "broken.db"
    with SQLiteStore(path) as store:
        store.put_documents([{**quote(symbol=s, source="tushare"), "_id": ObjectId(), "trade_date": str(i),
                              "updated_at": written, "created_at": written} for s in symbols for i in range(rows)])
    return f"sqlite:///{path}"


REPAIR_SYMBOLS = ("000001", "600000", "300750")


def _repair_args(tmp_path: Path, url: str) -> list[str]:
    return ["repair", "--yes", "--source", "tushare", "--store", url, "--backup-dir", str(tmp_path / "b")]


def test_repair_on_a_terminal_shows_one_bar_per_step_with_its_total(tmp_path):
    url = broken_tushare_store(tmp_path, REPAIR_SYMBOLS)
    fake = TushareFake({s: synthetic_quotes(s) for s in REPAIR_SYMBOLS}, token=TOKEN).start()
    try:
        shown, stdout, code = run_on_terminal(_repair_args(tmp_path, url), tmp_path,
                                              env={"TUSHARE_TOKEN": TOKEN, "TACN_TUSHARE_URL": fake.url})
    finally:
        fake.stop()
    assert code == 0, shown + stdout
    assert bar_pattern("repair clean", "12/12").search(shown), shown  # the backup's records deleted
    assert bar_pattern("repair re-sync", "3/3").search(shown), shown  # the symbols of the re-sync plan
    assert bar_pattern("repair verify-fix", "12/12").search(shown), shown  # the store's records counted
    assert "\r" not in stdout and "repaired" in stdout


def test_repair_on_a_pipe_shows_no_bar(tmp_path):
    url = broken_tushare_store(tmp_path, REPAIR_SYMBOLS)
    fake = TushareFake({s: synthetic_quotes(s) for s in REPAIR_SYMBOLS}, token=TOKEN).start()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TACN_HOME": str(tmp_path / "home"), "TUSHARE_TOKEN": TOKEN,
           "TACN_TUSHARE_URL": fake.url}
    try:
        proc = subprocess.run([sys.executable, "-m", "tacn.cli", *_repair_args(tmp_path, url)], capture_output=True,
                              text=True, env=env, timeout=120, cwd=tmp_path)
    finally:
        fake.stop()
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "\r" not in proc.stderr and "%|" not in proc.stderr and "repair clean" not in proc.stderr


def test_reconcile_on_a_terminal_shows_symbols_of_the_total_and_none_on_a_pipe(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore
    from tests.test_reconcile import planted

    a, b, _ = planted()  # three symbols in both sources
    with SQLiteStore(tmp_path / "r.db") as store:
        store.upsert(a + b)
    args = ["reconcile", "--store", f"sqlite:///{tmp_path / 'r.db'}"]
    shown, stdout, code = run_on_terminal(args, tmp_path)
    assert code == 1, shown  # the planted differences
    assert bar_pattern("reconcile", "3/3").search(shown), shown
    assert "\r" not in stdout
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TACN_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "tacn.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "\r" not in proc.stderr and "%|" not in proc.stderr and "reconcile:" not in proc.stderr


def test_a_pipe_gets_no_bar(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TACN_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "tacn.cli", "sync", "--source", f"file:{SAMPLE}", "--store",
                           f"sqlite:///{tmp_path / 's.db'}"], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "\r" not in proc.stderr and "%|" not in proc.stderr
    assert "store:" in proc.stderr  # the diagnostics are still there


def test_a_pipe_has_no_size_so_its_progress_has_no_total(tmp_path):
    from tacn.pipelines.sources.files import ReadMeter, iter_frames, open_file_source

    fifo = tmp_path / "quotes.csv"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat '{SAMPLE}' > '{fifo}'"])
    try:
        source = open_file_source(fifo, wait_s=10)
        meter = ReadMeter()
        rows = sum(len(frame) for frame in iter_frames(source, meter=meter))
    finally:
        writer.wait(timeout=10)
    assert rows == 25 and meter.total is None and meter.done == SAMPLE.stat().st_size


def test_parquet_progress_counts_rows_of_its_footer(tmp_path):
    from tacn.pipelines.sources.files import ReadMeter, iter_frames, open_file_source

    path = tmp_path / "q.parquet"
    pd.read_csv(SAMPLE, dtype={"股票代码": str}).to_parquet(path)
    meter = ReadMeter()
    seen = [meter.done for _ in iter_frames(open_file_source(path), chunk_rows=10, meter=meter)]
    assert meter.unit == "rows" and meter.total == 25 and seen == [10, 20, 25]


def test_help_imports_no_progress_library():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tacn.cli", "--help"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert proc.returncode == 0
    assert "tqdm" not in imported and "rich.progress" not in imported


# -- --quiet ------------------------------------------------------------------------------------------


def _successes(tmp_path: Path, demo_url: str, clean_url: str) -> dict[str, list]:
    backup = tmp_path / "b"
    assert run("clean-invalid-trade-date", "--yes", "--store", demo_url, "--backup-dir", backup, "--json").exit_code == 0
    manifest = next(backup.glob("*.manifest.json"))
    return {
        "demo": ["demo", "--store", f"sqlite:///{tmp_path / 'd2.db'}"],
        "sync": ["sync", "--source", f"file:{good_sample(tmp_path)}", "--store", clean_url],
        "sync --status": ["sync", "--status", "--store", clean_url],
        "validate": ["validate", "--store", clean_url],
        "validate FILE": ["validate", good_sample(tmp_path)],
        "schema": ["schema"],
        "stats": ["stats", "--store", clean_url],
        "verify-fix": ["verify-fix", "--store", clean_url],
        "clean-invalid-trade-date": ["clean-invalid-trade-date", "--store", clean_url],
        "restore": ["restore", manifest, "--store", demo_url],
        "repair": ["repair", "--store", clean_url],
        "migrate": ["migrate", "status", "--store", clean_url],
        "config-check": ["config-check", "--offline", "--env-file", _env_file(tmp_path)],
    }


def _env_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.env"
    path.write_text("MONGODB_HOST=localhost\nMONGODB_PORT=27017\nMONGODB_DATABASE=tradingagents\nREDIS_HOST=localhost\n"
                    "REDIS_PORT=6379\n"
                    "JWT_SECRET=0123456789abcdef0123456789abcdef\nCSRF_SECRET=0123456789abcdef0123456789abcdef\n")
    return path


def test_quiet_prints_nothing_on_success_for_every_command(tmp_path, demo_url, clean_url):
    for name, args in _successes(tmp_path, demo_url, clean_url).items():
        loud = run(*args)
        quiet = run(*args, "--quiet")
        assert loud.exit_code == quiet.exit_code == 0, (name, loud.stderr, quiet.stderr)
        assert loud.stdout or loud.stderr, name  # there was something to silence
        assert quiet.stdout == "" and quiet.stderr == "", (name, quiet.stdout, quiet.stderr)


def test_quiet_watch_and_ws_stats_print_nothing_but_asked_for_json():
    from tacn.pipelines.watch.dev_server import DevWsServer
    from tests.watch_fixtures import SECRET

    with DevWsServer(SECRET, heartbeat_interval=0.1, close_timeout=0.3) as server:
        stats = run("ws-stats", "--api-url", server.api_url, "-q")
        assert stats.exit_code == 0 and stats.stdout == stats.stderr == ""
        loud = run("watch", "--api-url", server.api_url, "--token", server.token(), "--limit", "2", "-v",
                   "--timeout", "30")
        assert loud.exit_code == 0 and loud.stdout.count("HEARTBEAT") == 1  # -v shows heartbeats too
        quiet = run("watch", "--api-url", server.api_url, "--token", server.token(), "--limit", "1", "-q",
                    "--timeout", "30")
        assert quiet.exit_code == 0 and quiet.stdout == quiet.stderr == ""
        asked = run("watch", "--api-url", server.api_url, "--token", server.token(), "--limit", "1", "-q", "--json",
                    "--timeout", "30")
        assert asked.exit_code == 0 and asked.stderr == "" and json.loads(asked.stdout)["type"] == "connected"


def _one_line(result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stdout == "", (result.stdout, result.stderr)
    return lines[0]


def test_quiet_failures_print_one_line_and_the_exit_code(tmp_path, demo_url):
    from tests.test_reconcile import planted

    a, b, _ = planted()
    pd.DataFrame(a).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(b).to_csv(tmp_path / "b.csv", index=False)
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    (tmp_path / "empty.env").write_text("")
    cases = [
        (["validate", "--store", demo_url], 1, "FAIL: 1 rule(s)"),
        (["verify-fix", "--store", demo_url], 1, "NOT FIXED"),
        (["sync", "--source", f"file:{SAMPLE}", "--store", f"sqlite:///{tmp_path / 's.db'}"], 1, "1 rows rejected"),
        (["reconcile", tmp_path / "a.csv", tmp_path / "b.csv"], 1, "disagree"),
        (["stats", "--store", missing], 3, "does not exist"),
        (["validate", "--store", missing], 3, "does not exist"),
        (["migrate", "status", "--store", missing], 3, "does not exist"),
        (["restore", tmp_path / "nope.manifest.json", "--store", demo_url], 3, "nope.manifest.json"),
        (["ws-stats", "--api-url", free_closed_port_url()], 3, "127.0.0.1"),
        (["watch", "--url", free_closed_port_url().replace("http", "ws") + "/api/ws/notifications", "--token",
          "t0123456789", "--retries", "0"], 3, "error:"),
        (["config-check", "--offline", "--env-file", tmp_path / "empty.env"], 1, "MONGODB_HOST"),
        (["stats", "--no-such-option"], 2, "--no-such-option"),
        (["validate", "--severity-threshold", "bogus"], 2, "bogus"),
    ]
    for args, code, words in cases:
        result = run(*args, "-q")
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        line = _one_line(result)
        assert line.startswith("error:") and words in line, (args, line)


def test_quiet_with_json_prints_the_json_and_nothing_else(tmp_path, demo_url):
    result = run("validate", "--store", demo_url, "--json", "-q")
    assert result.exit_code == 1 and result.stderr == ""
    assert json.loads(result.stdout)["verdict"] == "fail"
    failed = run("stats", "--store", f"sqlite:///{tmp_path / 'missing.db'}", "--json", "-q")
    assert failed.exit_code == 3 and len(failed.stderr.splitlines()) == 1
    assert json.loads(failed.stdout)["error"]["exit_code"] == 3


def test_quiet_and_verbose_together_are_a_usage_error(demo_url):
    result = run("stats", "--store", demo_url, "-q", "-v")
    assert result.exit_code == 2 and "contradict" in result.stderr and result.stdout == ""


# -- -v/--verbose -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["stats"], ["validate"], ["verify-fix"], ["clean-invalid-trade-date"], ["migrate", "status"],
])
def test_verbose_adds_lines_on_stderr_only(demo_url, command):
    plain = run(*command, "--store", demo_url)
    verbose = run(*command, "--store", demo_url, "-v")
    assert plain.exit_code == verbose.exit_code
    assert _without_timings(verbose.stdout) == _without_timings(plain.stdout)
    added = [line for line in verbose.stderr.splitlines() if line not in plain.stderr.splitlines()]
    assert any(line.startswith("tacn ") for line in added) and any(line.startswith("done in ") for line in added)
    assert any("connect timeout" in line for line in added)  # the store's resolved settings


def test_verbose_sync_and_validate_time_each_chunk(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    synced = run("sync", "--source", f"file:{SAMPLE}", "--store", url, "-v")
    assert re.search(r"sync: .* of .* \(100%\).*\(akshare_quotes_sample.csv: \+.* in \d+\.\d\d s\)", synced.stderr)
    checked = run("validate", "--store", url, "-v", "--batch-size", "10")
    steps = re.findall(r"validate: (\d+) of 24 records", checked.stderr)
    assert steps == ["10", "20", "24"], checked.stderr


def test_verbose_api_sync_shows_each_http_request_on_stderr_with_its_secret_masked(tmp_path):
    symbols = ("000001", "600000")
    fake = TushareFake({s: synthetic_quotes(s) for s in symbols}, token=TOKEN).start()
    # a proxy-style URL that carries the token as its password: it must never be printed
    host = fake.url.split("://", 1)[1]
    env = {"TUSHARE_TOKEN": TOKEN, "TACN_TUSHARE_URL": f"http://tacn:{TOKEN}@{host}"}
    args = ["sync", "--source", "tushare", "--symbols", ",".join(symbols), "--end", "2025-10-24",
            "--tushare-rate", "100000"]
    try:
        plain = run(*args, "--store", f"sqlite:///{tmp_path / 'plain.db'}", env=env)
        before = len(fake.requests)
        verbose = run(*args, "--store", f"sqlite:///{tmp_path / 'verbose.db'}", "-v", "--json", env=env)
        requests = len(fake.requests) - before
    finally:
        fake.stop()
    assert plain.exit_code == 0 and verbose.exit_code == 0, verbose.stderr
    assert "HTTP 200" not in plain.stderr
    lines = re.findall(r"^POST (\S+): HTTP (\d+) in \d+\.\d\d s \((.+)\)$", verbose.stderr, re.M)
    assert len(lines) == requests >= 2 * len(symbols), verbose.stderr  # one line per request (quotes, factors)
    assert all(url.startswith("http://tacn:***@127.0.0.1:") and status == "200" for url, status, _ in lines), lines
    assert {what.split()[1] for _, _, what in lines} == set(symbols)  # "daily 000001", "adj_factor 600000"
    assert TOKEN not in verbose.stderr and TOKEN not in verbose.stdout
    assert "HTTP 200" not in verbose.stdout and json.loads(verbose.stdout)["status"] == "success"


def _without_timings(text: str) -> str:
    return re.sub(r"\d+\.\d+ ?s\b|duration \(s\)[^\n]*|\d{4}-\d\d-\d\dT[\d:+.]+", "", text)


# -- 80-column tables ---------------------------------------------------------------------------------


@pytest.fixture
def titles(monkeypatch):
    """Every table title a command prints, as built."""
    seen: list[str] = []
    build = render.build_table

    def recording(title, *args, **kwargs):
        if title:
            seen.append(title)
        return build(title, *args, **kwargs)

    monkeypatch.setattr(render, "build_table", recording)
    return seen


def test_every_commands_tables_fit_80_columns_with_one_line_titles(tmp_path, demo_url, clean_url, titles):
    from tests.test_reconcile import planted

    a, b, _ = planted()
    pd.DataFrame(a).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(b).to_csv(tmp_path / "b.csv", index=False)
    commands = [
        *_successes(tmp_path, demo_url, clean_url).values(),
        ["sync", "--source", f"file:{SAMPLE}", "--store", f"sqlite:///{tmp_path / ('long-name-' * 6 + '.db')}", "--dry-run"],
        ["validate", "--store", demo_url, "--freshness", "--completeness", "--volume-units", "akshare=lots"],
        ["stats", "--store", demo_url],
        ["verify-fix", "--store", demo_url, "--symbol", "000001"],
        ["clean-invalid-trade-date", "--store", demo_url],
        ["reconcile", tmp_path / "a.csv", tmp_path / "b.csv"],
        ["repair", "--store", demo_url],
    ]
    for args in commands:
        before = len(titles)
        result = run(*args, env={"COLUMNS": str(WIDTH)})
        assert result.exit_code in (0, 1), (args, result.stderr)
        lines = result.stdout.splitlines()
        too_wide = [line for line in lines if len(line) > WIDTH]
        assert not too_wide, (args, too_wide)
        for title in titles[before:]:
            assert any(title in line for line in lines), (args, title)  # whole, on one line, not cut
    assert len(titles) >= 15


def test_a_title_is_one_line_whole_when_it_fits_and_cut_when_wider_than_the_terminal():
    from io import StringIO

    from rich.console import Console

    def rendered(title: str) -> list[str]:
        console = Console(file=StringIO(), width=WIDTH)
        console.print(render.build_table(title, ["", "count"], [["rows", 1]], caption="details may wrap " * 10))
        return console.file.getvalue().splitlines()

    fits = "sync file:quotes.csv → sqlite:////var/lib/tacn/tacn.db (dry run)"  # wider than the table's columns
    lines = rendered(fits)
    assert lines[0].rstrip() == fits and all(len(line) <= WIDTH for line in lines)
    lines = rendered("sync " + "x" * 120)
    assert lines[0].startswith("sync xxx") and lines[0].rstrip().endswith("…") and lines[1].startswith("┏")
    assert all(len(line) <= WIDTH for line in lines)
