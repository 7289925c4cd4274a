"""0002: replace the legacy unique index on (symbol, trade_date, data_source) with the 4-field one.

The 4-field unique index (symbol, trade_date, data_source, period) is created
first, then the legacy index dropped, so uniqueness never lapses. When records
already share a 4-field key the index cannot be built: up refuses and lists
them instead of dropping data. down recreates the legacy index (refusing when
daily/weekly records of one day would violate it) and drops the 4-field index
if up created it. Note: both stores create the 4-field index again when they
next open (SQLite) or write (MongoDB); that is the application's own index.
"""

from __future__ import annotations

from tacn.validators.records import KEY_FIELDS, LEGACY_UNIQUE_INDEX_NAME, UNIQUE_INDEX_NAME

ID = 2
NAME = "four-field unique index"
DESCRIPTION = "replace the legacy unique index (symbol, trade_date, data_source) with (…, period)"
DOWN_DESCRIPTION = "recreate the legacy 3-field unique index, drop the 4-field one up created"
LEGACY_FIELDS = ("symbol", "trade_date", "data_source")
SHOWN = 20


def _unique_on(store, fields) -> list[str]:
    return [i["name"] for i in store.list_indexes() if i["unique"] and tuple(i["fields"]) == tuple(fields)]


def _refuse_duplicates(store, fields, what: str) -> None:
    from tacn.migrations.runner import MigrationRefused

    duplicates = store.find_duplicate_keys(fields, limit=SHOWN)
    if duplicates:
        listing = "; ".join(
            f"{d['key']} x{d['count']} (_id {', '.join(str(i) for i in d['ids'])})" for d in duplicates
        )
        more = " (first 20 shown)" if len(duplicates) == SHOWN else ""
        raise MigrationRefused(f"cannot create {what}: records share a key{more}; nothing changed. {listing}")


def plan(store, ctx) -> str:
    legacy = _unique_on(store, LEGACY_FIELDS)
    if _unique_on(store, KEY_FIELDS):
        create = "the 4-field unique index exists"
    else:
        duplicates = store.find_duplicate_keys(KEY_FIELDS, limit=SHOWN)
        create = (f"REFUSES: {len(duplicates)}{'+' if len(duplicates) == SHOWN else ''} duplicate key group(s)"
                  if duplicates else f"would create {UNIQUE_INDEX_NAME}")
    drop = f"would drop {', '.join(legacy)}" if legacy else "no legacy index"
    return f"{create}; {drop}"


def up(store, ctx) -> dict:
    created = False
    if not _unique_on(store, KEY_FIELDS):
        _refuse_duplicates(store, KEY_FIELDS, f"unique index {UNIQUE_INDEX_NAME}")
        store.create_unique_index(UNIQUE_INDEX_NAME, KEY_FIELDS)
        created = True
    dropped = _unique_on(store, LEGACY_FIELDS)
    for name in dropped:
        store.drop_index(name)
    return {"created": created, "dropped": dropped}


def down(store, ctx, record: dict) -> dict:
    details = record.get("details") or {}
    recreated = False
    if not _unique_on(store, LEGACY_FIELDS):
        _refuse_duplicates(store, LEGACY_FIELDS, f"legacy unique index {LEGACY_UNIQUE_INDEX_NAME}")
        store.create_unique_index(LEGACY_UNIQUE_INDEX_NAME, LEGACY_FIELDS)
        recreated = True
    dropped = []
    if details.get("created"):
        for name in _unique_on(store, KEY_FIELDS):
            store.drop_index(name)
            dropped.append(name)
    return {"recreated_legacy": recreated, "dropped": dropped}
