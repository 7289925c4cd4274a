"""Reading configuration the way the application does: the process environment over a ``.env`` file.

Used by the CLI's settings and by jobs that report where each value comes from
(config-check), so the file is parsed one way everywhere (python-dotenv).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus

from tacn.pipelines.config.secrets import register_secret
from tacn.pipelines.errors import ConfigError
from tacn.pipelines.streams import connect_timeout, open_input, read_bounded

DEFAULT_ENV_FILE = Path(".env")
SECRET_NAMES = ("PASSWORD", "TOKEN", "SECRET", "API_KEY", "APIKEY")
MAX_ENV_FILE_BYTES = 1024 * 1024  # a .env is a few kilobytes; /dev/zero is not one


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


def register_secrets(values: dict[str, str | None]) -> None:
    """Register every value whose name says it is a secret, so no output can show it."""
    for name, value in values.items():
        if value and is_secret_name(name):
            register_secret(value)


def read_env_file(path: Path | str, *, timeout_s: float | None = None) -> dict[str, str]:
    """The variables a ``.env`` file sets (python-dotenv syntax). Unreadable → ConfigError.

    The file may be a stream (``--env-file <(vault …)``, a FIFO): it is read once, at most
    MAX_ENV_FILE_BYTES, and a FIFO nobody writes to within ``timeout_s`` (default
    TACN_CONNECT_TIMEOUT) is a ConfigError rather than a hang.
    """
    import io

    from dotenv import dotenv_values

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"env file {path} is a directory")
    timeout_s = connect_timeout() if timeout_s is None else timeout_s
    try:
        with open_input(path, what="env file", timeout_s=timeout_s, error=ConfigError) as fh:
            data = read_bounded(fh, what=f"env file {path}", limit=MAX_ENV_FILE_BYTES, error=ConfigError)
        values = dotenv_values(stream=io.StringIO(data.decode("utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read env file {path}: {type(exc).__name__}: {exc}") from None
    file_values = {name: value for name, value in values.items() if value is not None}
    register_secrets(file_values)
    return file_values


def load_env(env_file: Path | str | None = DEFAULT_ENV_FILE, *, environ: dict | None = None,
             required: bool = False) -> Env:
    """Read ``env_file`` (when it exists) under the process environment."""
    environ = dict(os.environ if environ is None else environ)
    env = Env()
    path = Path(env_file) if env_file is not None else None
    if path is not None and path.exists():
        for name, value in read_env_file(path).items():
            env.values[name] = value
            env.origin[name] = ".env"
        env.env_file = path
    elif path is not None and required:
        raise ConfigError(f"env file {path} does not exist")
    for name, value in environ.items():
        env.values[name] = value
        env.origin[name] = "environment"
    register_secrets(env.values)
    return env


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
