"""0003: remove records with an invalid trade_date, through clean's backup machinery.

up is ``tacn clean-invalid-trade-date --yes`` over the whole store (backup,
then batched deletes); the backup's manifest is recorded before the first delete.
down restores every backup recorded, those of interrupted runs included.
"""

from __future__ import annotations

from tacn.pipelines.recovery.clean import clean_invalid_trade_date
from tacn.pipelines.recovery.restore import restore_backup

ID = 3
NAME = "remove invalid trade_dates"
DESCRIPTION = "back up, then delete every record whose trade_date is not a valid YYYY-MM-DD date"
DOWN_DESCRIPTION = "restore the removed records from the backup up wrote"


def plan(store, ctx) -> str:
    return f"would back up and delete {store.count_invalid_trade_date():,} record(s) with an invalid trade_date"


def up(store, ctx) -> dict:
    result = clean_invalid_trade_date(store, apply=True, backup_dir=ctx.backup_dir,
                                      label="m0003-remove-invalid-trade-dates", lock=ctx.lock, progress=ctx.progress,
                                      on_backup=lambda backup: ctx.record_backup(str(backup.manifest_path)))
    return {"deleted": result.deleted, "backup": result.manifest}


def down(store, ctx, record: dict) -> dict:
    from tacn.migrations.runner import MigrationRefused, recorded_backups

    restored = already_present = 0
    for backup in reversed(recorded_backups(record)):
        result = restore_backup(store, backup, lock=ctx.lock, progress=ctx.progress)
        if result.conflicts:
            raise MigrationRefused(
                f"{len(result.conflicts):,} record(s) of {backup} could not be put back (another record "
                f"holds their _id or key); {result.inserted:,} were; 0003 stays applied"
            )
        restored += result.inserted
        already_present += result.already_present
    return {"restored": restored, "already_present": already_present}
