"""Crash safety of clean: SIGKILL a real `tacn clean-invalid-trade-date --yes` at several points.

TACN_TEST_PAUSE_AT makes the process create a file at that point and block; the
test waits for the file (not a sleep), SIGKILLs, and checks that nothing was
lost and that restore + clean again ends where one uninterrupted clean ends.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tacn.pipelines.recovery.backup import BackupDamaged, open_backup
from tacn.pipelines.recovery.clean import clean_invalid_trade_date
from tacn.pipelines.recovery.restore import restore_backup
from tacn.pipelines.stores.sqlite import SQLiteStore
from tests.clean_fixtures import T0, content_hash, good_documents, quote, run_tacn_until

ROOT = Path(__file__).resolve().parent.parent
BAD_RECORDS = 1_300  # more than the 1,000 lines after which "backup-writing" pauses
BATCH = 400  # four delete batches
POINTS = ["before-backup", "backup-writing", "backup-written", "manifest-written", "batch-deleted", "progress-recorded"]
READY_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, str, str, dict]:
    """A seeded store file, its hash, the hash after one uninterrupted clean, and its documents by _id."""
    from bson import ObjectId

    base = tmp_path_factory.mktemp("crash-template")
    path = base / "template.db"
    with SQLiteStore(path) as opened:
        opened.upsert(good_documents(), now=T0)
        bad = [{**quote(symbol=f"{600000 + i % 4:06d}", close=10.0 + i), "_id": ObjectId(), "trade_date": str(i // 4)}
               for i in range(BAD_RECORDS)]
        opened.put_documents(bad)
        original = {d["_id"]: d for d in opened.iter_documents()}
        before = content_hash(opened)
    reference = base / "reference.db"
    shutil.copy(path, reference)
    with SQLiteStore(reference) as opened:
        clean_invalid_trade_date(opened, apply=True, backup_dir=base / "reference-backup", batch_size=BATCH)
        after = content_hash(opened)
    return path, before, after, original


def run_until(point: str, store_path: Path, backup_dir: Path, ready: Path) -> None:
    run_tacn_until(["clean-invalid-trade-date", "--yes", "--store", f"sqlite:///{store_path}",
                    "--backup-dir", str(backup_dir), "--batch-size", str(BATCH)], point, ready)


def complete_backups(directory: Path) -> list:
    found = []
    for manifest in sorted(directory.glob("*.manifest.json")):
        try:
            found.append(open_backup(manifest))
        except BackupDamaged:
            pass
    return found


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_any_point_loses_nothing_and_restore_then_clean_converges(template, tmp_path, point):
    path, before, after, original = template
    store_path = tmp_path / "store.db"
    shutil.copy(path, store_path)
    backup_dir = tmp_path / "bk"
    run_until(point, store_path, backup_dir, tmp_path / "ready")

    with SQLiteStore(store_path) as opened:
        remaining = {d["_id"]: d for d in opened.iter_documents()}
        backups = complete_backups(backup_dir) if backup_dir.exists() else []
        backed_up = {d["_id"]: d for b in backups for d in b.documents()}
        missing = set(original) - set(remaining)
        assert missing <= set(backed_up), f"records deleted without a complete backup at {point}"
        for _id in missing:
            assert backed_up[_id] == original[_id]
        for _id, doc in remaining.items():
            assert doc == original[_id]
        if POINTS.index(point) <= POINTS.index("manifest-written"):
            assert not missing  # nothing is deleted before the manifest exists
        else:
            assert missing and len(missing) % BATCH == 0  # whole batches, each one transaction
            (manifest,) = [b.manifest for b in backups]
            assert manifest["state"] == "deleting"
            recorded = manifest["deleted"]["records"]
            assert recorded == (len(missing) if point == "progress-recorded" else len(missing) - BATCH)

        for backup in backups:
            assert restore_backup(opened, backup).conflicts == []
        assert content_hash(opened) == before
        clean_invalid_trade_date(opened, apply=True, backup_dir=tmp_path / "again", batch_size=BATCH)
        assert content_hash(opened) == after
