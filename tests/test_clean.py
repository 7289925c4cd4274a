"""clean-invalid-trade-date, restore and verify-fix: library on both stores, CLI on SQLite."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.recovery.backup import BackupDamaged, decode_line, encode_document, open_backup
from tacn.pipelines.recovery.clean import clean_invalid_trade_date
from tacn.pipelines.recovery.restore import restore_backup
from tacn.pipelines.recovery.verify import verify_fix
from tacn.pipelines.stores.base import RecordFilter
from tests.clean_fixtures import T0, content_hash, quote, seed

runner = CliRunner()


def test_dry_run_changes_nothing_and_summarises(store, tmp_path):
    good, bad = seed(store)
    before = content_hash(store)
    result = clean_invalid_trade_date(store)
    assert result.dry_run and result.selected == bad and result.deleted == 0 and result.backup is None
    assert content_hash(store) == before
    assert result.by_data_source == {"akshare": bad - 1, "tushare": 1}
    assert result.by_kind["pure_digits"] >= 5 and result.by_kind["missing"] == 3  # "", None, absent
    assert {"other_format", "impossible_date", "out_of_range", "wrong_type"} <= set(result.by_kind)
    assert len(result.samples) == 10 and result.symbols == ["000001", "300750", "600000"]
    pair = next(p for p in result.pairs if (p.symbol, p.data_source) == ("000001", "akshare"))
    assert pair.max_row_number == 17 and pair.updated_last is not None
    assert not list(tmp_path.glob("**/*.jsonl"))


def test_clean_removes_exactly_the_invalid_and_restore_brings_the_store_back(store, tmp_path):
    good, bad = seed(store)
    before = content_hash(store)
    valid_ids = {d["_id"] for d in store.iter_documents()} - {d["_id"] for d in store.iter_invalid_trade_date()}
    result = clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path / "bk", batch_size=4)
    assert (result.selected, result.deleted) == (bad, bad)
    # FerretDB: every record here is stamped long before the clean, so one guarded pass takes them all
    assert result.batches == (1 if getattr(store, "one_pass_deletes", False) else -(-bad // 4))
    assert {d["_id"] for d in store.iter_documents()} == valid_ids and store.count_invalid_trade_date() == 0
    manifest = json.loads(open(result.manifest).read())
    assert manifest["count"] == bad and manifest["state"] == "deleted"
    assert manifest["deleted"] == {"records": bad, "batches": result.batches, "lines_done": bad}
    restored = restore_backup(store, result.manifest)
    assert (restored.inserted, restored.already_present, restored.conflicts) == (bad, 0, [])
    assert content_hash(store) == before
    again = restore_backup(store, result.backup)  # the data file finds its manifest too
    assert (again.inserted, again.already_present) == (0, bad)
    assert content_hash(store) == before


def test_filters_narrow_what_is_cleaned(store, tmp_path):
    seed(store)
    result = clean_invalid_trade_date(store, RecordFilter(data_source="tushare"), apply=True, backup_dir=tmp_path)
    assert result.deleted == 1 and store.count_invalid_trade_date(RecordFilter(data_source="tushare")) == 0
    assert store.count_invalid_trade_date() > 0
    by_symbol = clean_invalid_trade_date(store, RecordFilter(symbols=("600000",)))
    assert by_symbol.symbols == ["600000"]


def test_nothing_to_clean_still_writes_an_empty_complete_backup(store, tmp_path):
    store.upsert([quote()], now=T0)
    result = clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path)
    assert (result.selected, result.deleted, result.batches) == (0, 0, 0)
    assert open_backup(result.manifest).count == 0


def test_backup_lines_are_relaxed_extended_json_mongoimport_can_read(tmp_path):
    from bson import ObjectId

    oid = ObjectId()
    doc = {**quote(), "_id": oid, "trade_date": "0", "volume": 7, "pe": float("nan"), "pb": float("inf")}
    line = encode_document(doc)
    plain = json.loads(line)  # plain JSON: no NaN literals, no Python reprs
    assert plain["_id"] == {"$oid": str(oid)}
    assert plain["created_at"] == {"$date": "2025-10-23T09:00:00Z"}
    assert plain["volume"] == 7 and plain["close"] == 10.5
    assert plain["pe"] == {"$numberDouble": "NaN"} and plain["pb"] == {"$numberDouble": "Infinity"}
    back = decode_line(line)
    assert back["_id"] == oid and type(back["volume"]) is int and back["pe"] != back["pe"]
    assert {k: v for k, v in back.items() if k != "pe"} == {k: v for k, v in doc.items() if k != "pe"}


def test_values_extended_json_cannot_hold_are_tagged_and_come_back():
    doc = {"_id": "text", "trade_date": date(2025, 10, 23), "updated_at": datetime(2025, 10, 23, 9, 0, 0, 123456),
           "created_at": datetime(2025, 10, 23, 9, 0, 0, 123000)}
    line = encode_document(doc)
    plain = json.loads(line)
    assert plain["trade_date"] == {"$tacnDate": "2025-10-23"}
    assert plain["updated_at"] == {"$tacnDatetime": "2025-10-23T09:00:00.123456"}
    assert plain["created_at"] == {"$date": "2025-10-23T09:00:00.123Z"}  # milliseconds: plain Extended JSON
    assert decode_line(line) == doc


def test_mongoexport_canonical_lines_are_read_too():
    line = ('{"_id":{"$oid":"5f1d7a3e8c9b4a0012345678"},"trade_date":"0","volume":{"$numberLong":"7"},'
            '"close":{"$numberDouble":"10.5"},"updated_at":{"$date":{"$numberLong":"1761210000000"}}}')
    doc = decode_line(line)
    assert str(doc["_id"]) == "5f1d7a3e8c9b4a0012345678" and doc["volume"] == 7 and doc["close"] == 10.5
    assert doc["updated_at"] == datetime(2025, 10, 23, 9, 0, 0)


@pytest.fixture
def cleaned_sqlite(tmp_path):
    """A SQLite store cleaned once: (url, manifest path, hash before clean, bad count)."""
    from tacn.pipelines.stores.sqlite import SQLiteStore

    path = tmp_path / "q.db"
    with SQLiteStore(path) as opened:
        _, bad = seed(opened)
        before = content_hash(opened)
        result = clean_invalid_trade_date(opened, apply=True, backup_dir=tmp_path / "bk")
    return f"sqlite:///{path}", result, before, bad


def hash_of(url: str) -> str:
    from tacn.pipelines.stores import open_store

    with open_store(url) as opened:
        return content_hash(opened)


def test_cli_clean_dry_run_yes_restore_and_verify_fix(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    path = tmp_path / "cli.db"
    url = f"sqlite:///{path}"
    with SQLiteStore(path) as opened:
        _, bad = seed(opened)
    before = hash_of(url)
    dry = runner.invoke(app, ["clean-invalid-trade-date", "--store", url, "--json"])
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["selected"] == bad and json.loads(dry.stdout)["dry_run"] is True
    assert hash_of(url) == before
    table = runner.invoke(app, ["clean-invalid-trade-date", "--store", url])
    assert table.exit_code == 0 and "dry run: nothing changed" in table.stdout and "pure_digits" in table.stdout
    assert runner.invoke(app, ["verify-fix", "--store", url, "--dates-only"]).exit_code == 1
    applied = runner.invoke(app, ["clean-invalid-trade-date", "--store", url, "--yes", "--batch-size", "3",
                                  "--backup-dir", str(tmp_path / "bk"), "--json"])
    assert applied.exit_code == 0, applied.stderr
    report = json.loads(applied.stdout)
    assert report["deleted"] == bad and "backed up" in applied.stderr
    verified = runner.invoke(app, ["verify-fix", "--store", url, "--json"])
    assert verified.exit_code == 0, verified.stdout
    assert json.loads(verified.stdout)["invalid_trade_date_total"] == 0
    restored = runner.invoke(app, ["restore", report["manifest"], "--store", url])
    assert restored.exit_code == 0, restored.stderr
    assert hash_of(url) == before
    assert runner.invoke(app, ["restore", report["manifest"], "--store", url]).exit_code == 0
    assert hash_of(url) == before
    assert runner.invoke(app, ["verify-fix", "--store", url]).exit_code == 1


def test_default_backup_dir_is_under_tacn_home(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    path = tmp_path / "d.db"
    with SQLiteStore(path) as opened:
        seed(opened)
    result = runner.invoke(app, ["clean-invalid-trade-date", "--store", f"sqlite:///{path}", "--yes", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["backup"].startswith(str(tmp_path / "tacn-home" / "backups"))


@pytest.mark.parametrize("damage", ["truncate", "alter", "append", "drop_data"])
def test_restore_refuses_a_damaged_backup_and_writes_nothing(cleaned_sqlite, damage):
    url, result, _, _ = cleaned_sqlite
    data = open(result.backup, "rb").read()
    if damage == "truncate":
        open(result.backup, "wb").write(data[: len(data) // 2])
    elif damage == "alter":
        open(result.backup, "wb").write(data.replace(b'"close":20.0', b'"close":21.0', 1))
    elif damage == "append":
        open(result.backup, "ab").write(data.splitlines(keepends=True)[0])
    else:
        import os

        os.unlink(result.backup)
    before = hash_of(url)
    refused = runner.invoke(app, ["restore", result.manifest, "--store", url])
    assert refused.exit_code == 3, refused.stderr
    assert "refusing" in refused.stderr or "missing" in refused.stderr
    assert hash_of(url) == before
    with pytest.raises(BackupDamaged):
        open_backup(result.manifest)


def test_restore_refuses_a_manifest_that_is_not_one(cleaned_sqlite, tmp_path):
    url, result, _, _ = cleaned_sqlite
    open(result.manifest, "w").write("{not json")
    refused = runner.invoke(app, ["restore", result.manifest, "--store", url])
    assert refused.exit_code == 3 and "unreadable" in refused.stderr


def test_restore_accepts_a_plain_extended_json_file_and_says_so(cleaned_sqlite, tmp_path):
    url, result, before, bad = cleaned_sqlite
    plain = tmp_path / "export.json"  # like mongoexport output: no manifest next to it
    plain.write_bytes(open(result.backup, "rb").read())
    restored = runner.invoke(app, ["restore", str(plain), "--store", url, "--json"])
    assert restored.exit_code == 0, restored.stderr
    assert "no tacn manifest" in restored.stderr
    body = json.loads(restored.stdout)
    assert body["inserted"] == bad and body["manifest"] is None
    assert hash_of(url) == before


def test_restore_refuses_a_plain_file_with_a_bad_line_before_writing(cleaned_sqlite, tmp_path):
    url, result, _, _ = cleaned_sqlite
    lines = open(result.backup).read().splitlines()
    plain = tmp_path / "broken.jsonl"
    plain.write_text("\n".join(lines[:3] + ['{"no_id": 1}'] + lines[3:]) + "\n")
    before = hash_of(url)
    refused = runner.invoke(app, ["restore", str(plain), "--store", url])
    assert refused.exit_code == 3 and "line 4" in refused.stderr
    assert hash_of(url) == before


def test_restore_of_a_missing_file_cannot_run(tmp_path):
    result = runner.invoke(app, ["restore", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 3 and "does not exist" in result.stderr


def test_restore_reports_conflicts_with_exit_1(cleaned_sqlite):
    from bson import ObjectId

    from tacn.pipelines.stores import WRITE, open_store

    url, result, _, _ = cleaned_sqlite
    first = decode_line(open(result.backup).readline())
    with open_store(url, mode=WRITE) as opened:  # someone wrote a different record under the same key meanwhile
        opened.put_documents([{**first, "_id": ObjectId(), "close": 1.0}])
    restored = runner.invoke(app, ["restore", result.manifest, "--store", url, "--json"])
    assert restored.exit_code == 1
    assert json.loads(restored.stdout)["conflicts"][0]["reason"] == "another document has the same key"


def test_verify_fix_catches_20251023_which_the_apps_length_check_lets_through(store):
    from bson import ObjectId

    store.upsert([quote(day=d) for d in ("2025-10-21", "2025-10-22")], now=T0)
    store.put_documents([{**quote(), "_id": ObjectId(), "trade_date": "20251023"}])
    assert len("20251023") >= 8  # the application's verify script calls this valid
    result = verify_fix(store, symbol="000001", now=T0 + timedelta(hours=1))
    assert result.invalid_trade_date_total == 1 and not result.ok
    assert result.newest[0]["trade_date"] == "20251023" and result.newest[0]["trade_date_kind"] == "pure_digits"


def test_verify_fix_counts_the_recent_window_and_other_error_rules(store):
    from bson import ObjectId

    old, recent = T0, T0 + timedelta(days=30)
    store.upsert([quote(day="2025-09-01")], now=old)
    store.put_documents([{**quote(day="2025-09-02"), "_id": ObjectId(), "trade_date": "7", "updated_at": old}])
    store.upsert([quote(day="2025-09-03", volume=-1.0)], now=recent)  # fails volume_amount_non_negative
    result = verify_fix(store, since=recent - timedelta(hours=1), now=recent + timedelta(hours=1))
    assert (result.invalid_trade_date_since, result.invalid_trade_date_total) == (0, 1)
    assert (result.failing_other_rules_since, result.failing_other_rules_total) == (1, 1)
    prices = next(r for r in result.rules if r.rule == "volume_amount_non_negative")
    assert (prices.since, prices.total) == (1, 1)
    assert all(r.rule != "trade_date_iso" for r in result.rules)
    dates_only = verify_fix(store, check_rules=False)
    assert dates_only.failing_other_rules_total == 0 and dates_only.rules == []


def test_verify_fix_exit_codes_and_data_source_filter(tmp_path):
    from bson import ObjectId

    from tacn.pipelines.stores.sqlite import SQLiteStore

    path = tmp_path / "v.db"
    url = f"sqlite:///{path}"
    with SQLiteStore(path) as opened:
        opened.upsert([quote(day="2025-09-01"), quote(day="2025-09-01", source="tushare")])
        opened.put_documents([{**quote(source="tushare"), "_id": ObjectId(), "trade_date": "2025/10/23"}])
    assert runner.invoke(app, ["verify-fix", "--store", url, "--data-source", "akshare"]).exit_code == 0
    failing = runner.invoke(app, ["verify-fix", "--store", url, "--symbol", "000001"])
    assert failing.exit_code == 1 and "NOT FIXED" in failing.stdout and "2025/10/23" in failing.stdout


@pytest.mark.parametrize("args", [
    ["clean-invalid-trade-date", "--data-source", "yahoo"],
    ["clean-invalid-trade-date", "--symbols", "1,abc"],
    ["clean-invalid-trade-date", "--batch-size", "0"],
    ["verify-fix", "--since", "yesterday-ish"],
    ["verify-fix", "--symbol", "12345"],
    ["verify-fix", "--symbol", "000001,600000"],
    ["verify-fix", "--data-source", "yahoo"],
    ["clean-invalid-trade-date", "--store", "postgres://x"],
])
def test_bad_input_is_a_usage_error_without_traceback(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout


def test_unreachable_store_exits_3(tmp_path):
    result = runner.invoke(app, ["verify-fix", "--store", f"sqlite:///{tmp_path}"])
    assert result.exit_code == 3 and "directory" in result.stderr


def test_backup_dir_that_is_a_file_is_refused(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    path = tmp_path / "f.db"
    with SQLiteStore(path) as opened:
        seed(opened)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["clean-invalid-trade-date", "--store", f"sqlite:///{path}", "--yes",
                                 "--backup-dir", str(blocker)])
    assert result.exit_code == 2 and "is a file" in result.stderr
    with SQLiteStore(path) as opened:
        assert opened.count_invalid_trade_date() > 0


def test_clean_yes_takes_the_sync_lock_and_refuses_while_a_sync_holds_it(store, tmp_path):
    from tacn.pipelines.errors import LockHeld
    from tacn.pipelines.lock import store_lock

    seed(store)
    before = content_hash(store)
    with store_lock(store, "sync", "a running tacn sync"):
        with pytest.raises(LockHeld):
            clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path / "bk")
        assert clean_invalid_trade_date(store).selected > 0  # a dry run needs no lock
    assert content_hash(store) == before and not (tmp_path / "bk").exists()
    assert clean_invalid_trade_date(store, apply=True, backup_dir=tmp_path / "bk").deleted > 0


def test_a_store_failing_mid_backup_leaves_no_partial_file_and_deletes_nothing(tmp_path):
    from tacn.pipelines.errors import StoreError
    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "s.db") as opened:
        seed(opened)
        before = content_hash(opened)

        def failing(flt=None, **kwargs):
            yield from list(SQLiteStore.iter_invalid_trade_date(opened, flt))[:3]
            raise StoreError("disk I/O error")

        opened.iter_invalid_trade_date = failing
        with pytest.raises(StoreError):
            clean_invalid_trade_date(opened, apply=True, backup_dir=tmp_path / "bk")
        assert list((tmp_path / "bk").iterdir()) == []
        assert content_hash(opened) == before


def test_sqlite_deletes_by_row_only_the_rows_still_holding_the_backed_up_id(tmp_path):
    """The rowid deletes clean uses on SQLite: a row whose _id is no longer the backed-up one is left alone,
    and a rendered selection deletes exactly the backed-up records, odd ones included."""
    from bson import ObjectId

    from tacn.pipelines.recovery.clean import RowKeys, delete_backed_up
    from tacn.pipelines.stores.sqlite import TABLE, SQLiteStore

    with SQLiteStore(tmp_path / "s.db") as opened:
        seed(opened)  # odd records too: non-ObjectId ids, ints, nulls: they go through the encoder
        rows = opened.conn.execute(f"SELECT rid, _id FROM {TABLE} ORDER BY rid LIMIT 3").fetchall()
        assert opened.delete_rows([(rows[0][0], str(ObjectId())), (rows[1][0], rows[1][1])]) == 1
        assert opened.conn.execute(f"SELECT count(*) FROM {TABLE} WHERE rid = ?", (rows[0][0],)).fetchone() == (1,)
        selected, before = opened.count_invalid_trade_date(), content_hash(opened)
        result = clean_invalid_trade_date(opened, apply=True, backup_dir=tmp_path / "bk", batch_size=2)
        assert result.deleted == selected and opened.count_invalid_trade_date() == 0
        assert restore_backup(opened, result.manifest).conflicts == [] and content_hash(opened) == before
        keys = RowKeys()
        keys.extend([rows[2][0]], [rows[2][1]])
        with pytest.raises(BackupDamaged):  # rows and backup lines must match one to one
            delete_backed_up(opened, open_backup_as_backup(result.manifest), 10, keys)


def open_backup_as_backup(manifest_path):
    from pathlib import Path

    from tacn.pipelines.recovery.backup import Backup

    manifest = json.loads(Path(manifest_path).read_text())
    return Backup(Path(manifest_path).with_name(manifest["data_file"]), Path(manifest_path), manifest)
