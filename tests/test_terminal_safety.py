"""Text from the data never drives the operator's terminal, in any command.

A symbol, name or trade_date holding an ANSI escape, a C1 control, a bidi override, NUL, CR or a
backspace is stored in a real SQLite file; ``validate``, ``stats``, ``verify-fix`` and
``clean-invalid-trade-date`` (dry run) print it escaped (tacn.cli.render.terminal_text), Chinese text as
it is, and their ``--json`` output is valid JSON holding the original value.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.cli.render import Output, terminal_text
from tacn.pipelines.safe_text import escape_unprintable
from tests.clean_fixtures import quote
from tests.watch_fixtures import unsafe_chars

runner = CliRunner()

HOSTILE = ["\x1b[2J", "\x1b]8;;http://x\x07", "\x9b", "\x85", "\u202e", "\u202a", "\u2066", "\u2069", "\x00",
           "\r", "\x08", "\x07", "\x7f", "\u200b", "\ufeff", "\u2028"]
CHINESE = ["平安银行", "浦发银行", "宁德时代", "贵州茅台"]
# Text with at least one hostile piece; no surrogates (a SQLite TEXT value is UTF-8) and no newline (a newline
# is kept: it only starts a new line, as in any multi-line message).
hostile_text = st.lists(
    st.sampled_from(HOSTILE) | st.sampled_from(CHINESE)
    | st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n"), max_size=3),
    min_size=1, max_size=4,
).map("".join).filter(lambda s: bool(unsafe_chars(s))) | st.sampled_from(HOSTILE).map(lambda h: f"A{h}平安")


def seed_store(path: Path, value: str) -> str:
    """One good quote, one whose symbol and name hold ``value`` (with a row-number trade_date, so clean lists
    its symbol), one whose trade_date does; the store's URL."""
    from bson import ObjectId

    from tacn.pipelines.stores.sqlite import SQLiteStore

    with SQLiteStore(path) as opened:
        opened.upsert([quote()])
        opened.put_documents([
            {**quote(symbol=value), "_id": ObjectId(), "trade_date": "0", "name": value},
            {**quote(symbol="600000"), "_id": ObjectId(), "trade_date": value, "name": value},
        ])
    return f"sqlite:///{path}"


def assert_terminal_safe(text: str) -> None:
    raw = unsafe_chars(text) - {"\n"}
    assert not raw, f"raw unsafe characters reached the output: {sorted(map(hex, map(ord, raw)))}"


def run(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code in (0, 1), (result.exit_code, result.stdout, result.stderr)
    return result


COMMANDS = [["validate"], ["stats"], ["verify-fix"], ["clean-invalid-trade-date"]]


@given(value=hostile_text)
@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow])
def test_every_command_prints_data_escaped(value):
    with tempfile.TemporaryDirectory() as folder:
        url = seed_store(Path(folder) / "q.db", value)
        for command in COMMANDS:
            result = run(*command, "--store", url)
            assert_terminal_safe(result.stdout)
            assert_terminal_safe(result.stderr)
            if command == ["clean-invalid-trade-date"]:  # it lists the affected symbols on one line
                assert escape_unprintable(value, backslash=False) in result.stdout


@given(value=hostile_text)
@settings(max_examples=8, suppress_health_check=[HealthCheck.too_slow])
def test_json_output_is_valid_and_holds_the_original_value(value):
    with tempfile.TemporaryDirectory() as folder:
        url = seed_store(Path(folder) / "q.db", value)
        clean = run("clean-invalid-trade-date", "--store", url, "--json")
        assert_terminal_safe(clean.stdout)  # C1 and bidi as \uXXXX escapes: still the same JSON value
        report = json.loads(clean.stdout)
        assert value in {s["trade_date"] for s in report["samples"]}
        validate = run("validate", "--store", url, "--json")
        assert_terminal_safe(validate.stdout)
        rules = {r["name"]: r for r in json.loads(validate.stdout)["rules"]}
        assert value in {s["value"] for s in rules["trade_date_iso"]["samples"]}
        assert value in {s["key"]["symbol"] for s in rules["symbol_format"]["samples"]}


def test_chinese_names_print_as_they_are(tmp_path):
    url = seed_store(tmp_path / "q.db", "平安银行")
    out = run("clean-invalid-trade-date", "--store", url).stdout
    assert "平安银行" in out and "\\u" not in out


def test_known_attacks_are_shown_escaped(tmp_path):
    url = seed_store(tmp_path / "q.db", "\x1b[2J\u202eevil\x9b")
    out = run("clean-invalid-trade-date", "--store", url).stdout
    assert "\\x1b[2J\\u202eevil\\x9b" in out and "\x1b" not in out and "\u202e" not in out


def _output(**kwargs) -> tuple[Output, io.StringIO, io.StringIO]:
    """An Output whose consoles write to strings as to a terminal (no colours, so any ESC came from data)."""
    from rich.console import Console

    out = Output(**kwargs)
    stdout, stderr = io.StringIO(), io.StringIO()
    out.stdout = Console(file=stdout, force_terminal=True, color_system=None, width=200, highlight=False)
    out.stderr = Console(file=stderr, force_terminal=True, color_system=None, width=200, highlight=False)
    return out, stdout, stderr


@given(value=hostile_text)
@settings(max_examples=50)
def test_every_output_path_escapes_on_a_terminal(value):
    out, stdout, stderr = _output(verbose=True)
    out.table(f"title {value}", ["symbol", "name"], [[value, value], ["000001", "平安银行"]], caption=value)
    out.line(f"line {value}")
    out.verdict(f"verdict {value}", failed=True)
    out.info(f"info {value}")
    out.debug(f"debug {value}")
    out.warn(f"warn [bold]{value}")
    out.error(f"error {value}")
    out.fail("source_error", f"fail {value}", 3)
    assert_terminal_safe(stdout.getvalue())
    assert_terminal_safe(stderr.getvalue())
    assert "平安银行" in stdout.getvalue()
    for word in ("info", "debug", "error", "fail"):
        assert f"{word} {terminal_text(value)}" in stderr.getvalue()
    assert f"warn [bold]{terminal_text(value)}" in stderr.getvalue()  # markup in data is shown, not applied


def test_json_errors_and_results_escape_c1_bidi_and_lone_surrogates(capsys):
    value = "A\x1b[2J\x9b\u202e\ud800平安银行"
    out = Output(json_mode=True)
    out.json({"symbol": value})
    out.fail("source_error", f"bad {value}", 3)
    printed = capsys.readouterr()
    first, second = printed.out.split("\n}\n")
    assert_terminal_safe(printed.out)
    assert json.loads(first + "}")["symbol"] == value
    assert json.loads(second)["error"]["message"] == f"bad {value}"
    assert "平安银行" in printed.out
    assert_terminal_safe(printed.err)


@pytest.mark.parametrize("value", ["平安银行", "ST 海航", "a\\b", "[bold]x[/bold]"])
def test_printable_text_is_unchanged(value):
    assert terminal_text(value) == value
