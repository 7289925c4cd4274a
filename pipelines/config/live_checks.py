"""Live health checks of the application's MongoDB and Redis, each bounded by a short timeout.

Drivers are imported inside the checks only (pymongo for MongoDB, redis-py for
Redis): ``tacn config-check --offline`` never loads them. Every message passes
the secret scrubber; a failed check is a result, never an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tacn.pipelines.config.secrets import scrub
from tacn.validators.config_rules import ERROR, OK, WARNING
from tacn.validators.records import COLLECTION, KEY_FIELDS, LEGACY_UNIQUE_INDEX_NAME

SKIPPED = "skipped"

# The leak signature of the incident: too many clients, or PubSub connections piling up.
MAX_CLIENTS_SHARE = 0.8
MAX_CLIENTS = 100
MAX_PUBSUB_CLIENTS = 10
LISTED_PUBSUB_CLIENTS = 20  # the message names this many; details hold them all


@dataclass
class LiveCheck:
    service: str  # mongodb | redis
    check: str
    status: str  # ok | warning | error | skipped
    message: str
    details: dict = field(default_factory=dict)


def skipped(service: str, why: str) -> LiveCheck:
    return LiveCheck(service, "all", SKIPPED, f"skipped ({why})")


def _message(exc: BaseException) -> str:
    from tacn.pipelines.stores.mongo import brief_driver_message  # light: imports no driver

    return scrub(f"{type(exc).__name__}: {brief_driver_message(str(exc))}")[:300]


# -- MongoDB -------------------------------------------------------------------------


def check_mongodb(
    url: str, *, config_database: str, quotes_database: str, timeout_s: float, client: Any = None
) -> tuple[list[LiveCheck], Any]:
    """Connect, authenticate, ping, database exists, unique index, invalid trade_dates.

    Returns the checks and the configuration database handle (None when unreachable).
    """
    from tacn.pipelines.stores.base import mask_url

    checks: list[LiveCheck] = []
    shown = mask_url(url)
    if client is None:
        client = _mongo_client(url, timeout_s, checks, shown)
        if client is None:
            return checks, None
    from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

    started = time.monotonic()
    try:
        client.admin.command("ping")
    except ConnectionFailure as exc:  # includes ServerSelectionTimeoutError
        checks.append(LiveCheck("mongodb", "connect", ERROR, f"cannot reach {shown}: {_message(exc)}"))
        return _skip_rest(checks, "mongodb", ("authenticate", "ping")), None
    except OperationFailure as exc:
        checks.append(LiveCheck("mongodb", "connect", OK, f"reached {shown}"))
        if exc.code in (13, 18) or "auth" in str(exc).lower():
            checks.append(LiveCheck("mongodb", "authenticate", ERROR, f"refused: {_message(exc)}"))
        else:
            checks.append(LiveCheck("mongodb", "ping", ERROR, _message(exc)))
        return checks, None
    elapsed_ms = (time.monotonic() - started) * 1000
    checks.append(LiveCheck("mongodb", "connect", OK, f"reached {shown}"))
    user, _ = url_credentials(url)
    checks.append(LiveCheck("mongodb", "authenticate", OK,
                            f"authenticated as {user}" if user else "no credentials configured"))
    checks.append(LiveCheck("mongodb", "ping", OK, f"answered in {elapsed_ms:.0f} ms",
                            {"ms": round(elapsed_ms, 1)}))
    try:
        checks.append(_database_exists(client, config_database))
        checks.extend(_quotes_checks(client, quotes_database, shown))
    except PyMongoError as exc:
        checks.append(LiveCheck("mongodb", "queries", ERROR, f"failed: {_message(exc)}"))
    return checks, client[config_database]


def _mongo_client(url: str, timeout_s: float, checks: list[LiveCheck], shown: str) -> Any:
    import pymongo

    timeout_ms = max(int(timeout_s * 1000), 1)
    try:
        return pymongo.MongoClient(
            url,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=max(timeout_ms * 6, 30_000),  # counting invalid dates may scan the collection
            tz_aware=False,
            appname="tacn-config-check",
        )
    except (pymongo.errors.PyMongoError, ValueError, TypeError) as exc:
        checks.append(LiveCheck("mongodb", "connect", ERROR, f"bad MongoDB settings ({shown}): {_message(exc)}"))
        _skip_rest(checks, "mongodb", ("authenticate", "ping"))
        return None


def _skip_rest(checks: list[LiveCheck], service: str, names: tuple[str, ...]) -> list[LiveCheck]:
    checks.extend(LiveCheck(service, name, SKIPPED, "not attempted") for name in names)
    return checks


def url_credentials(url: str) -> tuple[str | None, str | None]:
    """(user, password) of a mongodb:// URL, unquoted; (None, None) when absent or unparsable."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return None, None
    return (unquote(user) if user else None), (unquote(password) if password else None)


def _database_exists(client: Any, name: str) -> LiveCheck:
    from pymongo.errors import OperationFailure

    try:
        exists = name in client.list_database_names()
    except OperationFailure:  # no listDatabases privilege: a database with collections exists
        exists = bool(client[name].list_collection_names())
    if exists:
        return LiveCheck("mongodb", "database", OK, f"database {name!r} exists")
    return LiveCheck("mongodb", "database", ERROR, f"database {name!r} does not exist (MONGODB_DATABASE)")


def _quotes_checks(client: Any, database: str, shown: str) -> list[LiveCheck]:
    from tacn.pipelines.stores.mongo import MongoStore

    db = client[database]
    if COLLECTION not in db.list_collection_names():
        return [LiveCheck("mongodb", "unique index", ERROR, f"{database}.{COLLECTION} does not exist")]
    wanted = [(name, 1) for name in KEY_FIELDS]
    indexes = db[COLLECTION].index_information()
    unique = next((n for n, info in indexes.items() if list(info["key"]) == wanted and info.get("unique")), None)
    if unique:
        index = LiveCheck("mongodb", "unique index", OK, f"{COLLECTION} has unique {unique} on {', '.join(KEY_FIELDS)}")
    else:
        legacy = " (only the legacy " + LEGACY_UNIQUE_INDEX_NAME + " without period)" if LEGACY_UNIQUE_INDEX_NAME in indexes else ""
        index = LiveCheck("mongodb", "unique index", ERROR,
                          f"{COLLECTION} has no unique index on ({', '.join(KEY_FIELDS)}){legacy}")
    store = MongoStore(client, database, shown)
    invalid = store.count_invalid_trade_date()
    total = store.count()
    status = WARNING if invalid else OK
    counted = LiveCheck("mongodb", "invalid trade_date", status,
                        f"{invalid:,} of {total:,} records in {database}.{COLLECTION} have an invalid trade_date"
                        + (" (see tacn validate / tacn clean)" if invalid else ""),
                        {"invalid": invalid, "total": total})
    return [index, counted]


# -- Redis ---------------------------------------------------------------------------


def check_redis(
    *, host: str, port: str, password: str | None, db: str, timeout_s: float, client: Any = None
) -> list[LiveCheck]:
    """Connect, authenticate, ping; INFO clients; CLIENT LIST normal vs pubsub; PUBSUB NUMSUB."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    checks: list[LiveCheck] = []
    where = f"{host}:{port}"
    own = client is None
    if own:
        try:
            client = redis.Redis(
                host=host, port=int(port), password=password or None, db=int(db or 0),
                socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True,
                retry=Retry(NoBackoff(), 0),  # report the first failure: redis-py would retry with backoff
            )
        except (ValueError, TypeError) as exc:
            checks.append(LiveCheck("redis", "connect", ERROR, f"bad Redis settings ({where}): {_message(exc)}"))
            return _skip_rest(checks, "redis", ("authenticate", "ping"))
    try:
        return _redis_checks(client, checks, where, password)
    finally:
        if own:
            client.close()


def _redis_checks(client: Any, checks: list[LiveCheck], where: str, password: str | None) -> list[LiveCheck]:
    import redis

    try:
        started = time.monotonic()
        client.ping()
        elapsed_ms = (time.monotonic() - started) * 1000
    except (redis.AuthenticationError, redis.exceptions.AuthenticationWrongNumberOfArgsError) as exc:
        checks.append(LiveCheck("redis", "connect", OK, f"reached {where}"))
        checks.append(LiveCheck("redis", "authenticate", ERROR, f"refused: {_message(exc)} (REDIS_PASSWORD)"))
        return _skip_rest(checks, "redis", ("ping",))
    except redis.ResponseError as exc:
        checks.append(LiveCheck("redis", "connect", OK, f"reached {where}"))
        auth = any(word in str(exc).upper() for word in ("NOAUTH", "WRONGPASS", "AUTH"))
        checks.append(LiveCheck("redis", "authenticate" if auth else "ping", ERROR, _message(exc)))
        return checks
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        checks.append(LiveCheck("redis", "connect", ERROR, f"cannot reach {where}: {_message(exc)}"))
        return _skip_rest(checks, "redis", ("authenticate", "ping"))
    checks.append(LiveCheck("redis", "connect", OK, f"reached {where}"))
    checks.append(LiveCheck("redis", "authenticate", OK, "password accepted" if password else "no password configured"))
    checks.append(LiveCheck("redis", "ping", OK, f"answered in {elapsed_ms:.0f} ms", {"ms": round(elapsed_ms, 1)}))
    try:
        checks.append(_clients_check(client))
        checks.append(_client_list_check(client))
        checks.append(_numsub_check(client))
    except redis.RedisError as exc:
        checks.append(LiveCheck("redis", "diagnostics", ERROR, f"failed: {_message(exc)}"))
    return checks


def _clients_check(client: Any) -> LiveCheck:
    import redis

    info = client.info("clients")
    connected = int(info.get("connected_clients", 0))
    maxclients = info.get("maxclients")
    if maxclients is None:  # before Redis 7 INFO clients does not carry it
        try:
            maxclients = client.config_get("maxclients").get("maxclients")
        except redis.ResponseError:
            maxclients = None
    maxclients = int(maxclients) if maxclients is not None else None
    details = {"connected_clients": connected, "maxclients": maxclients}
    problems = []
    if maxclients and connected > MAX_CLIENTS_SHARE * maxclients:
        problems.append(f"above {MAX_CLIENTS_SHARE:.0%} of maxclients")
    if connected > MAX_CLIENTS:
        problems.append(f"more than {MAX_CLIENTS} clients")
    text = f"{connected} connected clients of maxclients {maxclients if maxclients is not None else 'unknown'}"
    if problems:
        return LiveCheck("redis", "clients", WARNING, f"{text}: {' and '.join(problems)} (connection leak?)", details)
    return LiveCheck("redis", "clients", OK, text, details)


def _is_pubsub(entry: dict) -> bool:
    flags = str(entry.get("flags", ""))
    return "P" in flags or any(int(entry.get(k, 0) or 0) for k in ("sub", "psub", "ssub"))


def _client_list_check(client: Any) -> LiveCheck:
    entries = client.client_list()
    pubsub = [e for e in entries if _is_pubsub(e)]
    normal = len(entries) - len(pubsub)
    listed = [{"addr": e.get("addr"), "idle_s": int(e.get("idle", 0) or 0), "name": e.get("name") or None,
               "subscriptions": int(e.get("sub", 0) or 0) + int(e.get("psub", 0) or 0)} for e in pubsub]
    listed.sort(key=lambda c: -c["idle_s"])  # the longest idle first: the likeliest leaks
    details = {"normal": normal, "pubsub": len(pubsub), "pubsub_clients": listed}
    text = f"{normal} normal and {len(pubsub)} pubsub clients"
    if len(pubsub) > MAX_PUBSUB_CLIENTS:
        shown = ", ".join(f"{c['addr']} idle {c['idle_s']}s" for c in listed[:LISTED_PUBSUB_CLIENTS])
        more = f" and {len(listed) - LISTED_PUBSUB_CLIENTS} more" if len(listed) > LISTED_PUBSUB_CLIENTS else ""
        return LiveCheck("redis", "client list", WARNING,
                         f"{text}: more than {MAX_PUBSUB_CLIENTS} pubsub clients, the PubSub leak signature: "
                         f"{shown}{more}", details)
    return LiveCheck("redis", "client list", OK, text, details)


def _numsub_check(client: Any) -> LiveCheck:
    channels = sorted(client.pubsub_channels())
    counts = dict(client.pubsub_numsub(*channels)) if channels else {}
    patterns = int(client.pubsub_numpat())
    per_channel = {str(name): int(n) for name, n in counts.items()}
    text = ", ".join(f"{name}: {n}" for name, n in per_channel.items()) or "no channels with subscribers"
    return LiveCheck("redis", "pubsub numsub", OK, f"{text}; {patterns} pattern subscriptions",
                     {"channels": per_channel, "patterns": patterns})
