"""The library's layering rules: errors carry kinds (only tacn_cli maps them to exit codes),
and every store satisfies the QuoteStore protocol that its callers use."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import tacn.migrations
import tacn.pipelines
from tacn.cli import exit_codes
from tacn.pipelines.errors import TacnError, UsageError

SKIP_MODULES = ("tacn.pipelines.watch.dev_server", "tacn.pipelines.sources.dev_server")  # optional websockets extra


def _library_error_classes() -> list[type[TacnError]]:
    for package in (tacn.pipelines, tacn.migrations):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name not in SKIP_MODULES and not info.name.startswith("tacn.migrations.versions"):
                importlib.import_module(info.name)
    found, todo = [], [TacnError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_library_error_declares_its_json_kind_and_carries_no_exit_code():
    classes = _library_error_classes()
    assert len(classes) >= 15
    for cls in classes:
        assert "kind" in cls.__dict__, cls
        assert cls.kind == re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower(), cls  # the --json kinds of before
        assert not hasattr(cls, "exit_code"), cls


def test_only_the_cli_maps_kinds_to_exit_codes():
    from tacn.migrations.runner import MigrationRefused
    from tacn.pipelines.errors import LockHeld, StoreMissing
    from tacn.pipelines.lock import LockLost

    assert exit_codes.for_error(UsageError("x")) == exit_codes.USAGE == 2
    assert exit_codes.for_error(MigrationRefused("x")) == exit_codes.PROBLEMS_FOUND == 1
    for error in (LockHeld("x"), LockLost("x"), StoreMissing("x"), TacnError("x")):
        assert exit_codes.for_error(error) == exit_codes.CANNOT_RUN == 3
    assert exit_codes.for_kind("migration_refused") == 1 and exit_codes.for_kind("store_error") == 3


def test_an_error_class_without_a_kind_is_refused():
    with pytest.raises(TypeError, match="must declare its kind"):
        type("NoKind", (TacnError,), {})


# -- the QuoteStore protocol ------------------------------------------------------------------------


def _protocol_members() -> dict[str, object]:
    from tacn.pipelines.stores.base import QuoteStore

    methods = {name: value for name, value in vars(QuoteStore).items()
               if callable(value) and (not name.startswith("_") or name in ("__enter__", "__exit__"))}
    attributes = {name: None for name in QuoteStore.__annotations__}
    return {**attributes, **methods}


def _compatible(protocol_fn, store_fn) -> list[str]:
    """Problems calling ``store_fn`` as the protocol says: every protocol parameter accepted the same way."""
    import inspect

    want = inspect.signature(protocol_fn).parameters
    have = inspect.signature(store_fn).parameters
    problems = []
    for name, param in want.items():
        if param.kind is param.VAR_POSITIONAL:
            if not any(p.kind is p.VAR_POSITIONAL for p in have.values()):
                problems.append(f"*{name} missing")
            continue
        other = have.get(name)
        if other is None:
            problems.append(f"{name} missing")
        elif other.kind != param.kind:
            problems.append(f"{name} is {other.kind.description}, not {param.kind.description}")
        elif param.default is not param.empty and other.default != param.default:
            problems.append(f"{name} defaults to {other.default!r}, not {param.default!r}")
    extra = [name for name, p in have.items() if name not in want and p.default is p.empty
             and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    problems += [f"{name} is required but not in the protocol" for name in extra]
    return problems


@pytest.mark.parametrize("store_class", ["sqlite", "mongodb"])
def test_both_stores_have_every_protocol_member_with_a_compatible_signature(store_class, tmp_path):
    from tacn.pipelines.stores.mongo import MongoStore
    from tacn.pipelines.stores.sqlite import SQLiteStore
    from tests.conftest import make_mongomock_store

    cls = {"sqlite": SQLiteStore, "mongodb": MongoStore}[store_class]
    store = SQLiteStore(tmp_path / "q.db") if store_class == "sqlite" else make_mongomock_store()
    members = _protocol_members()
    assert {"aux_upsert", "aux_find", "aux_delete", "replace_documents", "bulk_load", "run_lock",
            "create_unique_index", "drop_index", "list_indexes", "write_guard"} <= set(members)
    try:
        for name, protocol_fn in members.items():
            assert hasattr(store, name), f"{cls.__name__} has no {name}"
            if protocol_fn is not None:
                assert not _compatible(protocol_fn, getattr(cls, name)), (name, _compatible(protocol_fn, getattr(cls, name)))
    finally:
        store.close()


def test_every_store_method_a_caller_uses_is_in_the_protocol():
    """store.<name> in the library, the migrations and the CLI: each is a protocol member (or a
    documented store-specific extra, reached only after checking for it)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    used: set[str] = set()
    for folder in ("pipelines", "migrations", "tacn_cli"):
        for path in (root / folder).rglob("*.py"):
            if path.parent.name == "stores" and path.name in ("sqlite.py", "mongo.py", "mongo_lock.py"):
                continue  # the stores themselves
            used |= set(re.findall(r"\b(?:store|opened)\.([a-z_]+)\b", path.read_text(encoding="utf-8")))
    store_specific = {"path", "database_name", "delete_rows"}  # behind kind checks / renders_backup_lines
    # MongoDB's delete step of clean, behind hasattr(store, "delete_unchanged_by_ids")
    store_specific |= {"delete_unchanged_by_ids", "delete_unchanged_selection", "deletes_in_one_pass"}
    assert used - set(_protocol_members()) - store_specific == set()


def test_sync_retries_and_watch_reconnects_share_one_backoff():
    from tacn.pipelines.sources.calling import SOURCE_JITTER, Backoff, RetryPolicy
    from tacn.pipelines.watch.client import WatchConfig

    watch_backoff = WatchConfig(url="ws://127.0.0.1:1/api/ws/notifications", token="t").backoff
    sync_backoff = RetryPolicy(base=1.0, cap=30.0).backoff
    assert type(watch_backoff) is type(sync_backoff) is Backoff
    assert (watch_backoff.base, watch_backoff.cap, watch_backoff.jitter) == (1.0, 30.0, 0.2)  # watch's documented schedule
    assert sync_backoff == Backoff(1.0, 30.0, SOURCE_JITTER)
    for n in range(1, 9):  # the same ceilings; each delay within [ceiling x (1 - jitter), ceiling]
        assert watch_backoff.ceiling(n) == sync_backoff.ceiling(n)
        for draw in (0.0, 0.5, 0.999):
            assert 0.8 * watch_backoff.ceiling(n) <= watch_backoff.delay(n, lambda d=draw: d) <= watch_backoff.ceiling(n)
            assert 0.5 * sync_backoff.ceiling(n) <= RetryPolicy(base=1.0, cap=30.0).delay(n, "transient", lambda d=draw: d) \
                <= sync_backoff.ceiling(n)
