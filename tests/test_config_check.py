"""tacn config-check: sources and precedence, rules, live MongoDB/Redis checks, exit codes, no secret leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.config import live_checks
from tacn.pipelines.config.check import run_config_check
from tests.redis_fixtures import free_port, running_redis

runner = CliRunner()
REDIS_TEST_PASSWORD = "RedisPw-7c1f0e9a2b4d"
REPO = Path(__file__).resolve().parent.parent

# Every secret a test uses: none may ever appear whole in stdout or stderr.
JWT = "jwt-Secret-9f8e7d6c5b4a3210"
DEEPSEEK_ENV = "sk-envDeepseek-11112222333344445555"
DEEPSEEK_FILE = "sk-fileDeepseek-66667777888899990000"
DEEPSEEK_DB = "sk-dbDeepseek-aaaabbbbccccdddd"
DASHSCOPE = "sk-dashscope-eeeeffff00001111"
TUSHARE_ENV = "envTushareToken-0123456789abcdef"
TUSHARE_DB = "dbTushareToken-fedcba9876543210"
FINNHUB_DB = "dbFinnhubKey-13579246801357"
MONGO_PASSWORD = "MongoPw-s3cr3t-4b2d"
SECRETS = [JWT, DEEPSEEK_ENV, DEEPSEEK_FILE, DEEPSEEK_DB, DASHSCOPE, TUSHARE_ENV, TUSHARE_DB, FINNHUB_DB,
           MONGO_PASSWORD, REDIS_TEST_PASSWORD, "Wrong-" + REDIS_TEST_PASSWORD]

VALID_ENV = {
    "MONGODB_HOST": "127.0.0.1",
    "MONGODB_PORT": "27017",
    "MONGODB_DATABASE": "tradingagents",
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
    "JWT_SECRET": JWT,
    "DEEPSEEK_API_KEY": DEEPSEEK_ENV,
    "DASHSCOPE_API_KEY": DASHSCOPE,
    "TUSHARE_TOKEN": TUSHARE_ENV,
    "CSRF_SECRET": "csrf-" + JWT,
}


@pytest.fixture(autouse=True)
def _no_configuration_from_the_machine(monkeypatch):
    """Only what a test sets is configured (conftest already clears MONGODB_*/REDIS_*)."""
    from tacn.validators.config_rules import ITEMS

    for name in [item.name for item in ITEMS] + ["TACN_CONNECT_TIMEOUT"]:
        monkeypatch.delenv(name, raising=False)


def invoke(*args, env=None):
    result = runner.invoke(app, ["config-check", *args], env=env)
    assert_no_secret(result.stdout + result.stderr)
    assert "Traceback" not in result.stderr
    return result


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret[:6]}… leaked"


def items(payload: dict) -> dict:
    return {item["name"]: item for item in payload["items"]}


def checks(payload: dict) -> dict:
    return {(c["service"], c["check"]): c for c in payload["live_checks"]}


def write_env(path: Path, values: dict) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


# -- offline: sources, rules, exit codes -----------------------------------------------


def test_valid_environment_passes_offline_and_masks_every_secret():
    result = invoke("--offline", "--json", env=VALID_ENV)
    assert result.exit_code == 0, result.stdout
    payload = json.loads(result.stdout)
    found = items(payload)
    assert payload["summary"] == {"errors": 0, "warnings": 0}
    assert found["JWT_SECRET"]["value"] == f"***{JWT[-4:]} ({len(JWT)} chars)"
    assert found["JWT_SECRET"]["source"] == "environment" and found["JWT_SECRET"]["set"] is True
    assert found["MONGODB_HOST"]["value"] == "127.0.0.1"  # not a secret: shown whole
    assert found["FINNHUB_API_KEY"]["status"] == "info" and found["FINNHUB_API_KEY"]["set"] is False
    assert {c["status"] for c in payload["live_checks"]} == {"skipped"}
    assert payload["database_values"] == "not read (--offline)"


def test_nothing_configured_fails_on_every_required_item():
    result = invoke("--offline", "--json", env={})
    assert result.exit_code == 1
    found = items(json.loads(result.stdout))
    for name in ("MONGODB_HOST", "MONGODB_PORT", "MONGODB_DATABASE", "REDIS_HOST", "REDIS_PORT", "JWT_SECRET"):
        assert found[name]["status"] == "error" and found[name]["source"] == "default", name
        assert "missing" in found[name]["message"]
    assert found["MONGODB_HOST"]["value"] == "localhost"  # what the application would fall back to
    assert found["JWT_SECRET"]["value"] == "(built-in default)"
    for name in ("DEEPSEEK_API_KEY", "DASHSCOPE_API_KEY", "TUSHARE_TOKEN"):
        assert found[name]["status"] == "warning" and found[name]["message"] == "not set"


@pytest.mark.parametrize(
    "placeholder",
    ["", "short-key", "your_tushare_token_value", "your-tushare-token-value", "tushare_token_here",
     "tushare-token-here", "abcdef...uvwxyz123", "'   '"],
)
def test_placeholder_keys_count_as_missing(placeholder):
    env = {**VALID_ENV, "TUSHARE_TOKEN": placeholder}
    result = invoke("--offline", "--json", env=env)
    assert result.exit_code == 0  # a recommended key missing is a warning
    tushare = items(json.loads(result.stdout))["TUSHARE_TOKEN"]
    assert tushare["status"] == "warning" and tushare["set"] is False
    strict = invoke("--offline", "--strict", env=env)
    assert strict.exit_code == 1 and "TUSHARE_TOKEN" in strict.stdout


@pytest.mark.parametrize("port", ["abc", "0", "65536", "27017.5", "-1"])
def test_bad_port_is_an_error(port):
    result = invoke("--offline", "--json", env={**VALID_ENV, "MONGODB_PORT": port, "REDIS_PORT": port})
    assert result.exit_code == 1
    found = items(json.loads(result.stdout))
    assert found["MONGODB_PORT"]["status"] == found["REDIS_PORT"]["status"] == "error"
    assert "1 and 65535" in found["MONGODB_PORT"]["message"]


@pytest.mark.parametrize("secret", ["change-me-in-production", "your-super-secret-jwt-key-change-in-production",
                                    "fifteen-chars15"])
def test_weak_jwt_secret_is_an_error(secret):
    result = invoke("--offline", "--json", env={**VALID_ENV, "JWT_SECRET": secret})
    assert result.exit_code == 1
    jwt = items(json.loads(result.stdout))["JWT_SECRET"]
    assert jwt["status"] == "error"
    assert secret not in result.stdout + result.stderr


def test_default_csrf_secret_and_other_database_are_warnings():
    env = {**VALID_ENV, "CSRF_SECRET": "change-me-csrf-secret", "MONGODB_DATABASE": "ta_prod"}
    result = invoke("--offline", "--json", env=env)
    assert result.exit_code == 0
    found = items(json.loads(result.stdout))
    assert found["CSRF_SECRET"]["status"] == "warning" and "known default" in found["CSRF_SECRET"]["message"]
    assert found["MONGODB_DATABASE"]["status"] == "warning"
    assert "'tradingagents'" in found["MONGODB_DATABASE"]["message"]
    assert invoke("--offline", "--strict", env=env).exit_code == 1


def test_siliconflow_enabled_without_a_key_warns():
    env = {**VALID_ENV, "SILICONFLOW_ENABLED": "true", "SILICONFLOW_BASE_URL": "api.example"}
    found = items(json.loads(invoke("--offline", "--json", env=env).stdout))
    assert found["SILICONFLOW_ENABLED"]["status"] == "warning"
    assert found["SILICONFLOW_BASE_URL"]["status"] == "warning"
    assert found["SILICONFLOW_API_KEY"]["status"] == "info"


def test_environment_beats_dotenv_and_the_conflict_is_reported(tmp_path):
    write_env(tmp_path / ".env", {**VALID_ENV, "DEEPSEEK_API_KEY": DEEPSEEK_FILE, "REDIS_HOST": "redis.internal"})
    env = {"DEEPSEEK_API_KEY": DEEPSEEK_ENV, "REDIS_HOST": "10.0.0.5"}
    result = invoke("--offline", "--json", env=env)  # default ./.env (the tests run in tmp_path)
    assert result.exit_code == 0, result.stdout
    payload = json.loads(result.stdout)
    assert payload["env_file_found"] is True
    found = items(payload)
    deepseek = found["DEEPSEEK_API_KEY"]
    assert deepseek["source"] == "environment" and deepseek["disagree"] is True
    assert set(deepseek["sources"]) == {"environment", ".env"}
    assert deepseek["value"].startswith(f"***{DEEPSEEK_ENV[-4:]}")
    assert "environment wins over .env" in deepseek["message"]
    assert found["REDIS_HOST"]["value"] == "10.0.0.5" and found["REDIS_HOST"]["disagree"] is True
    assert found["JWT_SECRET"]["source"] == ".env" and found["JWT_SECRET"]["disagree"] is False


def test_table_output_groups_items_and_states_the_precedence(tmp_path):
    env_file = write_env(tmp_path / "app.env", VALID_ENV)
    result = invoke("--offline", "--env-file", str(env_file), env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for heading in ("Required", "Recommended", "Optional", "Live checks"):
        assert heading in result.stdout
    assert "database > environment > .env" in result.stdout  # data-source keys
    assert "environment > .env > database" in result.stdout  # LLM keys
    assert "0 error(s), 0 warning(s)" in result.stdout
    assert "env file:" in result.stderr and "env file:" not in result.stdout


def test_missing_or_unreadable_env_file_cannot_run(tmp_path):
    missing = invoke("--offline", "--env-file", str(tmp_path / "nope.env"))
    assert missing.exit_code == 3 and "does not exist" in missing.stderr
    directory = invoke("--offline", "--env-file", str(tmp_path))
    assert directory.exit_code == 3 and "is a directory" in directory.stderr
    binary = tmp_path / "binary.env"
    binary.write_bytes(b"\xff\xfe\x00JWT_SECRET=\x80\x81\n")
    unreadable = invoke("--offline", "--env-file", str(binary))
    assert unreadable.exit_code == 3 and "cannot read env file" in unreadable.stderr


def test_bad_options_are_usage_errors():
    assert invoke("--store", "sqlite:///x.db", env=VALID_ENV).exit_code == 2
    bad_timeout = invoke(env={**VALID_ENV, "TACN_CONNECT_TIMEOUT": "soon"})
    assert bad_timeout.exit_code == 2 and "TACN_CONNECT_TIMEOUT" in bad_timeout.stderr


def test_shipped_demo_env_passes_offline_with_warnings():
    demo_env = REPO / "examples" / "demo.env"
    result = invoke("--offline", "--json", "--env-file", str(demo_env), env={})
    assert result.exit_code == 0, result.stdout
    payload = json.loads(result.stdout)
    assert payload["summary"]["errors"] == 0 and payload["summary"]["warnings"] == 2  # DashScope, Tushare
    assert invoke("--offline", "--strict", "--env-file", str(demo_env), env={}).exit_code == 1
    assert "demo-mongo-password-0000" not in result.stdout + result.stderr


# -- the database as a source: precedence per item (mongomock) -----------------------------------


@pytest.fixture
def app_db():
    """A reachable application database: configuration documents and a healthy stock_daily_quotes."""
    import mongomock_ng

    from tacn.pipelines.stores.mongo import MongoStore

    client = mongomock_ng.MongoClient()
    db = client["tradingagents"]
    db["system_configs"].insert_many([
        {"version": 1, "is_active": True, "data_source_configs": [
            {"name": "Tushare", "type": "tushare", "api_key": "dbOldTushareToken-000000", "enabled": True}]},
        {"version": 3, "is_active": False, "data_source_configs": [
            {"name": "Tushare", "type": "tushare", "api_key": "dbInactiveToken-11111111", "enabled": True}]},
        {"version": 2, "is_active": True, "data_source_configs": [
            {"name": "Tushare", "type": "tushare", "api_key": TUSHARE_DB, "enabled": True},
            {"name": "FinnHub", "type": "finnhub", "api_key": FINNHUB_DB, "enabled": True},
            {"name": "Off", "type": "alltick", "api_key": "dbDisabledKey-000000", "enabled": False}]},
    ])
    db["llm_providers"].insert_many([
        {"name": "deepseek", "api_key": DEEPSEEK_DB, "is_active": True},
        {"name": "dashscope", "api_key": "sk-inactive-dashscope-0000", "is_active": False},
    ])
    store = MongoStore(client, "tradingagents", "mongomock://test")
    store.ensure_indexes()
    store.collection.insert_many([{"symbol": "000001", "trade_date": "2025-10-22", "data_source": "akshare",
                                   "period": "daily"},
                                  {"symbol": "000001", "trade_date": "7", "data_source": "akshare",
                                   "period": "daily"}])
    return client


def run_with(app_db, env, redis_client=None, **kwargs):
    result = run_config_check(env, None, mongo_client=app_db, redis_client=redis_client, timeout_s=1, **kwargs)
    assert_no_secret(json.dumps(result.to_dict()))
    return result


def test_data_source_keys_take_the_database_first_llm_keys_the_environment(app_db):
    env = {**VALID_ENV, "REDIS_PORT": str(free_port())}
    result = run_with(app_db, env)
    found = {r.name: r for r in result.items}
    tushare = found["TUSHARE_TOKEN"]  # the newest active system_configs (version 2) wins over the environment
    assert tushare.source == "database" and tushare.disagree
    assert tushare.value == f"***{TUSHARE_DB[-4:]} ({len(TUSHARE_DB)} chars)"
    assert tushare.precedence == "database > environment > .env"
    assert "database wins over environment" in tushare.message
    finnhub = found["FINNHUB_API_KEY"]
    assert finnhub.source == "database" and finnhub.set and not finnhub.disagree
    deepseek = found["DEEPSEEK_API_KEY"]  # LLM key: the environment first, the database only as fallback
    assert deepseek.source == "environment" and deepseek.disagree
    assert deepseek.precedence == "environment > .env > database"
    dashscope = found["DASHSCOPE_API_KEY"]  # the inactive provider's key is not a source
    assert dashscope.sources == {"environment": dashscope.value}
    assert "system_configs version 2" in result.database_values


def test_placeholder_in_the_environment_falls_back_to_the_database(app_db):
    env = {**VALID_ENV, "DEEPSEEK_API_KEY": "your_deepseek_api_key_here", "REDIS_PORT": str(free_port())}
    deepseek = {r.name: r for r in run_with(app_db, env).items}["DEEPSEEK_API_KEY"]
    assert deepseek.source == "database" and deepseek.set and deepseek.status == "ok"
    assert deepseek.value.startswith(f"***{DEEPSEEK_DB[-4:]}")


def test_placeholder_in_the_database_falls_back_to_the_environment(app_db):
    app_db["tradingagents"]["system_configs"].update_one(
        {"version": 2}, {"$set": {"data_source_configs.0.api_key": "your_tushare_token_here"}})
    tushare = {r.name: r for r in run_with(app_db, {**VALID_ENV, "REDIS_PORT": str(free_port())}).items}[
        "TUSHARE_TOKEN"]
    assert tushare.source == "environment" and tushare.set and tushare.disagree


def test_healthy_mongodb_checks_and_invalid_dates_counted(app_db):
    result = run_with(app_db, {**VALID_ENV, "REDIS_PORT": str(free_port())})
    found = {(c.service, c.check): c for c in result.live_checks}
    for name in ("connect", "authenticate", "ping", "database", "unique index", "config documents"):
        assert found[("mongodb", name)].status == "ok", name
    assert "symbol_date_source_period_unique" in found[("mongodb", "unique index")].message
    invalid = found[("mongodb", "invalid trade_date")]
    assert invalid.status == "warning" and invalid.details == {"invalid": 1, "total": 2}


def test_missing_unique_index_and_missing_database_fail(app_db):
    app_db["tradingagents"]["stock_daily_quotes"].drop_indexes()
    result = run_with(app_db, {**VALID_ENV, "MONGODB_DATABASE": "ta_config", "REDIS_PORT": str(free_port())})
    found = {(c.service, c.check): c for c in result.live_checks}
    assert found[("mongodb", "unique index")].status == "error"
    assert found[("mongodb", "database")].status == "error" and "ta_config" in found[("mongodb", "database")].message
    assert result.failed()


class RefusingMongo:
    """A client whose server refuses the credentials, as pymongo reports it (code 18)."""

    class _Admin:
        def command(self, name):
            from pymongo.errors import OperationFailure

            raise OperationFailure(f"Authentication failed. password {MONGO_PASSWORD}", code=18)

    admin = _Admin()


def test_refused_mongodb_credentials_are_a_failed_authenticate_check():
    result = run_config_check({**VALID_ENV, "REDIS_PORT": str(free_port()), "MONGODB_PASSWORD": MONGO_PASSWORD},
                              None, mongo_client=RefusingMongo(), timeout_s=1)
    assert_no_secret(json.dumps(result.to_dict()))
    found = {(c.service, c.check): c for c in result.live_checks}
    assert found[("mongodb", "connect")].status == "ok"
    assert found[("mongodb", "authenticate")].status == "error"
    assert result.database_values == "not read (MongoDB not reachable)" and result.failed()


# -- unreachable MongoDB ----------------------------------------------------------------


def test_unreachable_mongodb_is_a_failed_live_check_within_the_timeout():
    env = {**VALID_ENV, "MONGODB_PORT": str(free_port()), "REDIS_PORT": str(free_port()),
           "MONGODB_USERNAME": "ops", "MONGODB_PASSWORD": MONGO_PASSWORD, "TACN_CONNECT_TIMEOUT": "0.5"}
    started = time.monotonic()
    result = invoke("--json", env=env)
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert elapsed < 5, elapsed
    payload = json.loads(result.stdout)
    found = checks(payload)
    assert found[("mongodb", "connect")]["status"] == "error"
    assert "cannot reach mongodb://ops:***@127.0.0.1" in found[("mongodb", "connect")]["message"]
    assert "Topology Description" not in found[("mongodb", "connect")]["message"]  # the driver's dump is cut
    assert found[("mongodb", "ping")]["status"] == "skipped"
    assert found[("redis", "connect")]["status"] == "error"
    assert payload["database_values"] == "not read (MongoDB not reachable)"
    assert items(payload)["TUSHARE_TOKEN"]["precedence"].endswith("(database not read)")


def test_store_option_replaces_the_uri_built_from_mongodb_settings():
    url = f"mongodb://ops:{MONGO_PASSWORD}@127.0.0.1:{free_port()}/ta_other"
    env = {**VALID_ENV, "REDIS_PORT": str(free_port()), "TACN_CONNECT_TIMEOUT": "0.3"}
    result = invoke("--json", "--store", url, env=env)
    assert result.exit_code == 1
    connect = checks(json.loads(result.stdout))[("mongodb", "connect")]
    assert connect["status"] == "error" and "mongodb://ops:***@127.0.0.1" in connect["message"]
    assert "/ta_other" in connect["message"]


# -- a real Redis server ------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path):
    with running_redis(tmp_path) as server:
        yield server


@pytest.fixture
def redis_server_with_password(tmp_path):
    with running_redis(tmp_path, password=REDIS_TEST_PASSWORD) as server:
        yield server


def healthy_mongo(monkeypatch, app_db):
    monkeypatch.setattr(live_checks, "_mongo_client", lambda *args: app_db)


def test_redis_pubsub_leak_is_reported_with_count_addresses_and_idle_times(redis_server, monkeypatch, app_db):
    healthy_mongo(monkeypatch, app_db)
    subscribers = []
    try:
        for i in range(15):
            pubsub = redis_server.client().pubsub()
            pubsub.subscribe(f"notifications:user{i % 3}")
            assert pubsub.get_message(timeout=5)["type"] == "subscribe"  # the server has registered it
            subscribers.append(pubsub)
        env = {**VALID_ENV, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_server.port)}
        result = invoke("--json", env=env)
        payload = json.loads(result.stdout)
        found = checks(payload)
        assert found[("redis", "ping")]["status"] == "ok"
        client_list = found[("redis", "client list")]
        assert client_list["status"] == "warning"
        assert client_list["details"]["pubsub"] == 15
        assert "15 pubsub clients" in client_list["message"] and "more than 10" in client_list["message"]
        assert "127.0.0.1:" in client_list["message"] and " idle " in client_list["message"]
        assert all("addr" in c and "idle_s" in c for c in client_list["details"]["pubsub_clients"])
        numsub = found[("redis", "pubsub numsub")]
        assert numsub["details"]["channels"] == {"notifications:user0": 5, "notifications:user1": 5,
                                                 "notifications:user2": 5}
        assert found[("redis", "clients")]["details"]["connected_clients"] >= 16
        assert result.exit_code == 0  # warnings only ...
        assert invoke("--strict", env=env).exit_code == 1  # ... unless --strict
        table = invoke(env={**env, "COLUMNS": "250"})
        assert "PubSub leak" in table.stdout
    finally:
        for pubsub in subscribers:
            pubsub.close()


def test_redis_below_the_thresholds_is_healthy(redis_server, monkeypatch, app_db):
    healthy_mongo(monkeypatch, app_db)
    pubsub = redis_server.client().pubsub()
    pubsub.subscribe("notifications:ops")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    try:
        result = run_with(app_db, {**VALID_ENV, "REDIS_PORT": str(redis_server.port)})
        found = {(c.service, c.check): c for c in result.live_checks if c.service == "redis"}
        assert {c.status for c in found.values()} == {"ok"}
        assert found[("redis", "client list")].details["pubsub"] == 1
        assert found[("redis", "clients")].details["maxclients"] > 0
    finally:
        pubsub.close()


def test_too_many_redis_clients_warn(redis_server, monkeypatch, app_db):
    healthy_mongo(monkeypatch, app_db)
    admin = redis_server.client()
    admin.config_set("maxclients", 120)
    held = [redis_server.client() for _ in range(101)]
    try:
        for client in held:
            client.ping()  # each holds its own connection
        env = {**VALID_ENV, "REDIS_PORT": str(redis_server.port)}
        result = invoke("--json", env=env)
        clients = checks(json.loads(result.stdout))[("redis", "clients")]
        assert clients["status"] == "warning"
        assert clients["details"]["connected_clients"] >= 102 and clients["details"]["maxclients"] == 120
        assert "above 80% of maxclients" in clients["message"] and "more than 100 clients" in clients["message"]
        assert result.exit_code == 0 and invoke("--strict", env=env).exit_code == 1
    finally:
        for client in held:
            client.close()
        admin.close()


def test_wrong_redis_password_is_a_failed_check_not_a_crash(redis_server_with_password, monkeypatch, app_db):
    healthy_mongo(monkeypatch, app_db)
    server = redis_server_with_password
    env = {**VALID_ENV, "REDIS_PORT": str(server.port), "REDIS_PASSWORD": "Wrong-" + REDIS_TEST_PASSWORD}
    result = invoke("--json", env=env)
    assert result.exit_code == 1
    found = checks(json.loads(result.stdout))
    assert found[("redis", "connect")]["status"] == "ok"
    assert found[("redis", "authenticate")]["status"] == "error"
    assert found[("redis", "ping")]["status"] == "skipped"
    no_password = invoke("--json", env={**env, "REDIS_PASSWORD": ""})
    assert no_password.exit_code == 1
    assert checks(json.loads(no_password.stdout))[("redis", "authenticate")]["status"] == "error"
    right = invoke("--json", env={**env, "REDIS_PASSWORD": REDIS_TEST_PASSWORD})
    assert right.exit_code == 0, right.stdout
    assert checks(json.loads(right.stdout))[("redis", "authenticate")]["message"] == "password accepted"


# -- fast start -------------------------------------------------------------------------------


def test_offline_check_in_a_subprocess_imports_nothing_heavy(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tacn.cli", "config-check", "--offline", "--json",
         "--env-file", str(REPO / "examples" / "demo.env")],
        capture_output=True, text=True, timeout=60, env={**env, "PYTHONWARNINGS": "ignore"}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["offline"] is True
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    for heavy in ("pandas", "numpy", "akshare", "tushare", "pandera", "pymongo", "redis"):
        assert heavy not in imported, heavy
