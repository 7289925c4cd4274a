"""The application's configuration items and the rules ``tacn config-check`` applies to them.

Facts from TradingAgents-CN's start-up validator, settings defaults and config
bridge (../shared/reference/tradingagents-cn.md, "Configuration validation").
Pure functions on strings: no I/O, nothing of ours imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tacn.validators.records import DEFAULT_DATABASE

REQUIRED, RECOMMENDED, OPTIONAL = "required", "recommended", "optional"

# Severities of a finding, worst last.
OK, INFO, WARNING, ERROR = "ok", "info", "warning", "error"

# Where a value can come from, as config-check names the sources.
DATABASE, ENVIRONMENT, DOTENV, DEFAULT = "database", "environment", ".env", "default"

# The application's precedence, per kind of item (first wins).
DATA_SOURCE_KEY_ORDER = (DATABASE, ENVIRONMENT, DOTENV)  # config bridge: the Web UI's value wins
LLM_KEY_ORDER = (ENVIRONMENT, DOTENV, DATABASE)  # config bridge: .env first, database as fallback
SETTING_ORDER = (ENVIRONMENT, DOTENV, DEFAULT)  # pydantic settings: process env over .env over default

KNOWN_JWT_DEFAULTS = ("change-me-in-production", "your-super-secret-jwt-key-change-in-production")
KNOWN_CSRF_DEFAULTS = ("change-me-csrf-secret", "your-csrf-secret-key-change-in-production")
MIN_JWT_SECRET_LENGTH = 16
MAX_PLACEHOLDER_LENGTH = 10  # real keys are longer; "sk-xxx" and "xxx" are examples
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


@dataclass(frozen=True)
class ConfigItem:
    name: str
    group: str  # required | recommended | optional
    description: str
    secret: bool = False
    kind: str = "text"  # text | port | key | jwt | csrf | bool | url | database
    order: tuple[str, ...] = SETTING_ORDER
    default: str | None = None  # the application's built-in default
    data_source_type: str | None = None  # system_configs.data_source_configs[].type holding it
    llm_provider: str | None = None  # llm_providers[].name holding it


ITEMS: tuple[ConfigItem, ...] = (
    ConfigItem("MONGODB_HOST", REQUIRED, "MongoDB host", default="localhost"),
    ConfigItem("MONGODB_PORT", REQUIRED, "MongoDB port (1-65535)", kind="port", default="27017"),
    ConfigItem("MONGODB_DATABASE", REQUIRED, "MongoDB database", kind="database", default=DEFAULT_DATABASE),
    ConfigItem("REDIS_HOST", REQUIRED, "Redis host", default="localhost"),
    ConfigItem("REDIS_PORT", REQUIRED, "Redis port (1-65535)", kind="port", default="6379"),
    ConfigItem("JWT_SECRET", REQUIRED, "JWT signing secret (16+ characters, not a known default)",
               secret=True, kind="jwt", default="change-me-in-production"),
    ConfigItem("DEEPSEEK_API_KEY", RECOMMENDED, "DeepSeek API key", secret=True, kind="key",
               order=LLM_KEY_ORDER, llm_provider="deepseek"),
    ConfigItem("DASHSCOPE_API_KEY", RECOMMENDED, "Alibaba Bailian (DashScope) API key", secret=True, kind="key",
               order=LLM_KEY_ORDER, llm_provider="dashscope"),
    ConfigItem("TUSHARE_TOKEN", RECOMMENDED, "Tushare token", secret=True, kind="key",
               order=DATA_SOURCE_KEY_ORDER, data_source_type="tushare"),
    ConfigItem("SILICONFLOW_API_KEY", OPTIONAL, "SiliconFlow API key", secret=True, kind="key",
               order=LLM_KEY_ORDER, llm_provider="siliconflow"),
    ConfigItem("SILICONFLOW_BASE_URL", OPTIONAL, "SiliconFlow endpoint", kind="url"),
    ConfigItem("SILICONFLOW_MODEL", OPTIONAL, "SiliconFlow model"),
    ConfigItem("SILICONFLOW_ENABLED", OPTIONAL, "SiliconFlow switch (true/false)", kind="bool"),
    ConfigItem("FINNHUB_API_KEY", OPTIONAL, "Finnhub API key", secret=True, kind="key",
               order=DATA_SOURCE_KEY_ORDER, data_source_type="finnhub"),
    ConfigItem("CSRF_SECRET", OPTIONAL, "CSRF secret (not a known default)", secret=True, kind="csrf",
               default="change-me-csrf-secret"),
    # Connection details the live checks use; reported so an operator sees what was tried.
    ConfigItem("MONGODB_USERNAME", OPTIONAL, "MongoDB user (credentials used only when user and password are set)"),
    ConfigItem("MONGODB_PASSWORD", OPTIONAL, "MongoDB password", secret=True),
    ConfigItem("MONGODB_AUTH_SOURCE", OPTIONAL, "MongoDB authentication database", default="admin"),
    ConfigItem("REDIS_PASSWORD", OPTIONAL, "Redis password", secret=True),
    ConfigItem("REDIS_DB", OPTIONAL, "Redis database number", kind="int", default="0"),
)

def clean_value(value: str | None) -> str:
    """The value as the application's key check compares it: stripped of blanks and quotes."""
    return (value or "").strip().strip('"').strip("'")


def startup_placeholder_reason(value: str | None) -> str | None:
    """Why the application's start-up validator counts a key as not configured (None: configured).

    Its ``_is_valid_api_key``, rule for rule: blanks and quotes stripped, then empty, the
    case-sensitive prefixes ``your_``/``your-`` and suffixes ``_here``/``-here``, and 10
    characters or fewer. It does not look for ``...`` (its runtime key helper does).
    """
    text = clean_value(value)
    if not text:
        return "empty"
    if text.startswith(("your_", "your-")):
        return "a placeholder (starts with your_ / your-)"
    if text.endswith(("_here", "-here")):
        return "a placeholder (ends with _here / -here)"
    if len(text) <= MAX_PLACEHOLDER_LENGTH:
        return f"too short to be a key ({len(text)} characters, needs more than {MAX_PLACEHOLDER_LENGTH})"
    return None


RUNTIME_PLACEHOLDER_NOTE = (
    "contains '...': the application's start-up check accepts it, but its runtime key helper treats it "
    "as a placeholder and does not use it"
)


def placeholder_reason(value: str | None) -> str | None:
    """Why the application will not use a key: its start-up rules, then its runtime helper's ``...``."""
    reason = startup_placeholder_reason(value)
    if reason is None and "..." in clean_value(value):
        return RUNTIME_PLACEHOLDER_NOTE
    return reason


def is_usable_key(value: str | None) -> bool:
    return placeholder_reason(value) is None


def startup_port_problem(value: str | None) -> str | None:
    """The start-up validator's port test, on the raw value: ``v.isdigit() and 1 <= int(v) <= 65535``."""
    raw = value or ""
    if not raw.isdigit():
        return (f"{raw!r} is not a port between 1 and 65535 in digits only: the application tests the raw "
                "value with isdigit(), so a blank or quotes around the number make it refuse to start")
    try:
        number = int(raw)
    except ValueError:  # digits int() cannot read ('²'): the application's validator raises
        return (f"{raw!r} passes isdigit() but is not a port between 1 and 65535: the application's start-up "
                "check crashes on it")
    if not 1 <= number <= 65535:
        return f"{raw!r} is not a port between 1 and 65535"
    return None


def port_problem(value: str | None) -> str | None:
    problem = startup_port_problem(value)
    if problem is None and not (value or "").isascii():  # tacn is stricter: the URI needs ASCII digits
        return f"{value!r} uses non-ASCII digits: the start-up check accepts them, the MongoDB/Redis URI does not"
    return problem


def int_problem(value: str | None) -> str | None:
    text = clean_value(value)
    return None if text.isdigit() else "is not a non-negative integer"


JWT_DEFAULT_PROBLEM = (
    "is the application's published default: anyone who knows it can mint an admin token "
    "(the application only warns and starts; tacn reports an error)"
)


def jwt_secret_problem(value: str | None) -> str | None:
    raw = value or ""
    if raw in KNOWN_JWT_DEFAULTS or clean_value(raw) in KNOWN_JWT_DEFAULTS:
        return JWT_DEFAULT_PROBLEM
    if len(raw) < MIN_JWT_SECRET_LENGTH:  # the start-up check counts the raw value
        return f"has {len(raw)} characters, needs at least {MIN_JWT_SECRET_LENGTH}"
    return None


def csrf_secret_problem(value: str | None) -> str | None:
    return "is a known default value" if clean_value(value) in KNOWN_CSRF_DEFAULTS else None


# -- the application's start-up validator, item by item ---------------------------------------
# app/core/startup_validator.py reads each item with os.getenv (the process environment, .env
# loaded into it) and judges it as below. config-check reports this verdict beside its own.
STARTUP_REQUIRED = ("MONGODB_HOST", "MONGODB_PORT", "MONGODB_DATABASE", "REDIS_HOST", "REDIS_PORT", "JWT_SECRET")
STARTUP_RECOMMENDED = ("DEEPSEEK_API_KEY", "DASHSCOPE_API_KEY", "TUSHARE_TOKEN")
STARTUP_SECURITY = {"JWT_SECRET": KNOWN_JWT_DEFAULTS, "CSRF_SECRET": KNOWN_CSRF_DEFAULTS}
STARTUP_PASSES = "passes"
STARTUP_WARNS = "warns"  # a security warning; the application starts
STARTUP_KEY_MISSING = "counts as missing"  # a recommended key; the application starts
STARTUP_REFUSES = "refuses to start"
# The tacn status that says the same as each verdict; a worse tacn status is "tacn is stricter".
STARTUP_EQUIVALENT = {STARTUP_PASSES: OK, STARTUP_WARNS: WARNING, STARTUP_KEY_MISSING: WARNING,
                      STARTUP_REFUSES: ERROR}


def startup_verdict(name: str, value: str | None) -> tuple[str, str] | None:
    """(verdict, why) of the application's start-up validator for ``name`` holding ``value`` (None: unset).

    None when the validator does not look at the item.
    """
    if name in STARTUP_REQUIRED:
        if not value:
            return STARTUP_REFUSES, "missing required configuration"
        if name in ("MONGODB_PORT", "REDIS_PORT"):
            problem = startup_port_problem(value)
            if problem:
                return STARTUP_REFUSES, problem
        if name == "JWT_SECRET" and len(value) < MIN_JWT_SECRET_LENGTH:
            return STARTUP_REFUSES, f"{len(value)} characters, the check needs at least {MIN_JWT_SECRET_LENGTH}"
    if name in STARTUP_RECOMMENDED:
        if not value:
            return STARTUP_KEY_MISSING, "not set"
        reason = startup_placeholder_reason(value)
        if reason:
            return STARTUP_KEY_MISSING, reason
    if name in STARTUP_SECURITY and (value or "") in STARTUP_SECURITY[name]:
        return STARTUP_WARNS, "uses a published default value"
    if name in STARTUP_REQUIRED or name in STARTUP_RECOMMENDED:
        return STARTUP_PASSES, ""
    if name in STARTUP_SECURITY:
        return STARTUP_PASSES, "" if value else "not checked when unset"
    return None


def bool_problem(value: str | None) -> str | None:
    text = clean_value(value).lower()
    return None if text in TRUE_WORDS + FALSE_WORDS else "is not true/false"


def is_true(value: str | None) -> bool:
    return clean_value(value).lower() in TRUE_WORDS


DEFAULT_CONNECT_TIMEOUT_S = 5.0
MAX_CONNECT_TIMEOUT_S = 600.0


def parse_connect_timeout(text: str | None) -> float:
    """TACN_CONNECT_TIMEOUT in seconds; ValueError (its message says what is allowed) when not usable."""
    if text is None or text == "":
        return DEFAULT_CONNECT_TIMEOUT_S
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_CONNECT_TIMEOUT_S:  # NaN and inf fail too
        raise ValueError(
            f"TACN_CONNECT_TIMEOUT must be seconds greater than 0 and at most {MAX_CONNECT_TIMEOUT_S:g}, got {text!r}"
        )
    return value


def url_problem(value: str | None) -> str | None:
    text = clean_value(value)
    return None if text.startswith(("http://", "https://")) else "is not an http(s) URL"


def database_note(value: str | None) -> str | None:
    """The application's quote writer ignores MONGODB_DATABASE: say so when they differ."""
    if clean_value(value) and clean_value(value) != DEFAULT_DATABASE:
        return (
            f"is not {DEFAULT_DATABASE!r}: the application writes stock_daily_quotes to "
            f"{DEFAULT_DATABASE!r} regardless"
        )
    return None
