"""Numbered migrations, applied in order, never twice, recorded in ``tacn_migrations``.

A migration is a module ``migrations/mNNNN_name.py`` defining ``ID`` (int),
``NAME``, ``DESCRIPTION`` and three functions:

- ``plan(store, ctx) -> str``: what ``up`` would do (``--dry-run``); changes nothing;
- ``up(store, ctx) -> dict``: apply; the dict (e.g. a backup path) is recorded;
- ``down(store, ctx, record) -> dict``: revert, given the record ``up`` left.

Each applied migration is a document ``{id, name, applied_at, checksum, details}``
in the store's ``tacn_migrations`` collection (the ``tacn_aux`` table in SQLite);
``checksum`` is the SHA-256 of the migration's source, so a migration edited
after it was applied shows in ``status``. A migration that fails (or refuses, as
0002 does when duplicates exist) stops the run; those before it stay applied.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType

from pipelines.errors import TacnError, UsageError
from pipelines.stores.base import QuoteStore
from validators.records import utc_now

RECORDS = "tacn_migrations"


class MigrationRefused(TacnError):
    """A migration looked at the data and will not proceed (e.g. duplicates): exit 1, data untouched."""

    exit_code = 1


@dataclass
class MigrationContext:
    backup_dir: Path
    now: datetime = field(default_factory=utc_now)


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


@dataclass
class MigrateResult:
    store: str
    action: str  # status, up, down
    dry_run: bool = False
    done: list[dict] = field(default_factory=list)  # {id, name, details | plan}
    failed: dict | None = None  # {id, name, error, exit_code}
    migrations: list[MigrationStatus] = field(default_factory=list)


def discover() -> list[Migration]:
    """Every ``mNNNN_*`` module of this package, ordered by ID."""
    import migrations

    found = []
    for info in pkgutil.iter_modules(migrations.__path__):
        if not (info.name.startswith("m") and info.name[1:5].isdigit()):
            continue
        module = importlib.import_module(f"migrations.{info.name}")
        source = Path(module.__file__).read_bytes()
        found.append(Migration(module.ID, module.NAME, module.DESCRIPTION, hashlib.sha256(source).hexdigest(), module))
    found.sort(key=lambda m: m.id)
    if len({m.id for m in found}) != len(found):
        raise TacnError("two migrations share an ID")
    return found


def _key(migration_id: int) -> str:
    return f"{migration_id:04d}"


def applied_records(store: QuoteStore) -> dict[int, dict]:
    return {int(doc["id"]): doc for doc in store.aux_find(RECORDS)}


def status(store: QuoteStore, migrations: list[Migration] | None = None) -> MigrateResult:
    migrations = migrations if migrations is not None else discover()
    records = applied_records(store)
    result = MigrateResult(store.display_url, "status")
    for m in migrations:
        rec = records.get(m.id)
        result.migrations.append(
            MigrationStatus(m.id, m.name, rec is not None, rec.get("applied_at") if rec else None,
                            (rec.get("checksum") == m.checksum) if rec else None, rec.get("details") if rec else None)
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
    records = applied_records(store)
    result = MigrateResult(store.display_url, "up", dry_run)
    for m in migrations:
        if m.id in records or (to is not None and m.id > to):
            continue
        try:
            if dry_run:
                result.done.append({"id": m.id, "name": m.name, "plan": m.module.plan(store, ctx)})
                continue
            details = m.module.up(store, ctx) or {}
        except TacnError as exc:
            result.failed = {"id": m.id, "name": m.name, "error": str(exc), "exit_code": exc.exit_code}
            break
        store.aux_upsert(RECORDS, _key(m.id), {"id": m.id, "name": m.name, "applied_at": utc_now(),
                                                "checksum": m.checksum, "details": details})
        result.done.append({"id": m.id, "name": m.name, "details": details})
    result.migrations = status(store, migrations).migrations
    return result


def migrate_down(store: QuoteStore, ctx: MigrationContext, *, to: int | None = None, dry_run: bool = False,
                 migrations: list[Migration] | None = None) -> MigrateResult:
    """Revert applied migrations with ID > ``to``, newest first (only the newest when ``to`` is None)."""
    migrations = migrations if migrations is not None else discover()
    _check_target(to, migrations)
    records = applied_records(store)
    applied = [m for m in reversed(migrations) if m.id in records]
    targets = applied[:1] if to is None else [m for m in applied if m.id > to]
    result = MigrateResult(store.display_url, "down", dry_run)
    for m in targets:
        if dry_run:
            result.done.append({"id": m.id, "name": m.name, "plan": f"revert: {m.module.DOWN_DESCRIPTION}"})
            continue
        try:
            details = m.module.down(store, ctx, records[m.id]) or {}
        except TacnError as exc:
            result.failed = {"id": m.id, "name": m.name, "error": str(exc), "exit_code": exc.exit_code}
            break
        store.aux_delete(RECORDS, _key(m.id))
        result.done.append({"id": m.id, "name": m.name, "details": details})
    result.migrations = status(store, migrations).migrations
    return result
