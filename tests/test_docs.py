"""The documentation stays true: docs/cli.md is the commands' current help, every command has help
text and a summary, the README stays short and names its test command, and every relative link
in README.md and docs/*.md reaches a file (and a heading, when it names one)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 200


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", REPO / "scripts" / "gen_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gen_cli_docs = _load_generator()


def _markdown_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


# -- docs/cli.md ----------------------------------------------------------------------------------


def test_cli_reference_is_fresh():
    expected = gen_cli_docs.render_markdown()
    current = gen_cli_docs.CLI_MD.read_text(encoding="utf-8") if gen_cli_docs.CLI_MD.exists() else ""
    assert current == expected, f"docs/cli.md is stale (the commands' help changed): run {gen_cli_docs.REGENERATE}"


def test_cli_reference_has_every_command():
    text = gen_cli_docs.CLI_MD.read_text(encoding="utf-8")
    commands = gen_cli_docs.walk_commands()
    assert len(commands) > 10  # the whole tree was walked, not just the root
    for command in commands:
        assert f"\n## {command.name}\n" in text, f"docs/cli.md has no section for {command.name!r}"
        assert f"Usage: {command.name}" in command.rendered


@pytest.mark.parametrize("command", gen_cli_docs.walk_commands(), ids=lambda c: c.name)
def test_every_command_has_help_and_a_summary(command):
    assert command.help_text, f"{command.name} has no help text (a docstring or help=)"
    assert command.summary, f"{command.name} has no summary line for the command list"


def test_cli_reference_is_plain_and_fixed_width(monkeypatch):
    text = gen_cli_docs.render_markdown()
    assert "\x1b[" not in text, "colour escape sequences in the generated page"
    for columns in ("40", "200"):  # the terminal that generates the page does not change it
        monkeypatch.setenv("COLUMNS", columns)
        monkeypatch.setenv("FORCE_COLOR", "1")
        assert gen_cli_docs.render_markdown() == text
    assert "Usage: tacn sync [OPTIONS]" in text


def test_generator_check_mode_reports_a_stale_page(tmp_path, capsys):
    stale = tmp_path / "cli.md"
    stale.write_text("# old\n", encoding="utf-8")
    assert gen_cli_docs.main(["--check", "--output", str(stale)]) == 1
    assert "make docs" in capsys.readouterr().err
    assert gen_cli_docs.main(["--output", str(stale)]) == 0
    assert gen_cli_docs.main(["--check", "--output", str(stale)]) == 0


# -- the README -----------------------------------------------------------------------------------


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move details to docs/"


def test_readme_states_the_test_command():
    """CI runs the command the README's Tests section gives: it must stay `make test`."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Tests\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Tests' section"
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section.group(1), re.S)
    assert block, "the README's Tests section has no code block"
    commands = [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["make test"]
    assert re.search(r"^test:", (REPO / "Makefile").read_text(encoding="utf-8"), re.M)


def test_readme_keeps_the_differences_table():
    text = README.read_text(encoding="utf-8")
    assert text.count("## Where tacn differs from the application, and why") == 1
    section = text.split("## Where tacn differs from the application, and why", 1)[1].split("\n## ", 1)[0]
    assert "| what | the application | tacn | why |" in section


# -- links ------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _without_code(text: str) -> str:
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    heading = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}", "", heading.strip())
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    for match in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M):
        slug = github_anchor(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    found.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    return found


def test_github_anchor_matches_githubs_rules():
    assert github_anchor("`tacn sync`") == "tacn-sync"
    assert github_anchor("Where tacn differs from the application, and why") == \
        "where-tacn-differs-from-the-application-and-why"
    assert github_anchor("Cron: sync with the lock and exit codes") == "cron-sync-with-the-lock-and-exit-codes"
    assert github_anchor("`tacn restore BACKUP [--json]`") == "tacn-restore-backup---json"


def _relative_links():
    for page in _markdown_pages():
        for target in LINK.findall(_without_code(page.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, …
                continue
            yield page, target


@pytest.mark.parametrize(("page", "target"), list(_relative_links()),
                         ids=lambda value: value.name if isinstance(value, Path) else value)
def test_relative_link_resolves(page, target):
    path_part, _, anchor = target.partition("#")
    destination = (page.parent / path_part).resolve() if path_part else page
    assert destination.exists(), f"{page.relative_to(REPO)} links to {target!r}: no such file"
    if anchor and destination.suffix == ".md":
        assert anchor in anchors(destination), \
            f"{page.relative_to(REPO)} links to {target!r}: {destination.name} has no heading with that anchor"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {target.partition("#")[0] for page, target in _relative_links() if page == README}
    for page in sorted(DOCS.glob("*.md")):
        assert f"docs/{page.name}" in linked, f"README.md does not link docs/{page.name}"
