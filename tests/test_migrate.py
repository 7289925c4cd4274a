"""tacn migrate: each migration up and down on both stores; 0002 refuses on duplicates."""

from __future__ import annotations

import json

import pytest
from bson import ObjectId
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.migrations.runner import RECORDS, MigrationContext, discover, migrate_down, migrate_up, status
from tacn.validators.records import KEY_FIELDS, LEGACY_UNIQUE_INDEX_NAME, UNIQUE_INDEX_NAME
from tests.clean_fixtures import T0, content_hash, quote

LEGACY_FIELDS = ["symbol", "trade_date", "data_source"]
runner = CliRunner()


def make_legacy(store) -> None:
    """An older deployment: the 3-field unique index instead of the 4-field one."""
    if store.kind == "sqlite":  # created on the connection, as an old schema would have it
        store.conn.execute(f"DROP INDEX IF EXISTS {UNIQUE_INDEX_NAME}")
        store.conn.execute(
            f"CREATE UNIQUE INDEX {LEGACY_UNIQUE_INDEX_NAME} ON stock_daily_quotes (symbol, trade_date, data_source)")
    else:
        store.collection.create_index([(f, 1) for f in LEGACY_FIELDS], name=LEGACY_UNIQUE_INDEX_NAME, unique=True)
        store.drop_index(UNIQUE_INDEX_NAME)


def seed_old_deployment(store) -> dict:
    """Valid records, records lacking period, records with invalid trade_dates; legacy index."""
    store.upsert([quote(day=d) for d in ("2025-09-01", "2025-09-02")] + [quote(symbol="600000")], now=T0)
    make_legacy(store)
    lacking = []
    for day in ("2025-08-01", "2025-08-04"):
        d = {**quote(day=day), "_id": ObjectId()}
        del d["period"]
        lacking.append(d)
    lacking.append({**quote(day="2025-08-05"), "_id": ObjectId(), "period": None})
    invalid = [{**quote(symbol="300750", close=20.0 + i), "_id": ObjectId(), "trade_date": str(i)} for i in range(5)]
    invalid.append({**quote(symbol="300750"), "_id": ObjectId(), "trade_date": "20251023"})
    put = store.put_documents(lacking + invalid)
    assert put.inserted == len(lacking) + len(invalid) and not put.conflicts
    return {"lacking": lacking, "invalid": invalid}


def unique_index_fields(store) -> set[tuple]:
    return {tuple(i["fields"]) for i in store.list_indexes() if i["unique"] and i["fields"] != ["_id"]}


@pytest.fixture
def ctx(tmp_path):
    return MigrationContext(backup_dir=tmp_path / "bk")


def test_the_three_migrations_are_discovered_in_order():
    found = discover()
    assert [m.id for m in found] == [1, 2, 3]
    assert all(len(m.checksum) == 64 for m in found)


def test_up_applies_all_in_order_never_twice_and_down_reverts_everything(store, ctx):
    seeded = seed_old_deployment(store)
    before = content_hash(store)
    assert [m.applied for m in status(store).migrations] == [False, False, False]

    result = migrate_up(store, ctx)
    assert [d["id"] for d in result.done] == [1, 2, 3] and result.failed is None
    assert result.done[0]["details"]["updated"] == 3
    assert result.done[1]["details"] == {"created": True, "dropped": [LEGACY_UNIQUE_INDEX_NAME]}
    assert result.done[2]["details"]["deleted"] == len(seeded["invalid"])
    assert list(store.iter_missing_field("period")) == []
    assert unique_index_fields(store) == {KEY_FIELDS}
    assert store.count_invalid_trade_date() == 0
    records = store.aux_find(RECORDS)
    assert [(r["id"], r["name"]) for r in records] == [(m.id, m.name) for m in discover()]
    assert all(r["checksum"] == m.checksum and r["applied_at"] for r, m in zip(records, discover(), strict=True))

    again = migrate_up(store, ctx)
    assert again.done == [] and again.failed is None

    down = migrate_down(store, ctx, to=0)
    assert [d["id"] for d in down.done] == [3, 2, 1] and down.failed is None
    assert store.aux_find(RECORDS) == []
    assert unique_index_fields(store) == {tuple(LEGACY_FIELDS)}
    assert content_hash(store) == before


def test_each_migration_up_and_down_on_its_own(store, ctx):
    seed_old_deployment(store)
    before = content_hash(store)
    assert [d["id"] for d in migrate_up(store, ctx, to=1).done] == [1]
    assert sorted(m.applied for m in status(store).migrations) == [False, False, True]
    assert {d.get("period") for d in store.iter_documents()} == {"daily"}
    assert [d["id"] for d in migrate_down(store, ctx).done] == [1]  # down: only the newest
    assert content_hash(store) == before

    migrate_up(store, ctx, to=2)
    assert unique_index_fields(store) == {KEY_FIELDS}
    assert [d["id"] for d in migrate_down(store, ctx).done] == [2]
    assert unique_index_fields(store) == {tuple(LEGACY_FIELDS)}

    migrate_up(store, ctx)
    assert store.count_invalid_trade_date() == 0
    assert [d["id"] for d in migrate_down(store, ctx).done] == [3]
    assert store.count_invalid_trade_date() == 6
    assert [m.applied for m in status(store).migrations] == [True, True, False]


def test_0002_refuses_and_lists_duplicates_leaving_earlier_migrations_applied(store, ctx):
    store.upsert([quote()], now=T0)
    store.drop_index(UNIQUE_INDEX_NAME)  # the maintenance script dropped it; duplicates crept in
    twin = {**quote(close=99.0), "_id": ObjectId()}
    store.put_documents([twin])
    result = migrate_up(store, ctx)
    assert [d["id"] for d in result.done] == [1]
    assert result.failed["id"] == 2 and result.failed["kind"] == "migration_refused"
    assert str(twin["_id"]) in result.failed["error"] and "000001" in result.failed["error"]
    assert [m.applied for m in status(store).migrations] == [True, False, False]
    assert store.count() == 2  # nothing dropped
    assert KEY_FIELDS not in unique_index_fields(store)
    dry = migrate_up(store, ctx, dry_run=True)
    assert "REFUSES" in dry.done[0]["plan"]


def test_0001_refuses_when_a_backfilled_key_would_collide(store, ctx):
    store.upsert([quote()], now=T0)
    lacking = {**quote(close=1.0), "_id": ObjectId()}
    del lacking["period"]
    store.put_documents([lacking])
    result = migrate_up(store, ctx)
    assert result.done == [] and result.failed["id"] == 1 and str(lacking["_id"]) in result.failed["error"]
    assert len(list(store.iter_missing_field("period"))) == 1


def test_dry_run_changes_nothing(store, ctx):
    seed_old_deployment(store)
    before = content_hash(store)
    result = migrate_up(store, ctx, dry_run=True)
    assert [d["id"] for d in result.done] == [1, 2, 3] and all("plan" in d for d in result.done)
    assert "3 document(s)" in result.done[0]["plan"] and "6 record(s)" in result.done[2]["plan"]
    assert content_hash(store) == before and store.aux_find(RECORDS) == []
    assert not ctx.backup_dir.exists()


def test_status_shows_a_migration_changed_since_it_was_applied(store, ctx):
    migrate_up(store, ctx, to=1)
    (record,) = store.aux_find(RECORDS)
    store.aux_upsert(RECORDS, "0001", {**record, "checksum": "0" * 64})
    assert [m.checksum_matches for m in status(store).migrations] == [False, None, None]


def test_cli_migrate_status_up_down(tmp_path):
    from tacn.pipelines.stores.sqlite import SQLiteStore

    path = tmp_path / "m.db"
    url = f"sqlite:///{path}"
    with SQLiteStore(path) as opened:
        seed_old_deployment(opened)
    shown = runner.invoke(app, ["migrate", "status", "--store", url, "--json"])
    assert shown.exit_code == 0, shown.stderr
    assert [m["applied"] for m in json.loads(shown.stdout)["migrations"]] == [False, False, False]
    dry = runner.invoke(app, ["migrate", "up", "--dry-run", "--store", url])
    assert dry.exit_code == 0 and "would back up" in dry.stdout
    up = runner.invoke(app, ["migrate", "up", "--store", url, "--backup-dir", str(tmp_path / "bk")])
    assert up.exit_code == 0, up.stderr
    assert "0003 remove invalid trade_dates: applied" in up.stdout
    assert runner.invoke(app, ["migrate", "up", "--store", url]).stdout.startswith("nothing to do")
    down = runner.invoke(app, ["migrate", "down", "--to", "2", "--store", url, "--json"])
    assert down.exit_code == 0 and [d["id"] for d in json.loads(down.stdout)["done"]] == [3]
    with SQLiteStore(path) as opened:
        assert opened.count_invalid_trade_date() == 6


@pytest.mark.parametrize("args", [["migrate", "sideways"], ["migrate", "up", "--to", "9"], ["migrate", "up", "--to", "-1"]])
def test_cli_migrate_bad_input_is_a_usage_error(args, tmp_path):
    result = runner.invoke(app, [*args, "--store", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2, result.stderr
