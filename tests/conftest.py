"""Shared fixtures: the stores every contract test runs against.

SQLite is real. MongoDB runs on mongomock-ng (fast; evaluates queries in Python)
and on FerretDB, a real MongoDB wire-protocol server started once per session
(tests/ferretdb_fixtures.py), and, when TACN_TEST_MONGO_URI is set, against that
server too. A test FerretDB v1 cannot run carries ``@pytest.mark.not_on_ferretdb(
"reason")`` naming what FerretDB lacks; it keeps running on the other kinds.
"""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from hypothesis import settings

# No per-example deadline (a loaded 2-core machine is not a slow test); CI replays the same
# examples every run, so a red CI is reproducible, while developers' runs keep exploring.
settings.register_profile("tacn", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "tacn")

# A pytest started as a background job (`make test &`, nohup) inherits SIGINT ignored, and so would every
# command the tests start: Python installs no KeyboardInterrupt handler for an ignored SIGINT, and the
# tests that press Ctrl-C on a child (exit 130) would see it ignored. A handled SIGINT here resets to the
# default in each child at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

MONGO_URI = os.environ.get("TACN_TEST_MONGO_URI")
MONGO_KINDS = ["mongomock", "ferretdb"] + (["mongodb"] if MONGO_URI else [])
STORE_KINDS = ["sqlite", *MONGO_KINDS]


@pytest.fixture
def sqlite_store(tmp_path):
    """A new SQLite store in the test's own folder."""
    from tacn.pipelines.stores.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "quotes.db")
    yield store
    store.close()


def make_mongomock_store(database: str = "tradingagents"):
    import mongomock_ng

    from tacn.pipelines.stores.mongo import MongoStore

    opened = MongoStore(mongomock_ng.MongoClient(), database, "mongomock://test")
    opened.test_kind = "mongomock"
    return opened


def store_flavour(store) -> str:
    """Which implementation a test store runs on: sqlite, mongomock, ferretdb or mongodb."""
    return getattr(store, "test_kind", store.kind)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """No test reads the developer's ~/.local/share/tacn, ./.env or MongoDB settings."""
    monkeypatch.setenv("TACN_HOME", str(tmp_path / "tacn-home"))
    for name in list(os.environ):
        if name.startswith(("MONGODB_", "TACN_STORE", "REDIS_")) or name in ("TUSHARE_TOKEN", "JWT_SECRET"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def ferretdb(tmp_path_factory):
    """The session's FerretDB server (skipped, or failed under ``make test``, when not built)."""
    from tests.ferretdb_fixtures import start_ferretdb

    server = start_ferretdb(tmp_path_factory.mktemp("ferretdb"))
    yield server
    server.stop()


def fresh_database_name() -> str:
    return f"tacn_test_{uuid.uuid4().hex[:8]}"


def open_test_store(kind: str, request):
    """An empty store: a SQLite file, mongomock, or a database of its own on FerretDB or TACN_TEST_MONGO_URI."""
    if kind == "sqlite":
        from tacn.pipelines.stores.sqlite import SQLiteStore

        return SQLiteStore(request.getfixturevalue("tmp_path") / "store.db")
    if kind == "mongomock":
        return make_mongomock_store()
    from tacn.pipelines.stores.mongo import MongoStore

    if kind == "ferretdb":
        marker = request.node.get_closest_marker("not_on_ferretdb")
        if marker is not None:
            pytest.skip(f"not on FerretDB: {marker.args[0]}")
        url = request.getfixturevalue("ferretdb").url
    else:
        url = MONGO_URI
    opened = MongoStore.from_url(url, database=fresh_database_name())
    opened.test_kind = kind
    return opened


def close_test_store(opened) -> None:
    if opened.kind == "mongodb" and not opened.display_url.startswith("mongomock"):
        opened.client.drop_database(opened.database_name)
    opened.close()


@pytest.fixture(params=STORE_KINDS)
def store(request):
    """An empty store of each kind."""
    opened = open_test_store(request.param, request)
    yield opened
    close_test_store(opened)


@pytest.fixture(params=MONGO_KINDS)
def mongo_store(request):
    """An empty MongoDB store: mongomock, FerretDB, and a real server too when TACN_TEST_MONGO_URI is set."""
    opened = open_test_store(request.param, request)
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
