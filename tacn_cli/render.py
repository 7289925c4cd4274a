"""Output: rich tables on a terminal, only JSON on stdout with --json, diagnostics on stderr.

Everything printed passes :func:`tacn.cli.secrets.scrub`, and every text that reaches the terminal
(tables, lines, diagnostics, error lines) passes :func:`terminal_text`: control, bidi and other unprintable
characters from the data (an ANSI escape, C1 controls, U+202E, NUL, CR) are shown escaped, never sent raw.
JSON output stays the same JSON value with those characters as ``\\uXXXX`` escapes (:func:`_json_text`).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from tacn.cli.secrets import scrub

PIPED_WIDTH = 200


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for results (the library's one JSON-safe helper, imported when first needed)."""
    from tacn.pipelines.extjson import jsonable

    return jsonable(value)


def terminal_text(text: str) -> str:
    """``text`` scrubbed and safe for a terminal: line breaks kept, every other unsafe character escaped.

    One rule for every command (tacn.pipelines.safe_text.escape_unprintable): a symbol or name holding
    ``\\x1b[2J`` or U+202E prints as ``\\x1b[2J`` / ``\\u202e``; printable text (Chinese names) is unchanged.
    Backslashes are not doubled: messages quote bad values with ``repr``, which is already escaped (the
    lossless form is ``--json``).
    """
    from tacn.pipelines.safe_text import escape_unprintable

    return "\n".join(escape_unprintable(part, backslash=False) for part in scrub(text).split("\n"))


def _json_text(text: str) -> str:
    """JSON text safe to ``cat``: json.dumps(ensure_ascii=False) leaves C1 controls, bidi overrides and lone
    surrogates raw inside strings; they become ``\\uXXXX`` escapes, the same JSON value (line by line: the
    encoder already escapes a newline inside a string, so a raw one is indentation)."""
    from tacn.pipelines.safe_text import json_safe

    return "\n".join(json_safe(part) for part in text.split("\n"))


def error_fields(kind: str, message: str, exit_code: int) -> dict:
    return {"error": {"kind": kind, "message": scrub(message), "exit_code": exit_code}}


def error_object(kind: str, message: str, exit_code: int) -> str:
    """The one JSON object a one-shot command prints on stdout with --json when it ends with an error.

    A command whose result is itself the report of a failed run (sync, migrate) prints that
    result with these ``error`` fields added instead, so stdout still holds one object.
    """
    return _json_text(json.dumps(error_fields(kind, message, exit_code), ensure_ascii=False))


class Output:
    """One per command run: knows whether to speak JSON and where diagnostics go.

    ``streaming`` (watch --json: one message per line, appended to logs) keeps errors on
    stderr only; a one-shot command with --json also prints an error object on stdout.
    ``quiet`` (--quiet): only the error that ends the run (:meth:`fail`), a failed verdict
    (:meth:`verdict`) and, when asked for with --json, the JSON result. ``verbose`` (-v):
    :meth:`debug` lines on stderr too.
    """

    def __init__(self, json_mode: bool = False, *, streaming: bool = False, quiet: bool = False,
                 verbose: bool = False):
        from rich.console import Console

        if quiet and verbose:
            import typer

            raise typer.BadParameter("--quiet and --verbose contradict each other: use one")
        self.json_mode = json_mode
        self.streaming = streaming
        self.quiet = quiet
        self.verbose = verbose
        # Piped or in cron, rich would assume 80 columns and truncate cells; tables only
        # take the width they need, so allow a wide line instead.
        width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH
        self.stdout = Console(highlight=False, soft_wrap=False, width=width)
        self.stderr = Console(stderr=True, highlight=False, soft_wrap=True)

    # diagnostics: always stderr
    def info(self, message: str) -> None:
        if not self.quiet:
            self.stderr.print(terminal_text(message), markup=False)

    def debug(self, message: str) -> None:
        """A -v/--verbose diagnostic (timings, resolved settings): stderr, only when asked for."""
        if self.verbose:
            self.stderr.print(terminal_text(message), markup=False, style="dim")

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.stderr.print(f"[yellow]warning:[/yellow] {markup_text(message)}")

    def error(self, message: str, *, ends_run: bool = False) -> None:
        """An error line on stderr; with --quiet only the one that ends the run (``ends_run``)."""
        if ends_run or not self.quiet:
            self._error_line(message)

    def _error_line(self, message: str) -> None:
        self.stderr.print(f"[red]error:[/red] {markup_text(message)}")

    def fail(self, kind: str, message: str, exit_code: int) -> None:
        """The error that ends the command: one line on stderr (--quiet too), and with --json one object on stdout."""
        self._error_line(message)
        if self.json_mode and not self.streaming:
            sys.stdout.write(error_object(kind, message, exit_code) + "\n")
            sys.stdout.flush()

    # results: stdout
    def json(self, payload: Any) -> None:
        # Scrub the strings before encoding (a secret holding '"' or '\\' is escaped in JSON text),
        # and the text after (what the encoding put together).
        text = json.dumps(_scrub_strings(to_jsonable(payload)), ensure_ascii=False, indent=2)
        sys.stdout.write(_json_text(scrub(text)) + "\n")
        sys.stdout.flush()

    def line(self, message: str = "", style: str | None = None) -> None:
        if not self.quiet:
            self.stdout.print(markup_text(message), style=style)

    def verdict(self, message: str, *, failed: bool, style: str | None = None, detail: str = "",
                stderr: bool = False) -> None:
        """The run's last word, on stdout (``stderr``: as a diagnostic). With --quiet only a failed verdict is
        shown, as the one line on stderr, with ``detail`` (what failed) when the shown lines said it before."""
        if not self.quiet:
            self.info(message) if stderr else self.line(message, style=style)
        elif failed and not self.json_mode:
            self._error_line(f"{message}; {detail}" if detail else message)

    def table(self, title: str | None, columns: list[str], rows: list[list[Any]], *,
              styles: list[str | None] | None = None, caption: str | None = None) -> None:
        """A table on stdout. Keep ``title`` short (it must fit 80 columns on one line); details go in the
        rows or the ``caption``, which may wrap."""
        if self.quiet:
            return
        self.stdout.print(build_table(title, columns, rows, styles=styles, caption=caption))

    @property
    def progress_shown(self) -> bool:
        """Whether a progress display is wanted: a terminal on stderr, and not --quiet."""
        return not self.quiet and sys.stderr.isatty()


def build_table(title: str | None, columns: list[str], rows: list[list[Any]], *,
                styles: list[str | None] | None = None, caption: str | None = None):
    """The rich Table every command prints (numbers right-aligned, cells scrubbed); the title never wraps."""
    from rich.table import Table
    from rich.text import Text

    # A title is laid out in the table's width: the table is made at least as wide as its title, and a title
    # wider than the terminal is cut with an ellipsis rather than wrapped (details belong in the caption).
    heading = Text(terminal_text(title), no_wrap=True, overflow="ellipsis") if title else None
    table = Table(title=heading, title_justify="left", show_lines=False, min_width=heading.cell_len if heading else None,
                  caption=Text(terminal_text(caption)) if caption else None, caption_justify="left")
    for i, column in enumerate(columns):
        numeric = bool(rows) and all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows)
        table.add_column(column, justify="right" if numeric else "left")
    for i, row in enumerate(rows):
        table.add_row(*(markup_text(_cell(v)) for v in row), style=(styles[i] if styles else None))
    return table


def _scrub_strings(value: Any, seen: dict[str, str] | None = None) -> Any:
    """Every string and key scrubbed, each distinct one once (a result repeats its keys and values)."""
    seen = {} if seen is None else seen
    if isinstance(value, str):
        found = seen.get(value)
        if found is None:
            found = seen[value] = scrub(value)
        return found
    if isinstance(value, dict):
        return {_scrub_strings(k, seen): _scrub_strings(v, seen) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_strings(v, seen) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def markup_text(text: str) -> str:
    """:func:`terminal_text` for a string rich reads as markup: its square brackets escaped too."""
    from rich.markup import escape

    return escape(terminal_text(text))
