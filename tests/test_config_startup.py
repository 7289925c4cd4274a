"""config-check against the application's start-up validator (app/core/startup_validator.py), rule by rule.

Each test states what the application does with a value (refuses to start, counts a key as
missing, warns, passes) and checks that config-check reports the same verdict in ``startup``,
a matching status, and says plainly where tacn is stricter.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.config.check import run_config_check
from tacn.validators import config_rules as rules

runner = CliRunner()
JWT = "jwt-Secret-9f8e7d6c5b4a3210"
VALID = {
    "MONGODB_HOST": "127.0.0.1", "MONGODB_PORT": "27017", "MONGODB_DATABASE": "tradingagents",
    "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "JWT_SECRET": JWT,
    "DEEPSEEK_API_KEY": "sk-deepseek-0123456789ab", "DASHSCOPE_API_KEY": "sk-dashscope-0123456789",
    "TUSHARE_TOKEN": "tushareToken0123456789abcdef", "CSRF_SECRET": "csrf-Secret-0123456789abcdef",
}


@pytest.fixture(autouse=True)
def _only_what_the_test_sets(monkeypatch):
    for item in rules.ITEMS:
        monkeypatch.delenv(item.name, raising=False)
    monkeypatch.delenv("TACN_CONNECT_TIMEOUT", raising=False)


def check(env: dict, env_file=None) -> dict:
    result = run_config_check(env, env_file, offline=True)
    return {item.name: item for item in result.items}


def test_a_valid_configuration_passes_every_startup_rule():
    found = check(VALID)
    for name in (*rules.STARTUP_REQUIRED, *rules.STARTUP_RECOMMENDED, "CSRF_SECRET"):
        assert found[name].startup == rules.STARTUP_PASSES, name
        assert found[name].status == rules.OK and not found[name].stricter, name


# -- required items: missing means the application refuses to start ---------------------------


@pytest.mark.parametrize("name", rules.STARTUP_REQUIRED)
@pytest.mark.parametrize("value", [None, ""])
def test_each_required_item_missing_refuses_to_start(name, value):
    env = {k: v for k, v in VALID.items() if k != name}
    if value is not None:
        env[name] = value
    item = check(env)[name]
    assert item.startup == rules.STARTUP_REFUSES and "missing" in item.startup_reason
    assert item.status == rules.ERROR and not item.stricter


# -- ports: isdigit() on the raw value, 1-65535 --------------------------------------------------


@pytest.mark.parametrize("name", ["MONGODB_PORT", "REDIS_PORT"])
@pytest.mark.parametrize("value", ["27017 ", " 27017", '"27017"', "abc", "0", "65536", "-1", "27017.5", "0x6b"])
def test_a_port_the_application_refuses(name, value):
    item = check({**VALID, name: value})[name]
    assert item.startup == rules.STARTUP_REFUSES
    assert item.status == rules.ERROR and repr(value) in item.message


@pytest.mark.parametrize("name", ["MONGODB_PORT", "REDIS_PORT"])
@pytest.mark.parametrize("value", ["1", "65535", "0027017"])
def test_a_port_the_application_accepts(name, value):
    item = check({**VALID, name: value})[name]
    assert item.startup == rules.STARTUP_PASSES and item.status == rules.OK


def test_a_port_quoted_with_a_blank_in_the_env_file_refuses_to_start(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('MONGODB_PORT="27017 "\nREDIS_PORT=6379\n')
    env = {k: v for k, v in VALID.items() if k not in ("MONGODB_PORT", "REDIS_PORT")}
    found = check(env, env_file)
    assert found["MONGODB_PORT"].startup == rules.STARTUP_REFUSES and found["MONGODB_PORT"].status == rules.ERROR
    assert found["REDIS_PORT"].startup == rules.STARTUP_PASSES  # python-dotenv drops an unquoted trailing blank


def test_a_superscript_digit_passes_isdigit_but_crashes_the_check():
    item = check({**VALID, "MONGODB_PORT": "²"})["MONGODB_PORT"]
    assert item.startup == rules.STARTUP_REFUSES and "crashes" in item.message


def test_non_ascii_digits_pass_the_startup_check_but_tacn_is_stricter():
    item = check({**VALID, "MONGODB_PORT": "２７０１７"})["MONGODB_PORT"]
    assert item.startup == rules.STARTUP_PASSES
    assert item.status == rules.ERROR and item.stricter.startswith("tacn is stricter")


# -- JWT_SECRET: length of the raw value; known defaults warn in the app, fail in tacn ---------------


@pytest.mark.parametrize("value, verdict", [("x" * 15, rules.STARTUP_REFUSES), ("x" * 16, rules.STARTUP_PASSES),
                                            (" " * 2 + "x" * 14, rules.STARTUP_PASSES)])
def test_jwt_secret_length_is_counted_on_the_raw_value(value, verdict):
    item = check({**VALID, "JWT_SECRET": value})["JWT_SECRET"]
    assert item.startup == verdict
    assert item.status == (rules.ERROR if verdict == rules.STARTUP_REFUSES else rules.OK)


@pytest.mark.parametrize("value", rules.KNOWN_JWT_DEFAULTS)
def test_the_default_jwt_secret_is_a_warning_in_the_app_and_an_error_in_tacn(value):
    item = check({**VALID, "JWT_SECRET": value})["JWT_SECRET"]
    assert item.startup == rules.STARTUP_WARNS
    assert item.status == rules.ERROR
    assert "mint an admin token" in item.message and "only warns" in item.message
    assert item.stricter.startswith("tacn is stricter: the application's start-up check warns")


# -- recommended keys: the app's placeholder rules, case-sensitive, no '...' ---------------------------


@pytest.mark.parametrize("name", rules.STARTUP_RECOMMENDED)
@pytest.mark.parametrize(
    "value, reason",
    [(None, "not set"), ("your_token_value_123", "your_"), ("your-token-value-123", "your-"),
     ("token_value_123_here", "_here"), ("token-value-123-here", "-here"), ("0123456789", "10 characters"),
     ("'  short  '", "characters"), ('"your_quoted_key_1234"', "your_")],
)
def test_placeholder_keys_count_as_missing_like_the_app(name, value, reason):
    env = {k: v for k, v in VALID.items() if k != name}
    if value is not None:
        env[name] = value
    item = check(env)[name]
    assert item.startup == rules.STARTUP_KEY_MISSING and reason in item.startup_reason
    assert item.status == rules.WARNING and item.set is False and not item.stricter


@pytest.mark.parametrize("value", ["YOUR_TOKEN_VALUE_123", "Your-token-value-123", "token_value_123_HERE",
                                   "01234567890"])
def test_the_placeholder_rules_are_case_sensitive_and_need_more_than_10_characters(value):
    item = check({**VALID, "TUSHARE_TOKEN": value})["TUSHARE_TOKEN"]
    assert item.startup == rules.STARTUP_PASSES
    assert item.status == rules.OK and item.set is True


def test_three_dots_pass_the_startup_check_but_the_runtime_helper_rejects_them():
    item = check({**VALID, "DEEPSEEK_API_KEY": "sk-abcdef...uvwxyz123"})["DEEPSEEK_API_KEY"]
    assert item.startup == rules.STARTUP_PASSES
    assert item.status == rules.WARNING and item.set is False
    assert "runtime key helper" in item.message and item.stricter.startswith("tacn is stricter")


# -- CSRF_SECRET: the app warns on its known defaults ---------------------------------------------------


@pytest.mark.parametrize("value", rules.KNOWN_CSRF_DEFAULTS)
def test_the_default_csrf_secret_warns_like_the_app(value):
    item = check({**VALID, "CSRF_SECRET": value})["CSRF_SECRET"]
    assert item.startup == rules.STARTUP_WARNS and item.status == rules.WARNING and not item.stricter


def test_the_cli_shows_the_startup_verdict_and_where_tacn_is_stricter():
    env = {**VALID, "JWT_SECRET": rules.KNOWN_JWT_DEFAULTS[0], "MONGODB_PORT": "27017 "}
    result = runner.invoke(app, ["config-check", "--offline", "--json"], env=env)
    assert result.exit_code == 1
    found = {item["name"]: item for item in json.loads(result.stdout)["items"]}
    assert found["JWT_SECRET"]["startup"] == "warns" and found["JWT_SECRET"]["status"] == "error"
    assert found["MONGODB_PORT"]["startup"] == "refuses to start"
    table = runner.invoke(app, ["config-check", "--offline"], env=env)
    assert "app start-up" in table.stdout and "tacn is stricter" in table.stdout


# -- the rules against the application's own expressions, over generated text ---------------------

def app_port_ok(value: str) -> bool | None:
    """The application's port validator; None where it raises."""
    try:
        return value.isdigit() and 1 <= int(value) <= 65535
    except ValueError:
        return None


def app_key_ok(value: str) -> bool:
    """The application's _is_valid_api_key, restated."""
    text = value.strip().strip('"').strip("'") if value else ""
    return bool(text) and not text.startswith(("your_", "your-")) and not text.endswith(("_here", "-here")) \
        and len(text) > 10


@given(st.one_of(st.text(max_size=8), st.text(alphabet="0123456789 \"'²٣５-+.", max_size=7),
                 st.integers(-10, 70000).map(str)))
def test_port_verdict_is_the_applications_expression(value):
    expected = app_port_ok(value)
    verdict = rules.startup_verdict("MONGODB_PORT", value)[0]
    assert (verdict == rules.STARTUP_PASSES) == bool(expected), value


@given(st.one_of(st.text(max_size=24), st.builds(lambda a, b, c: a + b + c,
                                                  st.sampled_from(["", "your_", "your-", "YOUR_", " '", '"']),
                                                  st.text(alphabet="abcXYZ019._-", max_size=14),
                                                  st.sampled_from(["", "_here", "-here", "_HERE", "' ", '"']))))
def test_key_verdict_is_the_applications_expression(value):
    verdict = rules.startup_verdict("TUSHARE_TOKEN", value)[0]
    assert (verdict == rules.STARTUP_PASSES) == app_key_ok(value), value
