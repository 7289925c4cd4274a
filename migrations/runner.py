"""Numbered migrations, applied in order, never twice, recorded in ``tacn_migrations``.

A migration is a module ``migrations/mNNNN_name.py`` defining ``ID`` (int),
``NAME``, ``DESCRIPTION`` and three functions:

- ``plan(store, ctx) -> str``: what ``up`` would do (``--dry-run``); changes nothing;
- ``up(store, ctx) -> dict``: apply; the dict (e.g. a backup path) is recorded;
- ``down(store, ctx, record) -> dict``: revert, given the record ``up`` left.

Each migration that ran is a document ``{id, name, state, applied_at, checksum,
details, backups}`` in the store's ``tacn_migrations`` collection (the ``tacn_aux``
table in SQLite); ``checksum`` is the SHA-256 of the migration's source, so a
migration edited after it was applied shows in ``status``. A migration that fails
(or refuses, as 0002 does when duplicates exist) stops the run; those before it
stay applied.

Nothing is lost to a kill: the record is written (``state: running``) before
``up`` starts, and every backup ``up`` writes is added to its ``backups`` *before*
``up`` changes anything (``ctx.record_backup``). A run killed mid-way leaves the
record ``running`` (shown as ``interrupted``); the next ``up`` runs the migration
again and keeps the earlier backups in the record, and ``down`` puts back every
recorded backup, newest first so the oldest (the state before the first run) wins.
Runs hold the store lock, so a ``running`` record seen by a run is an interrupted one.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from tacn.pipelines.errors import TacnError, UsageError
from tacn.pipelines.stores.base import QuoteStore
from tacn.validators.records import utc_now

RECORDS = "tacn_migrations"
STATE_RUNNING = "running"  # written before up starts; still there after a kill
STATE_FAILED = "failed"  # up raised after it had recorded a backup: down can put it back
STATE_APPLIED = "applied"


class MigrationRefused(TacnError):
    """A migration looked at the data and will not proceed (e.g. duplicates): exit 1, data untouched."""

    kind = "migration_refused"


@dataclass
class MigrationContext:
    backup_dir: Path
    now: datetime = field(default_factory=utc_now)
    # Set by the runner around each up: a migration calls it with every backup it writes,
    # after the backup is complete and before the first change it makes.
    record_backup: Callable[[str], None] = field(default=lambda path: None, repr=False)
    lock: Any = field(default=None, repr=False)  # the store lock the runner holds (clean must not take it again)
    # (done, total, unit) while a migration iterates records (tacn.pipelines.progress); None: nobody looks.
    progress: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class Migration:
    id: int
    name: str
    description: str
    checksum: str
    module: ModuleType


@dataclass
class MigrationStatus:
    id: int
    name: str
    applied: bool
    applied_at: datetime | None = None
    checksum_matches: bool | None = None  # None when not applied
    details: dict | None = None
    state: str = "pending"  # pending, applied, interrupted (killed mid-way) or failed
    backups: list[str] = field(default_factory=list)


@dataclass
class MigrateResult:
    store: str
    action: str  # status, up, down
    dry_run: bool = False
    done: list[dict] = field(default_factory=list)  # {id, name, details | plan}
    failed: dict | None = None  # {id, name, error, kind}: kind as in tacn.pipelines.errors
    migrations: list[MigrationStatus] = field(default_factory=list)


def discover() -> list[Migration]:
    """Every ``mNNNN_*`` module of this package, ordered by ID."""
    import tacn.migrations

    found = []
    for info in pkgutil.iter_modules(tacn.migrations.__path__):
        if not (info.name.startswith("m") and info.name[1:5].isdigit()):
            continue
        module = importlib.import_module(f"tacn.migrations.{info.name}")
        source = Path(module.__file__).read_bytes()
        found.append(Migration(module.ID, module.NAME, module.DESCRIPTION, hashlib.sha256(source).hexdigest(), module))
    found.sort(key=lambda m: m.id)
    if len({m.id for m in found}) != len(found):
        raise TacnError("two migrations share an ID")
    return found


def _key(migration_id: int) -> str:
    return f"{migration_id:04d}"


def all_records(store: QuoteStore) -> dict[int, dict]:
    """Every migration record, applied or left by an interrupted or failed run."""
    return {int(doc["id"]): doc for doc in store.aux_find(RECORDS)}


def is_applied(record: dict) -> bool:
    return record.get("state", STATE_APPLIED) == STATE_APPLIED  # records before states existed: applied


def recorded_backups(record: dict) -> list[str]:
    """Every backup a migration's runs wrote (older records name only the last, in details)."""
    backups = list(record.get("backups") or [])
    last = (record.get("details") or {}).get("backup")
    if last and last not in backups:
        backups.append(last)
    return backups


def _state_shown(record: dict | None) -> str:
    if record is None:
        return "pending"
    return {STATE_RUNNING: "interrupted"}.get(record.get("state", STATE_APPLIED), record.get("state", STATE_APPLIED))


def status(store: QuoteStore, migrations: list[Migration] | None = None) -> MigrateResult:
    migrations = migrations if migrations is not None else discover()
    records = all_records(store)
    result = MigrateResult(store.display_url, "status")
    for m in migrations:
        rec = records.get(m.id)
        applied = rec is not None and is_applied(rec)
        result.migrations.append(
            MigrationStatus(m.id, m.name, applied, rec.get("applied_at") if applied else None,
                            (rec.get("checksum") == m.checksum) if applied else None,
                            rec.get("details") if rec else None, _state_shown(rec),
                            recorded_backups(rec) if rec else [])
        )
    return result


def _check_target(to: int | None, migrations: list[Migration]) -> None:
    if to is not None and to != 0 and to not in {m.id for m in migrations}:
        raise UsageError(f"--to {to}: no such migration (known: {', '.join(str(m.id) for m in migrations)}, or 0)")


def migrate_up(store: QuoteStore, ctx: MigrationContext, *, to: int | None = None, dry_run: bool = False,
               migrations: list[Migration] | None = None) -> MigrateResult:
    """Apply the pending migrations with ID <= ``to`` (all when None), in order."""
    migrations = migrations if migrations is not None else discover()
    _check_target(to, migrations)
    result = MigrateResult(store.display_url, "up", dry_run)
    with _run_lock(store, "up", dry_run) as lock:
        records = all_records(store)
        for m in migrations:
            if (m.id in records and is_applied(records[m.id])) or (to is not None and m.id > to):
                continue
            if dry_run:
                try:
                    result.done.append({"id": m.id, "name": m.name, "plan": m.module.plan(store, ctx)})
                except TacnError as exc:
                    result.failed = {"id": m.id, "name": m.name, "error": str(exc), "kind": exc.kind}
                    break
                continue
            record = _start_record(store, m, records.get(m.id))
            ctx.record_backup = lambda path, record=record: _add_backup(store, record, path)
            ctx.lock = lock
            try:
                details = m.module.up(store, ctx) or {}
            except TacnError as exc:
                _end_failed_record(store, record, str(exc))
                result.failed = {"id": m.id, "name": m.name, "error": str(exc), "kind": exc.kind}
                break
            finally:
                ctx.record_backup = lambda path: None
            record.update(state=STATE_APPLIED, applied_at=utc_now(), checksum=m.checksum, details=details)
            store.aux_upsert(RECORDS, _key(m.id), record)
            result.done.append({"id": m.id, "name": m.name, "details": details})
    result.migrations = status(store, migrations).migrations
    return result


def _run_lock(store: QuoteStore, action: str, dry_run: bool):
    """The store lock (the one sync and clean take): no run changes records under a migration."""
    from contextlib import nullcontext

    from tacn.pipelines.lock import store_lock

    return nullcontext(None) if dry_run else store_lock(store, "sync", f"tacn migrate {action}")


def _start_record(store: QuoteStore, m: Migration, previous: dict | None) -> dict:
    """The record of a run about to start, kept backups of an interrupted one included; saved now."""
    record = {"id": m.id, "name": m.name, "state": STATE_RUNNING, "started_at": utc_now(),
              "backups": recorded_backups(previous) if previous else []}
    store.aux_upsert(RECORDS, _key(m.id), record)
    return record


def _add_backup(store: QuoteStore, record: dict, path: str) -> None:
    if path not in record["backups"]:
        record["backups"].append(str(path))
        store.aux_upsert(RECORDS, _key(record["id"]), record)


def _end_failed_record(store: QuoteStore, record: dict, error: str) -> None:
    """A refusal that wrote no backup changed nothing: no record. Otherwise down can put it back."""
    if record["backups"]:
        record.update(state=STATE_FAILED, error=error)
        store.aux_upsert(RECORDS, _key(record["id"]), record)
    else:
        store.aux_delete(RECORDS, _key(record["id"]))


def migrate_down(store: QuoteStore, ctx: MigrationContext, *, to: int | None = None, dry_run: bool = False,
                 migrations: list[Migration] | None = None) -> MigrateResult:
    """Revert applied migrations with ID > ``to``, newest first (only the newest when ``to`` is None).

    A migration whose up was interrupted or failed after writing a backup counts as applied
    here: its down puts back what the partial run changed, from every recorded backup.
    """
    migrations = migrations if migrations is not None else discover()
    _check_target(to, migrations)
    result = MigrateResult(store.display_url, "down", dry_run)
    with _run_lock(store, "down", dry_run) as lock:
        ctx.lock = lock
        records = all_records(store)
        applied = [m for m in reversed(migrations) if m.id in records]
        targets = applied[:1] if to is None else [m for m in applied if m.id > to]
        for m in targets:
            if dry_run:
                result.done.append({"id": m.id, "name": m.name, "plan": f"revert: {m.module.DOWN_DESCRIPTION}"})
                continue
            try:
                details = m.module.down(store, ctx, records[m.id]) or {}
            except TacnError as exc:
                result.failed = {"id": m.id, "name": m.name, "error": str(exc), "kind": exc.kind}
                break
            store.aux_delete(RECORDS, _key(m.id))
            result.done.append({"id": m.id, "name": m.name, "details": details})
    result.migrations = status(store, migrations).migrations
    return result
