"""config-check: what is configured, where each value comes from, and whether MongoDB and Redis are healthy.

Sources, read the way TradingAgents-CN reads them: the process environment, the
``.env`` file, and — when MongoDB is reachable — the active ``system_configs``
document and ``llm_providers``. Each item follows the application's own
precedence (tacn.validators.config_rules). Secrets leave this module only masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tacn.pipelines.config.env import (
    DEFAULT_ENV_FILE,
    Env,
    mongo_url_from_app_env,
    read_env_file,
    register_secrets,
)
from tacn.pipelines.config.live_checks import LiveCheck, check_mongodb, check_redis, skipped, url_credentials
from tacn.pipelines.config.secrets import mask_value, register_secret, scrub
from tacn.pipelines.errors import ConfigError, UsageError
from tacn.validators import config_rules as rules
from tacn.validators.records import DEFAULT_DATABASE

PRECEDENCE = {
    "data-source keys (TUSHARE_TOKEN, FINNHUB_API_KEY)": " > ".join(rules.DATA_SOURCE_KEY_ORDER),
    "LLM keys (DEEPSEEK_API_KEY, DASHSCOPE_API_KEY, SILICONFLOW_API_KEY)": " > ".join(rules.LLM_KEY_ORDER),
    "everything else": " > ".join(rules.SETTING_ORDER),
}


@dataclass
class DatabaseValues:
    """Keys held by the application's database, by data-source type and LLM provider name."""

    data_source_keys: dict[str, str] = field(default_factory=dict)  # "tushare" -> api_key
    llm_keys: dict[str, str] = field(default_factory=dict)  # "deepseek" -> api_key
    system_config_version: Any = None

    def get(self, item: rules.ConfigItem) -> str | None:
        if item.data_source_type is not None:
            return self.data_source_keys.get(item.data_source_type)
        if item.llm_provider is not None:
            return self.llm_keys.get(item.llm_provider)
        return None


@dataclass
class ItemReport:
    name: str
    group: str
    description: str
    status: str  # ok | info | warning | error
    set: bool  # a usable value is configured (not a placeholder, not only the built-in default)
    value: str  # effective value; masked when secret
    source: str | None  # which source won: database, environment, .env, default (None: nothing)
    precedence: str  # the order the application applies to this item
    sources: dict[str, str] = field(default_factory=dict)  # every source holding a value (masked)
    disagree: bool = False
    message: str = ""
    startup: str | None = None  # the application's start-up validator: passes, warns, counts as missing,
    # refuses to start (None: it does not check this item)
    startup_reason: str = ""
    stricter: str = ""  # where tacn judges worse than the application's start-up check, and why


@dataclass
class ConfigCheckResult:
    env_file: str
    env_file_found: bool
    offline: bool
    database_values: str  # whether (and from where) database values were read
    precedence: dict[str, str]
    items: list[ItemReport]
    live_checks: list[LiveCheck]

    @property
    def errors(self) -> int:
        return sum(r.status == rules.ERROR for r in [*self.items, *self.live_checks])

    @property
    def warnings(self) -> int:
        return sum(r.status == rules.WARNING for r in [*self.items, *self.live_checks])

    def failed(self, strict: bool = False) -> bool:
        return self.errors > 0 or (strict and self.warnings > 0)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["summary"] = {"errors": self.errors, "warnings": self.warnings}
        return out


def run_config_check(
    environ: Mapping[str, str],
    env_file: Path | str | None = None,
    *,
    offline: bool = False,
    store_url: str | None = None,
    timeout_s: float | None = None,
    mongo_client: Any = None,
    redis_client: Any = None,
) -> ConfigCheckResult:
    """Check the configuration ``environ`` and ``env_file`` (default ./.env, optional) describe.

    ``env_file`` given explicitly must exist. ``store_url`` (a mongodb:// URL) replaces the
    URI built from MONGODB_*. ``mongo_client`` / ``redis_client`` replace the clients the live
    checks would open (tests inject mongomock or a prepared client).
    """
    environ = dict(environ)
    register_secrets(environ)
    path = Path(env_file) if env_file is not None else DEFAULT_ENV_FILE
    found = path.exists()
    if not found and env_file is not None:
        raise ConfigError(f"env file {path} does not exist")
    file_values = read_env_file(path) if found else {}
    settings = _merged(environ, file_values)
    timeout = _timeout(timeout_s, settings)
    if store_url is not None and not store_url.startswith(("mongodb://", "mongodb+srv://")):
        raise UsageError("config-check checks the application's MongoDB: --store must be a mongodb:// URL")
    if store_url is not None:
        register_secret(url_credentials(store_url)[1])

    live: list[LiveCheck] = []
    db_values: DatabaseValues | None = None
    if offline:
        db_note = "not read (--offline)"
        live += [skipped("mongodb", "--offline"), skipped("redis", "--offline")]
    else:
        config_db_name, quotes_db_name = _database_names(settings, store_url)
        mongo_checks, config_db = check_mongodb(
            store_url or mongo_url_from_app_env(settings),
            config_database=config_db_name,
            quotes_database=quotes_db_name,
            timeout_s=timeout,
            client=mongo_client,
        )
        live += mongo_checks
        if config_db is None:
            db_note = "not read (MongoDB not reachable)"
        else:
            read_check, db_values = _read_database_values(config_db)
            live.append(read_check)
            db_note = read_check.message if db_values is not None else "not read (see live checks)"
        live += check_redis(
            host=settings.get("REDIS_HOST", "localhost"),
            port=settings.get("REDIS_PORT", "6379"),
            password=settings.get("REDIS_PASSWORD"),
            db=settings.get("REDIS_DB", "0"),
            timeout_s=timeout,
            client=redis_client,
        )

    items = [_evaluate(item, environ, file_values, db_values) for item in rules.ITEMS]
    _cross_checks(items, settings)
    return ConfigCheckResult(
        env_file=str(path),
        env_file_found=found,
        offline=offline,
        database_values=db_note,
        precedence=dict(PRECEDENCE),
        items=items,
        live_checks=live,
    )


# -- sources ---------------------------------------------------------------------


def _merged(environ: dict[str, str], file_values: dict[str, str]) -> Env:
    env = Env()
    for origin, values in ((rules.DOTENV, file_values), (rules.ENVIRONMENT, environ)):
        for name, value in values.items():
            env.values[name] = value
            env.origin[name] = origin
    return env


def _timeout(timeout_s: float | None, settings: Env) -> float:
    if timeout_s is not None:
        return timeout_s
    try:
        return rules.parse_connect_timeout(settings.get("TACN_CONNECT_TIMEOUT"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _database_names(settings: Env, store_url: str | None) -> tuple[str, str]:
    """(database holding system_configs, database holding stock_daily_quotes)."""
    if store_url is not None:
        from urllib.parse import urlsplit

        name = urlsplit(store_url).path.lstrip("/") or DEFAULT_DATABASE
        return name, name
    # The application reads its configuration from MONGODB_DATABASE but writes quotes to 'tradingagents'.
    return settings.get("MONGODB_DATABASE", DEFAULT_DATABASE), DEFAULT_DATABASE


def _read_database_values(db: Any) -> tuple[LiveCheck, DatabaseValues | None]:
    """The active system_configs document (newest version first) and the active llm_providers."""
    try:
        doc = db["system_configs"].find_one({"is_active": True}, sort=[("version", -1)])
        providers = list(db["llm_providers"].find())
    except Exception as exc:  # noqa: BLE001 - any driver failure is a failed check, reported
        return LiveCheck("mongodb", "config documents", rules.ERROR,
                         f"cannot read system_configs/llm_providers: {scrub(str(exc))[:300]}"), None
    values = DatabaseValues()
    if doc is not None:
        values.system_config_version = doc.get("version")
        for config in doc.get("data_source_configs") or []:
            if isinstance(config, dict) and config.get("enabled", True) and config.get("api_key"):
                values.data_source_keys.setdefault(str(config.get("type", "")).lower(), str(config["api_key"]))
    for provider in providers:
        if provider.get("is_active", True) and provider.get("api_key") and provider.get("name"):
            values.llm_keys.setdefault(str(provider["name"]).lower(), str(provider["api_key"]))
    for key in [*values.data_source_keys.values(), *values.llm_keys.values()]:
        register_secret(key)
    where = (f"system_configs version {values.system_config_version}" if doc is not None
             else "no active system_configs document")
    message = f"read from {db.name}: {where}, {len(providers)} llm_providers"
    status = rules.OK if doc is not None else rules.WARNING
    return LiveCheck("mongodb", "config documents", status, message,
                     {"system_config_version": values.system_config_version, "llm_providers": len(providers)}), values


# -- rules -------------------------------------------------------------------------


def _show(item: rules.ConfigItem, value: str | None) -> str:
    if value is None:
        return "(not set)"
    return mask_value(value) if item.secret else value


def _evaluate(item: rules.ConfigItem, environ: dict, file_values: dict, db: DatabaseValues | None) -> ItemReport:
    held: dict[str, str] = {}  # source -> raw value, empty values count as unset
    for source in item.order:
        if source == rules.ENVIRONMENT:
            value = environ.get(item.name)
        elif source == rules.DOTENV:
            value = file_values.get(item.name)
        elif source == rules.DATABASE:
            value = db.get(item) if db is not None else None
        else:
            continue
        if value not in (None, ""):
            held[source] = value
    precedence = " > ".join(item.order)
    if rules.DATABASE in item.order and db is None:
        precedence += " (database not read)"
    report = ItemReport(
        item.name, item.group, item.description, rules.OK, False, "(not set)", None, precedence,
        sources={source: _show(item, value) for source, value in held.items()},
        disagree=len(set(held.values())) > 1,
    )

    if item.kind == "key":
        winner = next((s for s, v in held.items() if rules.is_usable_key(v)), None)
        if winner is None:  # nothing usable: the application ends up with the first value it sees, if any
            first = next(iter(held.items()), None)
            report.source, raw = first if first else (None, None)
            report.value = _show(item, raw)
            reason = rules.placeholder_reason(raw)
            report.message = "not set" if raw is None else f"counts as missing: {reason}"
            report.status = rules.WARNING if item.group == rules.RECOMMENDED else rules.INFO
        else:
            report.source, report.set = winner, True
            report.value = _show(item, held[winner])
    else:
        first = next(iter(held.items()), None)
        if first is not None:
            report.source, raw = first
            report.set = True
        else:
            raw = item.default
            report.source = rules.DEFAULT if raw is not None else None
        report.value = _show(item, raw) if not (report.source == rules.DEFAULT and item.secret) else "(built-in default)"
        _apply_setting_rules(item, report, raw)

    if report.disagree:
        others = ", ".join(f"{s} {v}" for s, v in report.sources.items() if s != report.source)
        note = f"sources disagree; {report.source} wins over {others}"
        report.message = f"{report.message}; {note}" if report.message else note
    # The start-up validator reads os.getenv: the process environment, .env loaded under it.
    _compare_with_startup(report, environ[item.name] if item.name in environ else file_values.get(item.name))
    return report


_RANK = {rules.OK: 0, rules.INFO: 0, rules.WARNING: 1, rules.ERROR: 2}


def _compare_with_startup(report: ItemReport, value: str | None) -> None:
    verdict = rules.startup_verdict(report.name, value)
    if verdict is None:
        return
    report.startup, report.startup_reason = verdict
    if _RANK[report.status] > _RANK[rules.STARTUP_EQUIVALENT[report.startup]]:
        why = f" ({report.startup_reason})" if report.startup_reason else ""
        report.stricter = f"tacn is stricter: the application's start-up check {report.startup}{why}"


def _apply_setting_rules(item: rules.ConfigItem, report: ItemReport, raw: str | None) -> None:
    if not report.set:
        if item.group == rules.REQUIRED:
            report.status = rules.ERROR
            report.message = "missing: the application's start-up check requires it (environment or .env)"
        elif item.kind == "csrf":
            report.status = rules.WARNING
            report.message = "not set: the application uses its known built-in default"
        else:
            report.status = rules.INFO
            report.message = "not set" + (f" (default {raw})" if raw is not None and not item.secret else "")
        return
    checks = {
        "port": rules.port_problem,
        "int": rules.int_problem,
        "jwt": rules.jwt_secret_problem,
        "csrf": rules.csrf_secret_problem,
        "bool": rules.bool_problem,
        "url": rules.url_problem,
        "database": rules.database_note,
    }
    check = checks.get(item.kind)
    problem = check(raw) if check else None
    if problem:
        if item.group == rules.REQUIRED and item.kind != "database":
            report.status = rules.ERROR
        else:
            report.status = rules.WARNING
        report.message = f"{item.name} {problem}"


def _cross_checks(items: list[ItemReport], settings: Env) -> None:
    """Rules that look at two items together."""
    by_name = {r.name: r for r in items}
    enabled = by_name["SILICONFLOW_ENABLED"]
    if enabled.set and rules.is_true(settings.get("SILICONFLOW_ENABLED")) and not by_name["SILICONFLOW_API_KEY"].set:
        enabled.status = rules.WARNING
        enabled.message = "SiliconFlow is enabled but SILICONFLOW_API_KEY is missing"
    user, password = by_name["MONGODB_USERNAME"], by_name["MONGODB_PASSWORD"]
    if user.set != password.set:
        lone = user if user.set else password
        lone.status = rules.WARNING
        lone.message = ("only one of MONGODB_USERNAME / MONGODB_PASSWORD is set: the application then "
                        "connects without credentials")
