"""Secret values that must never be printed, and the scrubber that enforces it.

Every secret tacn reads (passwords, tokens, API keys) is registered here; all
output that can carry foreign text (error messages, URLs) passes ``scrub``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

_SECRETS: set[str] = set()
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@", re.I)
_TOKEN_PARAM = re.compile(r"(?P<key>[?&](?:token|access_token|api_key|apikey|key)=)[^&\s#'\"]+", re.I)
MIN_SECRET_LENGTH = 4  # shorter values would scrub ordinary words


def register_secret(value: str | None) -> None:
    if value and len(value) >= MIN_SECRET_LENGTH:
        for form in (value, quote_plus(value), quote(value, safe="")):
            _SECRETS.add(form)


def mask_value(value: str | None) -> str:
    """Whether set, the length and the last characters: never the whole value."""
    if not value:
        return "(not set)"
    tail = value[-4:] if len(value) >= 16 else value[-2:] if len(value) >= 8 else ""
    return f"***{tail} ({len(value)} chars)"


def scrub(text: str) -> str:
    """Mask URL passwords, token query parameters and every registered secret."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _TOKEN_PARAM.sub(lambda m: f"{m['key']}***", text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text
