"""Text from a server, made safe to print: nothing it contains can drive the terminal.

A character is *unsafe* when it is not printable and not a space separator: control
characters (C0, DEL, C1: ESC starts the terminal's escape sequences), format characters
(bidirectional overrides such as U+202E, zero-width characters, the BOM, tag characters),
line and paragraph separators, surrogates, private-use and unassigned code points. In
Unicode terms, the general categories Cc, Cf, Cs, Co, Cn, Zl and Zp.

- :func:`escape_unprintable` is for lines a person reads: every unsafe character becomes a
  Python-style escape (``\\x1b``, ``\\n``, ``\\u202e``, ``\\U000e0001``) and a backslash
  becomes ``\\\\``, so the result is printable and the mapping is reversible
  (:func:`unescape`).
- :func:`json_safe` is for JSON text: unsafe characters (which JSON allows only inside
  strings) become ``\\uXXXX`` escapes, so the text is the same JSON value and safe to ``cat``.
"""

from __future__ import annotations

import unicodedata

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def is_unsafe(char: str) -> bool:
    return not char.isprintable() and unicodedata.category(char) != "Zs"


def escape_unprintable(text: str, *, backslash: bool = True) -> str:
    """``text`` with every unsafe character (and the backslash) escaped; unchanged when clean.

    ``backslash=False`` leaves backslashes as they are: for display of text that may already hold escapes
    (a ``repr`` of a bad value, a JSON sample), which doubling would make unreadable. Still nothing unsafe
    reaches the terminal, but the result is no longer reversible by :func:`unescape`.
    """
    if text.isprintable() and not (backslash and "\\" in text):  # the common case, decided in C
        return text
    return "".join(_escape_char(c) if (backslash and c == "\\") or is_unsafe(c) else c for c in text)


def _escape_char(char: str) -> str:
    short = _SHORT.get(char)
    if short:
        return short
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def unescape(text: str) -> str:
    """The inverse of :func:`escape_unprintable`."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def json_safe(text: str) -> str:
    """JSON text with its unsafe characters as ``\\uXXXX`` escapes: the same JSON value."""
    if text.isprintable():
        return text
    return "".join(_json_escape(c) if is_unsafe(c) else c for c in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON writes characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
