"""The CLI's promises to a script or a CI job (issue 11): a gate cannot pass by mistake.

Reading commands never create a store; --min-records; --json error objects; numeric
options and variables checked at parse time; corrupted, foreign, empty and read-only
stores; every failure one line with the documented exit code.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.errors import StoreUnavailable
from tacn.pipelines.stores.base import READ
from tacn.pipelines.stores.sqlite import SQLiteStore
from tests.clean_fixtures import good_documents

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent

READING = {
    "validate": ["validate"],
    "verify-fix": ["verify-fix"],
    "stats": ["stats"],
    "clean (dry run)": ["clean-invalid-trade-date"],
    "sync --status": ["sync", "--status"],
    "migrate status": ["migrate", "status"],
}
CHANGING = {"migrate up": ["migrate", "up"], "clean --yes": ["clean-invalid-trade-date", "--yes"]}


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("store:")]
    assert len(lines) == 1, text
    return lines[0]


# -- reading commands never create a store ---------------------------------------------


@pytest.mark.parametrize("command", [*READING.values(), *CHANGING.values()], ids=[*READING, *CHANGING])
@pytest.mark.parametrize("missing", ["file", "folder"])
def test_a_missing_sqlite_store_is_exit_3_and_is_not_created(tmp_path, command, missing):
    path = tmp_path / ("typo.db" if missing == "file" else "no/such/folder/typo.db")
    result = invoke(*command, "--store", f"sqlite:///{path}")
    assert result.exit_code == 3, result.output
    line = one_line(result.stderr)
    assert str(path) in line and "does not exist" in line
    assert not path.exists() and not path.parent.with_suffix(".lock").exists()
    if missing == "folder":
        assert not (tmp_path / "no").exists()


def test_the_default_store_is_not_created_by_a_reading_command(tmp_path):
    result = invoke("validate")
    assert result.exit_code == 3 and "does not exist" in result.stderr
    assert not (tmp_path / "tacn-home").exists()


def test_only_commands_that_put_data_in_create_a_store_and_say_so(tmp_path):
    path = tmp_path / "new" / "q.db"
    sample = REPO / "examples" / "akshare_quotes_sample.csv"
    result = invoke("sync", "--source", f"file:{sample}", "--store", f"sqlite:///{path}")
    assert result.exit_code in (0, 1), result.stderr  # the sample holds one row sync rejects
    assert path.exists() and "created a new SQLite file" in result.stderr and str(path) in result.stderr
    again = invoke("sync", "--source", f"file:{sample}", "--store", f"sqlite:///{path}")
    assert "created" not in again.stderr  # only the run that created it says so


@pytest.mark.parametrize("missing", ["new/q.db", "q.db"])
def test_a_dry_run_sync_never_creates_a_store(tmp_path, missing):
    path = tmp_path / missing
    sample = REPO / "examples" / "akshare_quotes_sample.csv"
    result = invoke("sync", "--source", f"file:{sample}", "--store", f"sqlite:///{path}", "--dry-run", "--json")
    assert result.exit_code in (0, 1), result.stderr
    assert not path.exists() and not path.parent.joinpath("q.db.lock").exists()
    assert "does not exist: the dry run compares with an empty store" in result.stderr
    payload = json.loads(result.stdout)
    assert payload["dry_run"] is True and payload["rows_fetched"] > 0 and "does not exist yet" in payload["store"]


def test_a_reading_command_leaves_an_existing_store_untouched(tmp_path):
    path = tmp_path / "q.db"
    with SQLiteStore(path) as store:
        store.upsert(good_documents(), now=datetime(2025, 10, 23))
    before = path.read_bytes()
    for command in READING.values():
        assert invoke(*command, "--store", f"sqlite:///{path}").exit_code in (0, 1)
    assert path.read_bytes() == before


def test_mongodb_database_without_the_quotes_collection_names_what_it_has(mongo_store):
    from tacn.pipelines.stores.base import CREATE
    from tacn.pipelines.stores.mongo import MongoStore

    typo = f"{mongo_store.database_name}_typo"
    mongo_store.client[typo]["system_configs"].insert_one({"x": 1})
    try:
        other = MongoStore(mongo_store.client, typo, "mongodb://test")
        with pytest.raises(StoreUnavailable) as caught:
            other._check_quotes_collection(READ)
        message = str(caught.value)
        assert repr(typo) in message and "has no stock_daily_quotes" in message and "system_configs" in message
        other._check_quotes_collection(CREATE)  # sync may create it
        assert other.created
    finally:
        mongo_store.client.drop_database(typo)


# -- a gate that checked nothing ----------------------------------------------------------


@pytest.fixture
def empty_store(tmp_path):
    path = tmp_path / "empty.db"
    SQLiteStore(path).close()
    return f"sqlite:///{path}"


@pytest.mark.parametrize("command", [["validate"], ["verify-fix"]])
def test_a_gate_over_zero_records_says_so_and_min_records_fails_it(empty_store, command):
    plain = invoke(*command, "--store", empty_store)
    assert plain.exit_code == 0
    assert "0 records checked" in plain.stdout.splitlines()[-1]
    as_json = json.loads(invoke(*command, "--store", empty_store, "--json").stdout)
    assert as_json["gate"] == {"records_checked": 0, "min_records": 0, "too_few_records": False,
                               "note": as_json["gate"]["note"]}
    strict = invoke(*command, "--store", empty_store, "--min-records", "1")
    assert strict.exit_code == 1
    assert "FAIL" in strict.stdout.splitlines()[-1] and "--min-records 1" in strict.stdout
    strict_json = json.loads(invoke(*command, "--store", empty_store, "--min-records", "1", "--json").stdout)
    assert strict_json["gate"]["too_few_records"] is True


def test_min_records_passes_when_enough_were_checked(tmp_path):
    path = tmp_path / "q.db"
    with SQLiteStore(path) as store:
        store.upsert(good_documents(), now=datetime(2025, 10, 23))
    result = invoke("validate", "--store", f"sqlite:///{path}", "--min-records", "5", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["gate"]["records_checked"] >= 5


# -- --json errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, exit_code, kind",
    [
        (["stats", "--bogus"], 2, "usage_error"),
        (["validate", "--data-source", "nope"], 2, "usage_error"),
        (["stats", "--store", ""], 2, "usage_error"),
        (["verify-fix", "--since", "99999999d"], 2, "usage_error"),
        (["stats", "--store", "sqlite:///{tmp}/typo.db"], 3, "store_missing"),
        (["validate", "{tmp}/no-such-file.csv"], 3, None),
        (["stats", "--store", "ftp://x"], 2, "usage_error"),
    ],
)
def test_every_exit_2_or_3_with_json_prints_one_error_object(tmp_path, args, exit_code, kind):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = invoke(*args, "--json")
    assert result.exit_code == exit_code, result.output
    payload = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert set(payload) == {"error"} and set(payload["error"]) == {"kind", "message", "exit_code"}
    assert payload["error"]["exit_code"] == exit_code and payload["error"]["message"]
    if kind:
        assert payload["error"]["kind"] == kind
    assert "Traceback" not in result.output


def test_without_json_stdout_stays_empty_on_errors(tmp_path):
    result = invoke("stats", "--store", f"sqlite:///{tmp_path}/typo.db")
    assert result.exit_code == 3 and result.stdout == ""


def test_watch_json_stream_keeps_errors_on_stderr_only():
    result = invoke("watch", "--json", "--bogus")
    assert result.exit_code == 2 and result.stdout == ""


# -- numbers checked at parse time ------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf", "1e9", ""])
def test_a_bad_connect_timeout_is_a_usage_error(empty_store, value):
    result = invoke("stats", "--store", empty_store, env={"TACN_CONNECT_TIMEOUT": value})
    if value == "":  # unset-equivalent: the default
        assert result.exit_code == 0
        return
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert "TACN_CONNECT_TIMEOUT" in line and "unexpected" not in line


@pytest.mark.parametrize(
    "args",
    [
        ["verify-fix", "--since", "99999999d"],
        ["validate", "--since", "999999999999w"],
        ["sync", "--source", "file:x.csv", "--request-timeout", "nan"],
        ["sync", "--source", "file:x.csv", "--request-timeout", "-1"],
        ["sync", "--source", "file:x.csv", "--akshare-interval", "inf"],
        ["sync", "--source", "file:x.csv", "--workers", "0"],
        ["validate", "--batch-size", "0"],
        ["validate", "--min-records", "-1"],
        ["clean-invalid-trade-date", "--batch-size", "0"],
    ],
)
def test_bad_numeric_options_are_usage_errors(args):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "unexpected" not in result.output and "Traceback" not in result.output


# -- corrupted, foreign and empty --store ----------------------------------------------------


def test_a_corrupted_sqlite_file_is_not_a_tacn_store(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(os.urandom(8192))
    for command in (["stats"], ["validate"], ["sync", "--source", f"file:{REPO / 'examples' / 'akshare_quotes_sample.csv'}"]):
        result = invoke(*command, "--store", f"sqlite:///{path}")
        assert result.exit_code == 3, result.output
        line = one_line(result.stderr)
        assert "not a tacn store / corrupted" in line and "file is not a database" in line and str(path) in line


def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    before = path.read_bytes()
    for command in (["stats"], ["sync", "--source", f"file:{REPO / 'examples' / 'akshare_quotes_sample.csv'}"]):
        result = invoke(*command, "--store", f"sqlite:///{path}")
        assert result.exit_code == 3, result.output
        line = one_line(result.stderr)
        assert "not a tacn store" in line and "customers" in line
    assert path.read_bytes() == before


def test_an_empty_store_option_is_a_usage_error_not_the_default(tmp_path):
    for value in ("", "  "):
        result = invoke("validate", "--store", value)
        assert result.exit_code == 2, result.output
        assert "--store is empty" in result.stderr
    assert not (tmp_path / "tacn-home").exists()


# -- a store in a read-only folder can be read --------------------------------------------------


READ_ONLY_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'


def _run_with_read_only_folder(folder: Path, args: list[str]) -> subprocess.CompletedProcess:
    """Run tacn while ``folder`` is read-only: by its mode, or for root (which ignores modes) as a
    read-only bind mount in a private mount namespace."""
    command = [sys.executable, "-m", "tacn.cli", *args]
    if os.geteuid() == 0:
        command = ["unshare", "-m", "sh", "-c", READ_ONLY_MOUNT, "sh", str(folder), *command]
    else:
        folder.chmod(0o555)
    return subprocess.run(command, cwd=folder.parent, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TACN_HOME": str(folder.parent / "home")})


def test_a_store_in_a_read_only_folder_can_be_read(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "q.db"
    with SQLiteStore(path) as store:
        store.upsert(good_documents(), now=datetime(2025, 10, 23))
    probe = _run_with_read_only_folder(folder, ["--version"])
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only folder here: {probe.stderr.strip()[-200:]}")
    try:
        for command in (["stats"], ["validate"], ["verify-fix"], ["clean-invalid-trade-date"]):
            result = _run_with_read_only_folder(folder, [*command, "--json", "--store", f"sqlite:///{path}"])
            assert result.returncode in (0, 1), (command, result.stderr)
            assert "error" not in json.loads(result.stdout)
        stats = _run_with_read_only_folder(folder, ["stats", "--json", "--store", f"sqlite:///{path}"])
        assert json.loads(stats.stdout)["total_records"] == len(good_documents())
        write = _run_with_read_only_folder(folder, ["migrate", "up", "--store", f"sqlite:///{path}"])
        assert write.returncode == 3 and "Traceback" not in write.stderr  # writing there is refused, in one line
    finally:
        folder.chmod(0o755)


def test_a_failed_sync_run_with_json_is_one_object_with_the_error_fields(tmp_path, monkeypatch):
    import tacn.pipelines.sync as sync_module
    from tacn.pipelines.sync import SyncResult

    def failed_run(store, request, progress=None, on_http_call=None):
        return SyncResult(run_id="r1", job="sync-akshare", source="akshare", period="daily", store=store.display_url,
                          dry_run=False, started_at=datetime(2025, 10, 24), status="failed",
                          errors=[{"symbol": None, "error": "AKShare unreachable: connection refused"}])

    monkeypatch.setattr(sync_module, "run_sync", failed_run)
    result = invoke("sync", "--source", "akshare", "--symbols", "000001", "--json",
                    "--store", f"sqlite:///{tmp_path / 'q.db'}")
    assert result.exit_code == 3
    payload = json.loads(result.stdout)  # the run report and the error object's fields, one document
    assert payload["status"] == "failed"
    assert payload["error"] == {"kind": "sync_failed", "message": "AKShare unreachable: connection refused",
                                "exit_code": 3}


def test_restore_into_a_new_store_creates_it_and_says_so(tmp_path):
    from tacn.pipelines.recovery.clean import clean_invalid_trade_date
    from tests.clean_fixtures import seed

    with SQLiteStore(tmp_path / "q.db") as opened:
        _, bad = seed(opened)
        result = clean_invalid_trade_date(opened, apply=True, backup_dir=tmp_path / "bk")
    target = tmp_path / "elsewhere" / "restored.db"
    restored = invoke("restore", result.manifest, "--store", f"sqlite:///{target}")
    assert restored.exit_code == 0, restored.stderr
    assert f"created a new SQLite file {target}" in restored.stderr
    with SQLiteStore(target, mode=READ) as opened:
        assert opened.count() == bad
