"""The help a user reads: a summary and real examples for every command, choices shown, one meaning per
option name (renamed options keep their old names as deprecated aliases), env vars, shell completion."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from tacn.cli.app import app
from tacn.cli.help_text import PROMPT
from tacn.cli.options import DEPRECATED_OPTIONS, replace_deprecated

runner = CliRunner()
GROUP = get_command(app)
COMMANDS = sorted(GROUP.commands)  # what `tacn --help` lists


def _walk(group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield " ".join((*prefix, name)), command
        if hasattr(command, "commands"):  # tacn migrate status|up|down
            yield from _walk(command, (*prefix, name))


ALL = dict(_walk(GROUP))  # every command and subcommand, by its path: "sync", "migrate up"
LEAVES = sorted(name for name, command in ALL.items() if not hasattr(command, "commands"))
EXAMPLE_CSV = Path(__file__).resolve().parent.parent / "examples" / "akshare_quotes_sample.csv"
# The listing of `tacn --help` at 80 columns: click's formatter is 78 wide and gives each summary
# what the longest command name leaves (tacn.cli's TyperGroup.format_commands).
SUMMARY_WIDTH = 78 - 6 - max(len(name) for name in COMMANDS)


def help_text(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def summary(command) -> str:
    return command.help.strip().split("\n\n")[0].strip()


def example_lines(epilog: str) -> list[tuple[str, str]]:
    """(comment, command line) of an Examples section: a ``# comment`` line above each ``$ tacn`` line."""
    lines = [line.strip() for line in epilog.splitlines()]
    assert "Examples:" in lines
    pairs = []
    for i, line in enumerate(lines):
        if line.startswith(PROMPT):
            assert lines[i - 1].startswith("# "), f"example without a comment: {line}"
            pairs.append((lines[i - 1][2:], line[len(PROMPT):]))
    return pairs


ALL_EXAMPLES = [(name, command_line) for name in sorted(ALL)
                for _, command_line in example_lines(ALL[name].epilog or "")]


def parse_example(command_line: str) -> str:
    """Parse ``tacn …`` as a real run does, down to its command (resilient parsing off); its path."""
    args = shlex.split(command_line)
    assert args[0] == "tacn"
    command, ctx, names = GROUP, GROUP.make_context("tacn", args[1:]), []
    while hasattr(command, "commands"):
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        names.append(name)
        ctx = command.make_context(name, rest, parent=ctx)
    assert not ctx.args, ctx.args  # nothing left over
    return " ".join(names)


# -- summaries and examples ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL))
def test_every_command_has_a_one_sentence_summary_that_fits_the_listing(name):
    command = ALL[name]
    text = summary(command)
    assert text.endswith(".") and "\n" not in text and text.count(". ") == 0, text
    assert len(text) <= SUMMARY_WIDTH, (text, len(text))
    assert command.get_short_help_str(SUMMARY_WIDTH) == text  # not cut, no "..."
    assert help_text(*name.split()).split("\n\n")[1].strip() == text  # the first line of its own help


def test_the_command_list_cuts_no_summary():
    listing = help_text().split("Commands:")[1].split("Examples:")[0]
    rows = [line for line in listing.splitlines() if line.strip()]
    assert len(rows) == len(COMMANDS)
    for row in rows:
        assert len(row) <= 80 and row.rstrip().endswith(".") and "..." not in row, row


@pytest.mark.parametrize("name", [*sorted(ALL), None])
def test_every_command_has_2_to_4_commented_examples_in_its_help(name):
    command = ALL[name] if name else GROUP
    pairs = example_lines(command.epilog or "")
    assert 2 <= len(pairs) <= 4, pairs
    shown = help_text(*(name.split() if name else []))
    for comment, command_line in pairs:
        assert command_line.startswith("tacn ") and comment
        assert f"{PROMPT}{command_line}" in shown  # printed as written: \b keeps click from rewrapping it
        assert len(f"    {PROMPT}{command_line}") <= 80, command_line  # as shown, indented


@pytest.mark.parametrize(("name", "command_line"), ALL_EXAMPLES)
def test_every_example_parses_with_the_commands_own_parser(name, command_line, capsys):
    """Each example's options exist and their values parse (types, ranges, choices, callbacks): the
    command's context is made with resilient parsing off, as a real run makes it."""
    parsed = parse_example(command_line)
    assert parsed == name or parsed.startswith(name + " ")  # a group's examples run its subcommands
    assert capsys.readouterr().err == ""  # no example uses a deprecated name


def test_the_root_examples_name_commands_and_options_that_exist():
    root_options = {opt for param in GROUP.params for opt in getattr(param, "opts", ())}
    for _, command_line in example_lines(GROUP.epilog):
        first = shlex.split(command_line)[1]
        if first.startswith("-"):
            assert first in root_options, command_line  # not parsed: it would install completion
        else:
            assert parse_example(command_line).split()[0] == first


# -- choices ---------------------------------------------------------------------------------------

FIXED_CHOICES = {  # (command, option): the choices its help must show
    **{(c, "--data-source"): "tushare|akshare|baostock"
       for c in ("validate", "clean-invalid-trade-date", "verify-fix", "repair")},
    **{(c, "--period"): "daily|weekly|monthly" for c in ("sync", "validate", "reconcile")},
    **{(c, "--layout"): "akshare|tushare|document" for c in ("sync", "validate")},
    **{(c, "--file-type"): "csv|jsonl|parquet" for c in ("sync", "validate")},
    ("sync", "--adjust"): "qfq|none|hfq",
    ("validate", "--severity-threshold"): "error|warning",
}


@pytest.mark.parametrize(("name", "option"), sorted(FIXED_CHOICES))
def test_a_fixed_choice_shows_its_values_not_str(name, option):
    shown = help_text(name)
    line = next(line for line in shown.splitlines() if line.strip().startswith(option + " "))
    assert f"<{FIXED_CHOICES[name, option]}>" in line, line


@pytest.mark.parametrize("name", sorted(ALL))
def test_no_help_shows_text_or_str_for_a_choice(name):
    shown = help_text(*name.split())
    assert "TEXT" not in shown
    for line in shown.splitlines():
        # An option whose help lists its values ("a, b or c") must be Enum-typed instead.
        if "<str>" in line:
            assert not re.search(r"\b(\w+), (\w+) or (\w+)\.?\s*$", line.split("<str>")[1]), line


def test_the_choices_are_the_librarys():
    from tacn.cli.commands.sync import PriceBasis
    from tacn.cli.commands.validate import Severity
    from tacn.cli.options import DataSource, FileType, Layout, Period
    from tacn.pipelines.price_basis import BASES
    from tacn.pipelines.sources.files import FILE_TYPES
    from tacn.pipelines.validate import THRESHOLDS
    from tacn.validators.records import DATA_SOURCES, PERIODS
    from tacn.validators.source_layouts import LAYOUTS

    def values(enum):
        return tuple(member.value for member in enum)

    assert values(DataSource) == DATA_SOURCES and values(Period) == PERIODS
    assert values(Layout) == LAYOUTS and values(FileType) == FILE_TYPES
    assert set(values(PriceBasis)) == set(BASES) and values(Severity) == THRESHOLDS


def test_a_choice_reaches_the_command_as_a_plain_string(tmp_path):
    result = runner.invoke(app, ["validate", str(EXAMPLE_CSV), "--layout", "akshare", "--period", "daily",
                                 "--severity-threshold", "warning", "--json"])
    payload = json.loads(result.stdout)
    assert payload["threshold"] == "warning" and result.exit_code in (0, 1), result.stderr


def test_a_bad_choice_is_a_usage_error_naming_the_choices():
    result = runner.invoke(app, ["validate", "--period", "hourly"])
    assert result.exit_code == 2
    assert "hourly" in result.stderr and "daily" in result.stderr and "monthly" in result.stderr


# -- one meaning per option name: renamed options, deprecated aliases ---------------------------------

ALIAS_VALUES = {"--timeout": "5", "--format": "akshare", "--chunk-size": "1000", "--since": "30d",
                "--count": "3", "--max-retries": "2"}
ALIASES = [(command, old, new) for command, renamed in DEPRECATED_OPTIONS.items() for old, new in renamed.items()]


@pytest.mark.parametrize(("name", "old", "new"), ALIASES)
def test_a_deprecated_name_parses_as_the_new_one_and_is_hidden_from_help(name, old, new, capsys):
    value = ALIAS_VALUES[old]
    command = GROUP.commands[name]
    with command.make_context(name, [new, value]) as ctx:
        expected = dict(ctx.params)
    capsys.readouterr()
    for args in ([old, value], [f"{old}={value}"]):
        with command.make_context(name, args) as ctx:
            assert ctx.params == expected
        err = capsys.readouterr().err
        assert err == f"warning: tacn {name} {old} is deprecated, use {new} (same meaning)\n"
    shown = help_text(name)
    assert re.search(rf"(?<![\w-]){re.escape(new)}(?![\w-])", shown)
    assert not re.search(rf"(?<![\w-]){re.escape(old)}(?![\w-])", shown), f"{old} still in tacn {name} --help"


def _alias_run(name: str, old: str, tmp_path: Path) -> list[str]:
    """A real run of ``tacn NAME`` that uses the deprecated ``old`` with --json and ends quickly."""
    store = ["--store", f"sqlite:///{tmp_path / 'alias.db'}"]
    dead = "http://127.0.0.1:9"  # nothing listens: watch gives up at once with --retries 0
    return {
        ("sync", "--timeout"): ["sync", "--source", f"file:{EXAMPLE_CSV}", "--dry-run", "--timeout", "5", *store],
        ("sync", "--format"): ["sync", "--source", f"file:{EXAMPLE_CSV}", "--dry-run", "--format", "akshare", *store],
        ("validate", "--format"): ["validate", str(EXAMPLE_CSV), "--format", "akshare"],
        ("validate", "--chunk-size"): ["validate", str(EXAMPLE_CSV), "--chunk-size", "10"],
        ("reconcile", "--since"): ["reconcile", "--since", "30d", *store],
        ("watch", "--count"): ["watch", "--api-url", dead, "--token", "t0ken-value", "--count", "1", "--retries", "0"],
        ("watch", "--max-retries"): ["watch", "--api-url", dead, "--token", "t0ken-value", "--max-retries", "0"],
    }[name, old] + ["--json"]


@pytest.mark.parametrize(("name", "old", "new"), ALIASES)
def test_a_deprecated_name_still_works_and_warns_on_stderr_only(name, old, new, tmp_path):
    result = runner.invoke(app, _alias_run(name, old, tmp_path), env={"TACN_CONNECT_TIMEOUT": "1"})
    warning = f"warning: tacn {name} {old} is deprecated, use {new} (same meaning)"
    assert result.stderr.count(warning) == 1, result.stderr
    assert "is deprecated" not in result.stdout
    if name == "watch":  # a stream: its errors stay on stderr, stdout holds only messages
        assert result.exit_code == 3 and result.stdout == ""
    else:
        assert result.exit_code in (0, 1, 3), result.stderr
        json.loads(result.stdout)  # one JSON document, nothing else


def test_an_option_value_or_anything_after_a_double_dash_is_never_renamed():
    args = ["--rejects", "--timeout", "--", "--format"]
    assert replace_deprecated("sync", args, {"--rejects"}) == (args, [])
    assert replace_deprecated("stats", ["--timeout", "1"], set()) == (["--timeout", "1"], [])


def test_no_option_name_has_two_meanings_across_commands():
    """The same name means the same thing everywhere: its help text says so (one shared definition, or a
    wording reviewed here). A name that differs is either on this list, with its reason, or a failure."""
    reviewed = {
        # --data-source: one data_source to select; reconcile compares two (A,B): the same thing, twice.
        "--data-source",
        # --since: records updated since (validate, verify-fix): one definition, two defaults.
        "--since",
        # --source: where sync pulls from; repair re-syncs from it: the same choice of source.
        "--source",
        # --max-samples, --junit, --failures-out, --json, --html: per rule (validate) / per check (reconcile).
        "--max-samples", "--junit", "--failures-out",
        # --backup-dir: where backups go (sync's re-base backups included).
        "--backup-dir",
        # --dry-run: change nothing (sync fetches and validates; migrate plans).
        "--dry-run",
        # --symbols: one parser (tacn.cli.options.parse_symbols); sync's help adds nothing new.
        "--symbols",
        # --period: sync fetches these bars; elsewhere it selects them.
        "--period",
        # --batch-size: records per batch (deleted by clean/repair, read and judged by validate).
        "--batch-size",
        # --limit: at most N (sync --status runs, watch messages).
        "--limit",
        # --retries: how many times a failure is retried before giving up (sync: a call; watch: a reconnect).
        "--retries",
        # --start: the first trade_date (sync fetches from it, reconcile compares from it).
        "--start",
        # --volume-units: the volume unit per data_source (validate expects it, reconcile assumes it).
        "--volume-units",
        # -v/--verbose: more on stderr (watch: heartbeats too) - the cli-output branch's shared option.
        "--verbose",
    }
    helps: dict[str, set[str]] = {}
    for name in LEAVES:
        for param in ALL[name].params:
            for opt in getattr(param, "opts", ()):
                if opt.startswith("--"):
                    helps.setdefault(opt, set()).add(param.help or "")
    differing = {opt for opt, texts in helps.items() if len(texts) > 1}
    assert differing <= reviewed, sorted(differing - reviewed)
    assert [opt for param in GROUP.commands["sync"].params for opt in getattr(param, "opts", ())
            if opt in ("--timeout", "--format")] == []


# -- environment variables -------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "variable"), [
    ("stats", "TACN_STORE"), ("sync", "TACN_STORE"), ("validate", "TACN_STORE"),
    ("migrate status", "TACN_STORE"),
    ("watch", "TACN_API_URL"), ("ws-stats", "TACN_API_URL"), ("watch", "TACN_TOKEN"),
])
def test_help_shows_the_environment_variable_an_option_reads(name, variable):
    assert f"[env var: {variable}]" in " ".join(help_text(*name.split()).split())  # help may wrap inside it


def test_a_store_from_the_environment_is_still_reported_as_such(tmp_path):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    assert runner.invoke(app, ["demo", "--store", url, "--json"]).exit_code == 0
    result = runner.invoke(app, ["stats", "--json"], env={"TACN_STORE": url})
    assert result.exit_code == 0 and "from TACN_STORE (environment)" in result.stderr


# -- shell completion -------------------------------------------------------------------------------

def _tacn(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "_TACN_COMPLETE=complete_bash"), ("zsh", "#compdef tacn"), ("fish", "complete --command tacn"),
])
def test_show_completion_prints_the_named_shells_script(shell, marker):
    proc = _tacn("--show-completion", shell)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout


def test_install_completion_writes_the_script_and_the_rc_line(tmp_path):
    proc = _tacn("--install-completion", "bash", env={"HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / ".bash_completions" / "tacn.sh"
    assert "_TACN_COMPLETE=complete_bash" in script.read_text()
    assert str(script.relative_to(tmp_path)) in (tmp_path / ".bashrc").read_text()
    assert "bash completion installed" in proc.stdout


def test_install_completion_detects_the_shell(tmp_path):
    """Without a name, the shell tacn runs from (its parent process, found by shellingham): bash here."""
    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    proc = subprocess.run(["bash", "-c", f'"{exe}" --install-completion; exit $?'], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "bash completion installed in" in proc.stdout
    assert (tmp_path / ".bash_completions" / "tacn.sh").is_file()


def _complete(words: str) -> list[str]:
    """What bash's tab asks tacn: COMP_WORDS and COMP_CWORD, as the installed script passes them."""
    parts = words.split(" ")
    proc = _tacn(env={"_TACN_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_completion_offers_commands():
    assert _complete("tacn sy") == ["sync"]
    assert {"validate", "verify-fix"} <= set(_complete("tacn v"))


def test_completion_offers_an_enum_options_values():
    assert _complete("tacn validate --severity-threshold ") == ["error", "warning"]
    assert _complete("tacn sync --period w") == ["weekly"]
    assert _complete("tacn migrate ") == ["status", "up", "down"]  # subcommands
    assert _complete("tacn migrate up --t") == ["--to"]


def test_completion_offers_new_option_names_only():
    offered = _complete("tacn watch --")
    assert "--limit" in offered and "--retries" in offered
    assert "--count" not in offered and "--max-retries" not in offered


def test_help_starts_fast_with_completion_on():
    """Completion is on (typer's options, shellingham): `tacn --help` still starts within 0.3 s.

    Measured as the child's CPU time (user + system), the best of 5: wall time on this shared 2-core
    machine mostly measures the other processes.
    """
    exe = os.path.join(os.path.dirname(sys.executable), "tacn")
    best = float("inf")
    for _ in range(5):
        proc = subprocess.Popen([exe, "--help"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        shown = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        best = min(best, usage.ru_utime + usage.ru_stime)
        assert proc.returncode == 0 and "--install-completion" in shown
    assert best <= 0.3, f"tacn --help took {best:.3f} s of CPU at best"


def test_quiet_keeps_a_deprecated_name_silent():
    """--quiet: errors and the exit code only; the renamed option still works."""
    loud = runner.invoke(app, ["validate", str(EXAMPLE_CSV), "--chunk-size", "10", "--json"])
    quiet = runner.invoke(app, ["validate", str(EXAMPLE_CSV), "--chunk-size", "10", "--json", "--quiet"])
    assert "is deprecated" in loud.stderr and "is deprecated" not in quiet.stderr
    assert json.loads(quiet.stdout)["records"] == json.loads(loud.stdout)["records"] > 0
