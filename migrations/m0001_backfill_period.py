"""0001: set ``period: "daily"`` on documents that lack it (older deployments).

up backs the documents up first (the same backup machinery as clean), refuses
when a backfilled key would collide with an existing daily record, records the
backup, then replaces each document by ``_id`` with ``period`` added. down puts
the documents of every recorded backup back as they were (``period`` absent or
null again), the oldest last: an interrupted run's backup holds the originals.
"""

from __future__ import annotations

from tacn.pipelines.recovery.backup import open_backup, pause_point, write_backup
from tacn.pipelines.stores.base import RecordFilter

ID = 1
NAME = "backfill period"
DESCRIPTION = 'set period: "daily" on documents that lack it'
DOWN_DESCRIPTION = "put the documents back without period, from the backup up wrote"
FIELD = "period"
BATCH = 1_000
SHOWN = 20


def _collisions(store, docs: list[dict]) -> list[dict]:
    """Keys that would exist twice once the documents say daily."""
    triples: dict[tuple, list] = {}
    for d in docs:
        triples.setdefault((d.get("symbol"), d.get("trade_date"), d.get("data_source")), []).append(d["_id"])
    symbols = {t[0] for t in triples}
    if symbols:
        # By symbol when every one is a text; a null or odd symbol is a key too (null = missing,
        # as in the unique index), and no filter names it: then every daily record is looked at.
        by_symbol = all(isinstance(s, str) for s in symbols)
        flt = RecordFilter(period="daily", symbols=tuple(sorted(symbols)) if by_symbol else None)
        for existing in store.iter_documents(flt):
            ids = triples.get((existing.get("symbol"), existing.get("trade_date"), existing.get("data_source")))
            if ids is not None:
                ids.append(existing["_id"])
    return [{"key": dict(zip(("symbol", "trade_date", "data_source"), t, strict=True)), "ids": [str(i) for i in ids]}
            for t, ids in triples.items() if len(ids) > 1]


def plan(store, ctx) -> str:
    docs = list(store.iter_missing_field(FIELD))
    clashes = _collisions(store, docs)
    note = f"; REFUSES: {len(clashes)} key(s) would collide" if clashes else ""
    return f"would back up and set period=daily on {len(docs):,} document(s){note}"


def up(store, ctx) -> dict:
    from tacn.migrations.runner import MigrationRefused

    docs = list(store.iter_missing_field(FIELD))
    if not docs:
        return {"updated": 0}
    clashes = _collisions(store, docs)
    if clashes:
        listing = "; ".join(f"{c['key']} ids {', '.join(c['ids'])}" for c in clashes[:SHOWN])
        raise MigrationRefused(
            f"{len(clashes)} key(s) would exist twice with period=daily; resolve them first (nothing changed): {listing}"
        )
    backup = write_backup(docs, ctx.backup_dir, label="m0001-backfill-period", store=store.display_url,
                          selection={"predicate": "period missing or null", "filter": {}})
    ctx.record_backup(str(backup.manifest_path))  # before the first change
    updated = _replace_from(store, backup.manifest_path, lambda doc: {**doc, FIELD: "daily"})
    return {"updated": updated, "backup": str(backup.manifest_path)}


def _replace_from(store, backup_path, change) -> int:
    """Replace the documents of a backup, by ``_id``, with ``change(doc)``, in batches."""
    replaced = 0
    batch: list[dict] = []
    for doc in open_backup(backup_path).documents():  # the documents as backed up
        batch.append(change(doc))
        if len(batch) >= BATCH:
            replaced += store.replace_documents(batch)
            batch = []
            pause_point("migration-batch-written")
    if batch:
        replaced += store.replace_documents(batch)
        pause_point("migration-batch-written")
    return replaced


def down(store, ctx, record: dict) -> dict:
    from tacn.migrations.runner import recorded_backups

    reverted = 0
    for backup in reversed(recorded_backups(record)):  # newest first: the oldest, the originals, win
        reverted += _replace_from(store, backup, lambda doc: doc)
    return {"reverted": reverted}
