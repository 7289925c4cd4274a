"""Inputs that are not regular files: FIFOs, pipes, process substitution, /dev/zero.

An env file or a backup may be a stream: it is read once, bounded, and a FIFO that nobody
writes to gives up after the connect timeout (exit 3) instead of hanging. A line over the
per-line limit (not a whole-file limit: backups can be gigabytes) is exit 3 with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bson import ObjectId
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.extjson import encode_document
from tests.clean_fixtures import quote

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def tacn_in_bash(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run a bash command line that calls `tacn` (process substitution needs a shell)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), **env}
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "tacn").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tacn.cli "$@"\n')
    (shim / "tacn").chmod(0o755)
    full_env["PATH"] = f"{shim}:{full_env['PATH']}"
    return subprocess.run(["bash", "-c", script], cwd=tmp_path, env=full_env, capture_output=True, text=True,
                          timeout=120)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("store:", "warning:"))]


def backup_file(tmp_path: Path, count: int = 3) -> tuple[Path, list[dict]]:
    docs = [{**quote(symbol=f"{600000 + i:06d}"), "_id": ObjectId(), "trade_date": str(i)} for i in range(count)]
    path = tmp_path / "export.jsonl"
    path.write_text("".join(encode_document(d) + "\n" for d in docs), encoding="utf-8")
    return path, docs


# -- backups ---------------------------------------------------------------------------------
def test_restore_from_dev_zero_stops_with_exit_3_and_one_line(tmp_path):
    started = time.monotonic()
    result = runner.invoke(app, ["restore", "/dev/zero", "--store", f"sqlite:///{tmp_path / 's.db'}"])
    assert result.exit_code == 3, result.stderr
    (line,) = error_lines(result.stderr)
    assert "/dev/zero" in line and "line 1" in line and "longer than" in line
    assert "MemoryError" not in result.stderr and time.monotonic() - started < 30


def test_a_line_over_the_limit_in_a_regular_backup_is_exit_3(tmp_path, monkeypatch):
    from tacn.pipelines.recovery import backup

    monkeypatch.setattr(backup, "MAX_LINE_BYTES", 2_000)
    path, _ = backup_file(tmp_path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(encode_document({**quote(), "_id": ObjectId(), "pad": "x" * 5_000}) + "\n")
    result = runner.invoke(app, ["restore", str(path), "--store", f"sqlite:///{tmp_path / 's.db'}"])
    assert result.exit_code == 3, result.stderr
    (line,) = error_lines(result.stderr)
    assert "line 4" in line and "longer than 2,000 bytes" in line


def test_restore_reads_a_backup_through_process_substitution(tmp_path):
    path, docs = backup_file(tmp_path)
    db = tmp_path / "s.db"
    result = tacn_in_bash(f"tacn restore <(cat '{path}') --store 'sqlite:///{db}' --json", tmp_path)
    assert result.returncode == 0, result.stderr
    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(db) as store:
        assert sorted(d["_id"] for d in store.iter_documents()) == sorted(d["_id"] for d in docs)


def test_restore_from_a_fifo_nobody_writes_to_gives_up_after_the_connect_timeout(tmp_path):
    fifo = tmp_path / "backup.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = tacn_in_bash(f"tacn restore '{fifo}' --store 'sqlite:///{tmp_path / 's.db'}'", tmp_path,
                          TACN_CONNECT_TIMEOUT="1")
    assert result.returncode == 3, result.stderr
    (line,) = error_lines(result.stderr)
    assert str(fifo) in line and "nothing was written" in line
    assert time.monotonic() - started < 30


# -- env files ---------------------------------------------------------------------------------
def test_config_check_reads_an_env_file_through_process_substitution(tmp_path):
    result = tacn_in_bash("tacn config-check --offline --json --env-file <(printf 'MONGODB_HOST=db.example\\n')",
                          tmp_path)
    assert result.returncode in (0, 1), result.stderr
    import json

    items = {item["name"]: item for item in json.loads(result.stdout)["items"]}
    assert items["MONGODB_HOST"]["value"] == "db.example"


def test_config_check_with_a_fifo_env_file_nobody_writes_to_exits_3(tmp_path):
    fifo = tmp_path / "env.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = tacn_in_bash(f"tacn config-check --offline --env-file '{fifo}'", tmp_path, TACN_CONNECT_TIMEOUT="1")
    assert result.returncode == 3, result.stderr
    (line,) = error_lines(result.stderr)
    assert str(fifo) in line and "nothing was written" in line
    assert time.monotonic() - started < 30


def test_config_check_with_dev_zero_as_env_file_exits_3(tmp_path):
    result = runner.invoke(app, ["config-check", "--offline", "--env-file", "/dev/zero"])
    assert result.exit_code == 3, result.stderr
    (line,) = error_lines(result.stderr)
    assert "/dev/zero" in line and "larger than" in line
