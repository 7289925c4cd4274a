"""Shared fixtures: the stores every contract test runs against.

SQLite is real. MongoDB runs through mongomock-ng (no server can be installed
here) and, when TACN_TEST_MONGO_URI is set, against that real server too.
"""

from __future__ import annotations

import os
import uuid

import pytest

MONGO_URI = os.environ.get("TACN_TEST_MONGO_URI")
MONGO_KINDS = ["mongomock"] + (["mongodb"] if MONGO_URI else [])
STORE_KINDS = ["sqlite", *MONGO_KINDS]


def make_mongomock_store(database: str = "tradingagents"):
    import mongomock_ng

    from pipelines.stores.mongo import MongoStore

    return MongoStore(mongomock_ng.MongoClient(), database, "mongomock://test")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """No test reads the developer's ~/.local/share/tacn, ./.env or MongoDB settings."""
    monkeypatch.setenv("TACN_HOME", str(tmp_path / "tacn-home"))
    for name in list(os.environ):
        if name.startswith(("MONGODB_", "TACN_STORE", "REDIS_")) or name in ("TUSHARE_TOKEN", "JWT_SECRET"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def open_test_store(kind: str, tmp_path):
    """An empty store: a SQLite file, mongomock, or a throw-away database on TACN_TEST_MONGO_URI."""
    if kind == "sqlite":
        from pipelines.stores.sqlite import SQLiteStore

        return SQLiteStore(tmp_path / "store.db")
    if kind == "mongomock":
        return make_mongomock_store()
    from pipelines.stores.mongo import MongoStore

    return MongoStore.from_url(MONGO_URI, database=f"tacn_test_{uuid.uuid4().hex[:8]}")


def close_test_store(opened) -> None:
    if opened.kind == "mongodb" and not opened.display_url.startswith("mongomock"):
        opened.client.drop_database(opened.database_name)
    opened.close()


@pytest.fixture(params=STORE_KINDS)
def store(request, tmp_path):
    """An empty store of each kind."""
    opened = open_test_store(request.param, tmp_path)
    yield opened
    close_test_store(opened)


@pytest.fixture(params=MONGO_KINDS)
def mongo_store(request, tmp_path):
    """An empty MongoDB store: mongomock, and a real server too when TACN_TEST_MONGO_URI is set."""
    opened = open_test_store(request.param, tmp_path)
    yield opened
    close_test_store(opened)


def pytest_sessionfinish(session, exitstatus):
    """Drop pandera's weakrefs to validated frames before interpreter shutdown.

    Their callbacks would otherwise run after pandera's module globals are gone and
    print "Exception ignored … AttributeError" after pytest's summary line.
    """
    import sys

    registry = sys.modules.get("pandera.accessors._schema_registry")
    if registry is not None:
        registry._refs.clear()
        registry._reg.clear()
