"""The Examples section of each command's help (typer ``epilog=``), in one format.

Plain help (rich_markup_mode=None) rewraps paragraphs; a ``\\b`` line keeps the block as written.
tests/test_help.py parses every ``$ tacn …`` line with the command's own parser.
"""

from __future__ import annotations

PROMPT = "$ "


def examples(*pairs: tuple[str, str]) -> str:
    """``(comment, command line)`` pairs as the help's Examples section: a ``# comment`` line above each
    ``$ tacn …`` line, indented."""
    lines = ["\b", "Examples:"]
    for comment, command in pairs:
        lines += [f"  # {comment}", f"  {PROMPT}{command}"]
    return "\n".join(lines)
