"""Configuration: the process environment, ``./.env`` and where the store is.

Precedence for tacn's own settings: command-line option, then the process
environment, then ``.env``, then the built-in default. The process
environment beats ``.env`` as it does in the application (pydantic settings).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus

from pipelines.errors import ConfigError
from tacn_cli.secrets import register_secret

DEFAULT_ENV_FILE = Path(".env")
SECRET_NAMES = ("PASSWORD", "TOKEN", "SECRET", "API_KEY", "APIKEY")


@dataclass
class Env:
    """Merged configuration values and where each came from."""

    values: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # "environment" or ".env"
    env_file: Path | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return default if value is None or value == "" else value


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in SECRET_NAMES)


def load_env(env_file: Path | str | None = DEFAULT_ENV_FILE, *, environ: dict | None = None,
             required: bool = False) -> Env:
    """Read ``env_file`` (when it exists) under the process environment."""
    environ = dict(os.environ if environ is None else environ)
    env = Env()
    path = Path(env_file) if env_file is not None else None
    if path is not None and path.exists():
        from dotenv import dotenv_values

        try:
            file_values = dotenv_values(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read env file {path}: {exc}") from None
        for name, value in file_values.items():
            if value is not None:
                env.values[name] = value
                env.origin[name] = ".env"
        env.env_file = path
    elif path is not None and required:
        raise ConfigError(f"env file {path} does not exist")
    for name, value in environ.items():
        env.values[name] = value
        env.origin[name] = "environment"
    for name, value in env.values.items():
        if is_secret_name(name):
            register_secret(value)
    return env


def tacn_home(env: Env) -> Path:
    return Path(os.path.expanduser(env.get("TACN_HOME") or "~/.local/share/tacn"))


def default_store_url(env: Env) -> str:
    return f"sqlite:///{tacn_home(env) / 'tacn.db'}"


def mongo_url_from_app_env(env: Env) -> str:
    """The URI the application builds from MONGODB_* (credentials only when both are set)."""
    host = env.get("MONGODB_HOST", "localhost")
    port = env.get("MONGODB_PORT", "27017")
    database = env.get("MONGODB_DATABASE", "tradingagents")
    user, password = env.get("MONGODB_USERNAME"), env.get("MONGODB_PASSWORD")
    if user and password:
        auth_source = env.get("MONGODB_AUTH_SOURCE", "admin")
        return (
            f"mongodb://{quote_plus(user)}:{quote_plus(password)}@{host}:{port}/{database}"
            f"?authSource={quote_plus(auth_source)}"
        )
    return f"mongodb://{host}:{port}/{database}"


@dataclass(frozen=True)
class StoreChoice:
    url: str
    origin: str
    database: str | None = None  # overrides the URI's database
    note: str | None = None


def resolve_store(option: str | None, env: Env, *, database: str | None = None) -> StoreChoice:
    """Which store a command uses: --store, TACN_STORE, the app's MONGODB_*, else the SQLite default."""
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
