"""Secret values that must never be printed, and the scrubber that enforces it.

Every secret tacn reads (passwords, tokens, API keys) is registered here; all
output that can carry foreign text (error messages, URLs) passes ``scrub``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote, unquote_plus

_SECRETS: set[str] = set()
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
_HOST_RUN = re.compile(r"[A-Za-z0-9._\-:,%~\[\]]+")  # host[:port][,host…] right after the userinfo's '@'
_OPTION = re.compile(r"(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)=(?P<value>.*)", re.S)
# A query option whose value is a secret: any name containing one of these (case-insensitive),
# e.g. password, tlsCertificateKeyFilePassword, token, access_token, api_key, secret, sig,
# and authMechanismProperties (its values carry AWS_SESSION_TOKEN:…).
SECRET_OPTION_WORDS = ("password", "passwd", "pwd", "secret", "token", "key", "credential", "sig",
                       "authmechanismproperties")
_TOKEN_PARAM = re.compile(r"(?P<key>[?&;](?:[A-Za-z0-9_.\-]*(?:token|key|secret|password)[A-Za-z0-9_.\-]*)=)"
                          r"[^&;\s#'\"]+", re.I)
MIN_SECRET_LENGTH = 4  # shorter values would scrub ordinary words
MASK = "***"


def is_secret_option(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_OPTION_WORDS)


def _userinfo_ends(rest: str) -> list[int]:
    """Indexes of every '@' that may end the userinfo, the likeliest first.

    Likeliest: the last '@' whose host list runs to the end or to '/', '?', '#'; then, for a
    URL quoted in a message ("(mongodb://u:p@h)"), the last one followed by any host list.
    """
    strict, loose = [], []
    at = rest.rfind("@")
    while at >= 0:
        hosts = _HOST_RUN.match(rest, at + 1)
        if hosts:
            (strict if hosts.end() == len(rest) or rest[hosts.end()] in "/?#" else loose).append(at)
        at = rest.rfind("@", 0, at)
    return strict + loose


def _options(query: str) -> list[tuple[str | None, str]]:
    """``a=1&b=2`` as [(name, value)]; a segment without ``name=`` continues the previous value
    (a secret holding an unescaped '&' stays one secret)."""
    pieces = re.split(r"([&;])", query)  # segment, separator, segment, …
    parts: list[tuple[str | None, str]] = []
    for index in range(0, len(pieces), 2):
        segment = pieces[index]
        match = _OPTION.fullmatch(segment)
        if match or not parts:
            parts.append((match["name"], match["value"]) if match else (None, segment))
        else:
            name, value = parts[-1]
            parts[-1] = (name, value + pieces[index - 1] + segment)
    return parts


def _url_parts(url: str, at: int | None = -1) -> tuple[str, str | None, str | None, str, list | None, str]:
    """(scheme, user, password, hosts+path, options, fragment) of a URL, tolerant of unescaped characters.

    The userinfo ends at the last '@' followed by a host list (``at=-1``), not the first: a password
    may hold any character, '@', '/', ':' and '?' included (unescaped, as operators paste them).
    When in doubt this masks too much, never too little. ``at`` picks another candidate '@'.
    """
    scheme_match = _SCHEME.match(url)
    scheme = scheme_match.group(0) if scheme_match else ""
    rest = url[len(scheme):]
    user = password = None
    if at == -1:
        ends = _userinfo_ends(rest) if scheme and not rest.startswith("/") else []  # sqlite:///PATH: no authority
        at = ends[0] if ends else None
    if at is not None:
        userinfo, rest = rest[:at], rest[at + 1:]
        user, sep, pw = userinfo.partition(":")
        password = pw if sep else None
    rest, hash_, fragment = rest.partition("#")
    head, question, query = rest.partition("?")
    options = _options(query) if question else None
    return scheme, user, password, head, options, hash_ + fragment


def scrub_url(url: str) -> str:
    """``url`` with its password and every secret-bearing option value shown as ``***``; user and hosts stay."""
    scheme, user, password, head, options, fragment = _url_parts(url)
    if not scheme:
        return _TOKEN_PARAM.sub(lambda m: f"{m['key']}{MASK}", url)
    userinfo = "" if user is None else (f"{user}:{MASK}@" if password is not None else f"{user}@")
    query = ""
    if options is not None:
        shown = [
            (f"{name}={MASK}" if is_secret_option(name) else f"{name}={value}") if name is not None else value
            for name, value in options
        ]
        query = "?" + "&".join(shown)
    return f"{scheme}{userinfo}{head}{query}{fragment}"


def register_url_secrets(url: str | None) -> None:
    """Register a URL's password and secret option values, so that any text quoting them is scrubbed.

    Every reading of the URL counts (each '@' that could end the userinfo): the display masks
    the widest one, but a message may quote the password alone.
    """
    if not url:
        return
    scheme_match = _SCHEME.match(url)
    rest = url[scheme_match.end():] if scheme_match else url
    candidates = [None, *_userinfo_ends(rest)] if scheme_match and not rest.startswith("/") else [None]
    for at in candidates:
        _, _, password, _, options, _ = _url_parts(url, at)
        values = [password] + [v for name, v in options or () if name is not None and is_secret_option(name)]
        for value in values:
            if value:
                for form in {value, unquote(value), unquote_plus(value)}:
                    register_secret(form)


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
    """Mask every URL's password and secret options, token parameters and every registered secret."""
    text = _URL_IN_TEXT.sub(lambda m: scrub_url(m.group(0)), text)
    text = _TOKEN_PARAM.sub(lambda m: f"{m['key']}{MASK}", text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text
