"""The CLI conventions: exit codes, --json, stderr diagnostics, masking, fast start."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tacn.cli.app import app

runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, list(args), env=env)


@pytest.fixture
def demo_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo-explicit.db'}"
    result = run("demo", "--store", url, "--json")
    assert result.exit_code == 0, result.stderr
    return url, json.loads(result.stdout)


def test_demo_seeds_the_bug_and_stats_reports_it(demo_store):
    url, seeded = demo_store
    assert seeded["synthetic"] is True
    assert seeded["symbols"] == 20 and seeded["bad_records"] == 3000
    result = run("stats", "--store", url, "--json")
    assert result.exit_code == 0
    stats = json.loads(result.stdout)  # stdout holds only JSON
    assert stats["total_records"] == seeded["good_records"] + seeded["bad_records"]
    assert stats["invalid_trade_date"] == 3000
    assert "store: sqlite:///" in result.stderr


def test_demo_default_goes_to_its_own_file_and_is_deterministic(tmp_path):
    first = run("demo", "--json")
    second = run("demo", "--json")
    assert first.exit_code == second.exit_code == 0
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a == b and a["upsert"]["inserted"] == a["good_records"] + a["bad_records"]
    assert a["store"].endswith("tacn-home/demo.db")
    assert not (tmp_path / "tacn-home" / "tacn.db").exists()  # the configured store is untouched


def test_stats_table_on_stdout_and_store_line_on_stderr(demo_store):
    url, _ = demo_store
    result = run("stats", "--store", url)
    assert result.exit_code == 0
    assert "akshare" in result.stdout and "3,000 with an invalid trade_date" in result.stdout
    assert "store:" not in result.stdout


def test_store_from_tacn_store_env(demo_store):
    url, _ = demo_store
    result = run("stats", "--json", env={"TACN_STORE": url})
    assert result.exit_code == 0 and "from TACN_STORE (environment)" in result.stderr


def test_store_from_dotenv_file(demo_store, tmp_path):
    url, _ = demo_store
    (tmp_path / ".env").write_text(f"TACN_STORE={url}\n")
    result = run("stats", "--json")
    assert result.exit_code == 0 and "from TACN_STORE (.env)" in result.stderr


@pytest.mark.parametrize("url", ["postgres://x/y", "sqlite:///", "mongodb://host:notaport/db", "sqlite:/x.db"])
def test_bad_store_url_is_a_usage_error(url):
    result = run("stats", "--store", url)
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr and "error:" in result.stderr


def test_store_path_that_is_a_directory_cannot_run(tmp_path):
    result = run("stats", "--store", f"sqlite:///{tmp_path}")
    assert result.exit_code == 3 and "is a directory" in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_mongodb_exits_3_without_the_password():
    url = f"mongodb://ops:Sup3rSecretPw@127.0.0.1:{free_port()}/tradingagents"
    result = run("stats", "--store", url, env={"TACN_CONNECT_TIMEOUT": "0.3"})
    assert result.exit_code == 3
    assert "cannot reach MongoDB" in result.stderr
    assert "Sup3rSecretPw" not in result.stderr + result.stdout
    assert "ops:***@" in result.stderr


def test_mongodb_url_built_from_the_apps_variables(tmp_path):
    env = {"MONGODB_HOST": "127.0.0.1", "MONGODB_PORT": str(free_port()), "MONGODB_USERNAME": "admin",
           "MONGODB_PASSWORD": "p@ss:w0rd/!", "MONGODB_DATABASE": "other", "TACN_CONNECT_TIMEOUT": "0.3"}
    result = run("stats", env=env)
    assert result.exit_code == 3
    assert "from MONGODB_* (environment)" in result.stderr
    assert "'tradingagents'" in result.stderr  # the app writes quotes there whatever MONGODB_DATABASE says
    assert "p@ss" not in result.stderr and "p%40ss" not in result.stderr


def test_unknown_option_is_exit_2():
    result = run("stats", "--bogus")
    assert result.exit_code == 2


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("tacn ")


def test_real_subprocess_help_imports_nothing_heavy():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tacn.cli", "--help"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0 and "Usage: tacn" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    for heavy in ("pandas", "pymongo", "akshare", "tushare", "numpy", "pandera", "pyarrow", "pymongoarrow"):
        assert heavy not in imported, heavy


def test_real_subprocess_console_script(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    env = {**os.environ, "TACN_HOME": str(tmp_path)}
    seeded = subprocess.run([exe, "demo", "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert seeded.returncode == 0, seeded.stderr
    stats = subprocess.run([exe, "stats", "--json", "--store", f"sqlite:///{tmp_path / 'demo.db'}"],
                           capture_output=True, text=True, timeout=60, env=env)
    assert stats.returncode == 0 and json.loads(stats.stdout)["invalid_trade_date"] == 3000
