"""Configuration: the process environment, ``./.env`` and where the store is.

Precedence for tacn's own settings: command-line option, then the process
environment, then ``.env``, then the built-in default. The process
environment beats ``.env`` as it does in the application (pydantic settings).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The generic reading lives in the library (config-check reports each source); re-exported here.
from tacn.pipelines.config.env import (  # noqa: F401
    DEFAULT_ENV_FILE,
    SECRET_NAMES,
    Env,
    is_secret_name,
    load_env,
    mongo_url_from_app_env,
)


def tacn_home(env: Env) -> Path:
    return Path(os.path.expanduser(env.get("TACN_HOME") or "~/.local/share/tacn"))


def default_store_url(env: Env) -> str:
    return f"sqlite:///{tacn_home(env) / 'tacn.db'}"


@dataclass(frozen=True)
class StoreChoice:
    url: str
    origin: str
    database: str | None = None  # overrides the URI's database
    note: str | None = None


def connect_timeout_s(env: Env) -> float:
    """TACN_CONNECT_TIMEOUT (environment or .env) in seconds; a bad value is a usage error (exit 2)."""
    from tacn.pipelines.errors import UsageError
    from tacn.validators.config_rules import parse_connect_timeout

    try:
        return parse_connect_timeout(env.get("TACN_CONNECT_TIMEOUT"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def resolve_store(option: str | None, env: Env, *, database: str | None = None) -> StoreChoice:
    """Which store a command uses: --store, TACN_STORE, the app's MONGODB_*, else the SQLite default."""
    if option is not None and not option.strip():
        from tacn.pipelines.errors import UsageError

        # An empty --store is a mistake (an unset variable in a script), never "use the default".
        raise UsageError("--store is empty: give sqlite:///PATH or mongodb://…, or leave --store out for the default")
    if option:
        return StoreChoice(option, "--store", database)
    if env.get("TACN_STORE"):
        return StoreChoice(env.get("TACN_STORE"), f"TACN_STORE ({env.origin['TACN_STORE']})", database)
    if any(env.get(name) for name in ("MONGODB_HOST", "MONGODB_PORT", "MONGODB_USERNAME")):
        origin = env.origin.get("MONGODB_HOST") or env.origin.get("MONGODB_PORT") or "environment"
        note = None
        configured = env.get("MONGODB_DATABASE", "tradingagents")
        if database is None and configured != "tradingagents":
            note = (
                f"MONGODB_DATABASE is {configured!r} but the application writes daily quotes to "
                "'tradingagents'; using 'tradingagents' (pass --database to override)"
            )
        return StoreChoice(mongo_url_from_app_env(env), f"MONGODB_* ({origin})", database or "tradingagents", note)
    return StoreChoice(default_store_url(env), "default (TACN_HOME)", database)
