"""A `tacn migrate up` SIGKILLed mid-way loses nothing: every backup it wrote is recorded before
anything changes, so `down` (after a re-run, or straight away) gives back the store as it was.

The process is stopped at a named point (TACN_TEST_PAUSE_AT): it creates a file and blocks; the
test waits for the file, not for time, then SIGKILLs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.migrations.runner import RECORDS, MigrationContext, migrate_down, migrate_up, status
from tacn.pipelines.stores.sqlite import SQLiteStore
from tests.clean_fixtures import content_hash, run_tacn_until
from tests.test_migrate import LEGACY_FIELDS, seed_old_deployment, unique_index_fields

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60
# (point, the migration the kill interrupts): 0001's backup complete but not yet recorded;
# 0001 after a batch of documents was changed; 0003 after a batch of records was deleted.
POINTS = [("manifest-written", 1), ("migration-batch-written", 1), ("batch-deleted", 3)]


@pytest.fixture
def killed(tmp_path, request):
    point, interrupted = request.param
    store_path = tmp_path / "store.db"
    with SQLiteStore(store_path) as opened:
        seed_old_deployment(opened)
        before = content_hash(opened)
    run_tacn_until(["migrate", "up", "--store", f"sqlite:///{store_path}", "--backup-dir", str(tmp_path / "bk")],
                   point, tmp_path / "ready")
    return store_path, before, interrupted


@pytest.mark.parametrize("killed", POINTS, indirect=True, ids=[p for p, _ in POINTS])
def test_rerun_after_a_kill_then_down_gives_back_every_record(killed, tmp_path):
    store_path, before, interrupted = killed
    shown = CliRunner().invoke(app, ["migrate", "status", "--store", f"sqlite:///{store_path}"])
    assert shown.exit_code == 0 and "interrupted" in shown.stdout and "migrate down" in shown.stderr
    ctx = MigrationContext(backup_dir=tmp_path / "bk")
    with SQLiteStore(store_path) as opened:
        shown = {m.id: m for m in status(opened).migrations}
        assert shown[interrupted].state == "interrupted" and not shown[interrupted].applied
        again = migrate_up(opened, ctx)
        assert again.failed is None and [m.state for m in status(opened).migrations] == ["applied"] * 3
        assert opened.count_invalid_trade_date() == 0
        down = migrate_down(opened, ctx, to=0)
        assert down.failed is None and opened.aux_find(RECORDS) == []
        assert content_hash(opened) == before
        # (the 4-field index is back too: the SQLite store creates it whenever it opens, see 0002)
        assert tuple(LEGACY_FIELDS) in unique_index_fields(opened)


@pytest.mark.parametrize("killed", POINTS, indirect=True, ids=[p for p, _ in POINTS])
def test_down_straight_after_a_kill_reverts_the_partial_run(killed, tmp_path):
    store_path, before, interrupted = killed
    with SQLiteStore(store_path) as opened:
        down = migrate_down(opened, MigrationContext(backup_dir=tmp_path / "bk"), to=0)
        assert down.failed is None and interrupted in [d["id"] for d in down.done]
        assert opened.aux_find(RECORDS) == []
        assert content_hash(opened) == before
