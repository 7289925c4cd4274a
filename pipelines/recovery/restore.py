"""Put the records of a backup back into a store, exactly, ``_id`` included.

Accepts a tacn backup (its manifest checksum is verified first) or any Extended
JSON Lines file of documents such as ``mongoexport`` output (every line is
parsed before anything is written). Putting back is idempotent: documents
already present are left alone, so a second run changes nothing.

A backup of documents that were *replaced* rather than deleted (a sync's
re-base: its manifest says ``"restore_mode": "replace"``) puts the backed-up
values back over the documents with the same ``_id``.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tacn.pipelines.progress import ProgressReport, counted
from tacn.pipelines.recovery.backup import VerifiedBackup, open_backup
from tacn.pipelines.stores.base import QuoteStore


@dataclass
class RestoreResult:
    store: str
    backup: str
    manifest: str | None
    verified_by: str  # how the file was checked before anything was written
    records: int
    inserted: int
    already_present: int
    conflicts: list[dict] = field(default_factory=list)
    replaced: int = 0  # documents given back their backed-up values (a re-base backup)

    @property
    def complete(self) -> bool:
        return not self.conflicts


def restore_backup(store: QuoteStore, path: Path | str | VerifiedBackup, *, lock: Any = None,
                   progress: ProgressReport | None = None) -> RestoreResult:
    """Verify ``path`` and put its documents back. Raises BackupDamaged (nothing written), UsageError or LockHeld.

    ``lock``: the store lock, when the caller already holds it (a migration's down). ``progress``: the
    documents put back so far of the backup's count."""
    from tacn.pipelines.lock import store_lock

    backup = path if isinstance(path, VerifiedBackup) else open_backup(path)
    replaced = 0
    # The sync lock: no sync, clean or repair rewrites a record while it is being put back.
    with nullcontext() if lock is not None else store_lock(store, "sync", "tacn restore"):
        if backup.manifest and backup.manifest.get("restore_mode") == "replace":
            replaced = store.replace_documents(backup.documents())
        put = store.put_documents(counted(backup.documents(), backup.count, progress))
    return RestoreResult(
        store=store.display_url,
        backup=str(backup.data_path),
        manifest=str(backup.manifest_path) if backup.manifest_path else None,
        verified_by="manifest SHA-256, size and count" if backup.manifest else "no manifest: every line parsed",
        records=backup.count,
        inserted=put.inserted,
        already_present=put.already_present,
        conflicts=put.conflicts,
        replaced=replaced,
    )
