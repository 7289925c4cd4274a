"""Shared fixtures: the stores every contract test runs against.

SQLite is real. MongoDB runs through mongomock-ng (no server can be installed
here) and, when TACN_TEST_MONGO_URI is set, against that real server too.
"""

from __future__ import annotations

import os
import uuid

import pytest

MONGO_URI = os.environ.get("TACN_TEST_MONGO_URI")
STORE_KINDS = ["sqlite", "mongomock"] + (["mongodb"] if MONGO_URI else [])


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


@pytest.fixture(params=STORE_KINDS)
def store(request, tmp_path):
    """An empty store of each kind."""
    if request.param == "sqlite":
        from pipelines.stores.sqlite import SQLiteStore

        opened = SQLiteStore(tmp_path / "store.db")
    elif request.param == "mongomock":
        opened = make_mongomock_store()
    else:
        from pipelines.stores.mongo import MongoStore

        opened = MongoStore.from_url(MONGO_URI, database=f"tacn_test_{uuid.uuid4().hex[:8]}")
    yield opened
    if request.param == "mongodb":
        opened.client.drop_database(opened.database_name)
    opened.close()
