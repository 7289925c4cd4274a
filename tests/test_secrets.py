"""One URL scrubber for every output path: passwords with any character, secret URI options.

Property-tested over generated passwords and option sets, then end to end through the
CLI's store line, errors, --json error objects and TACN_DEBUG tracebacks.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.pipelines.config.secrets import is_secret_option, register_url_secrets, scrub, scrub_url
from tacn.pipelines.stores import mask_url

runner = CliRunner()


@pytest.fixture(autouse=True)
def _forget_generated_secrets():
    """Generated secrets ("000000", "aaaaaa") would otherwise mask text in later tests of the session."""
    from tacn.pipelines.config.secrets import _SECRETS

    kept = set(_SECRETS)
    yield
    _SECRETS.clear()
    _SECRETS.update(kept)

USER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=10)
# Passwords as operators paste them: anything, '/', '@', ':', '?', '#', '%' included.
PASSWORD = st.text(st.characters(blacklist_categories=("Cs",)), min_size=6, max_size=24)
HOST = st.sampled_from(["127.0.0.1:9", "db1.example.internal:27017", "db1:27017,db2:27018", "[::1]:27017",
                        "mongo"])
DATABASE = st.sampled_from(["", "/", "/tradingagents", "/admin"])
SECRET_OPTION_NAMES = st.one_of(
    st.sampled_from(["password", "tlsCertificateKeyFilePassword", "authMechanismProperties", "token",
                     "access_token", "api_key", "apiKey", "secret", "client_secret", "sasKey"]),
    st.builds(lambda a, w, b: a + w + b, st.sampled_from(["", "x", "my_"]),
              st.sampled_from(["password", "Secret", "TOKEN", "key"]), st.sampled_from(["", "_x", "Id"])),
)
PLAIN_OPTION_NAMES = st.sampled_from(["authSource", "replicaSet", "tls", "retryWrites", "appname", "w"])
# Option values: anything but the option separators and blanks (a raw '&' would start a new option for
# pymongo too); long enough that finding one in the output means it leaked.
SECRET_VALUE = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters="&;#"),
                       min_size=8, max_size=30)
PLAIN_VALUE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)


@st.composite
def urls(draw):
    user, password, host, database = draw(USER), draw(PASSWORD), draw(HOST), draw(DATABASE)
    secrets = draw(st.lists(st.tuples(SECRET_OPTION_NAMES, SECRET_VALUE), max_size=3))
    plain = draw(st.lists(st.tuples(PLAIN_OPTION_NAMES, PLAIN_VALUE), max_size=3))
    if secrets and draw(st.booleans()):  # the AWS form: properties inside the value
        secrets[0] = ("authMechanismProperties", "AWS_SESSION_TOKEN:" + secrets[0][1])
    options = draw(st.permutations(secrets + plain))
    query = ("?" + "&".join(f"{n}={v}" for n, v in options)) if options else ""
    path = database if database or not query else "/"
    url = f"mongodb://{user}:{password}@{host}{path}{query}"
    return url, user, password, host, [v for _, v in secrets], " ".join(v for _, v in plain)


def leaked(text: str, secret: str, visible: str) -> bool:
    """The secret appears in ``text`` other than inside what is meant to stay visible."""
    return secret in text and secret not in visible


@settings(max_examples=400, deadline=None)
@given(urls())
def test_scrub_url_hides_the_password_and_every_secret_option(generated):
    url, user, password, host, secret_values, plain_values = generated
    shown = scrub_url(url)
    visible = f"mongodb://{user}@{host}/tradingagents?authSource=replicaSet=tls=retryWrites=appname=w= {plain_values}"
    for secret in [password, *secret_values]:
        assert not leaked(shown, secret, visible), (url, shown)
    assert shown.startswith(f"mongodb://{user}:***@")
    if "@" not in url.split(password, 1)[1]:  # nothing after the userinfo that could pass for one
        assert f"@{host}" in shown
    assert mask_url(url) == shown  # the stores' display uses the same scrubber


@settings(max_examples=300, deadline=None)
@given(urls(), st.sampled_from(["cannot reach MongoDB at {url}: timed out",
                                "bad URL '{url}' (authentication failed for {password})",
                                "Traceback …\n  File x\nValueError: {url}\n"]))
def test_scrub_hides_them_inside_any_message(generated, template):
    url, user, password, host, secret_values, plain_values = generated
    assume(all(len(s.strip()) >= 6 for s in [password, *secret_values]))
    register_url_secrets(url)
    text = scrub(template.format(url=url, password=password))
    visible = f"mongodb://{user}@{host}/tradingagents?authSource=replicaSet=tls=retryWrites=appname=w= {plain_values}"
    for secret in [password, *secret_values]:
        assert not leaked(text, secret, visible + template), (url, text)


@pytest.mark.parametrize("name", ["tlsCertificateKeyFilePassword", "authMechanismProperties", "password",
                                  "PASSWORD", "x_token", "apikey", "client_secret", "sasKey"])
def test_secret_option_names(name):
    assert is_secret_option(name)


@pytest.mark.parametrize("name", ["authSource", "replicaSet", "tls", "w", "appname", "readPreference"])
def test_plain_option_names(name):
    assert not is_secret_option(name)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("mongodb://ops:pa/ss@db:27017/tradingagents", "mongodb://ops:***@db:27017/tradingagents"),
        ("mongodb://ops:a@b/c:d@db/x?authSource=admin", "mongodb://ops:***@db/x?authSource=admin"),
        ("mongodb://db/x?tlsCertificateKeyFilePassword=s3cret&tls=true",
         "mongodb://db/x?tlsCertificateKeyFilePassword=***&tls=true"),
        ("mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:FQo/Gd+x==",
         "mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=***"),
        ("ws://localhost:8000/api/ws/notifications?token=eyJ.abc.def", "ws://localhost:8000/api/ws/notifications?token=***"),
        ("sqlite:////tmp/a:b@c/q.db", "sqlite:////tmp/a:b@c/q.db"),
        ("mongodb://user@db/x", "mongodb://user@db/x"),
    ],
)
def test_known_forms(url, expected):
    assert scrub_url(url) == expected


# -- every output path of the CLI ------------------------------------------------------------

HOSTILE = ("mongodb://ops:Pa/ss@w:rd#1@127.0.0.1:9/tradingagents?authSource=admin"
           "&tlsCertificateKeyFilePassword=KeyFilePw123&authMechanismProperties=AWS_SESSION_TOKEN:SessTok/456+")
SECRETS = ("Pa/ss@w:rd#1", "KeyFilePw123", "SessTok/456+")


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_store_line_errors_and_json_never_show_the_secrets(json_flag, monkeypatch):
    monkeypatch.setenv("TACN_CONNECT_TIMEOUT", "0.3")
    result = runner.invoke(app, ["stats", "--store", HOSTILE, *json_flag])
    assert result.exit_code in (2, 3)
    assert "store: mongodb://ops:***@127.0.0.1:9" in result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr
    if json_flag:
        assert json.loads(result.stdout)["error"]["exit_code"] == result.exit_code


def test_tacn_debug_traceback_is_scrubbed(monkeypatch):
    import tacn.pipelines.stores as stores

    def explode(url, **_):
        raise RuntimeError(f"driver blew up on {url} (password {SECRETS[0]})")

    monkeypatch.setattr(stores, "open_store", explode)
    monkeypatch.setenv("TACN_DEBUG", "1")
    result = runner.invoke(app, ["stats", "--store", HOSTILE, "--json"])
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "RuntimeError" in result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr


def test_json_output_scrubs_a_secret_that_json_would_escape(capsys):
    from tacn.cli.render import Output
    from tacn.pipelines.config.secrets import register_secret

    secret = 'pa"ss\\wo\nrd-1234'
    register_secret(secret)
    Output(json_mode=True).json({"message": f"the driver said {secret}", secret: 1})
    printed = capsys.readouterr().out
    assert json.loads(printed) == {"message": "the driver said ***", "***": 1}
    assert json.dumps(secret)[1:-1] not in printed
