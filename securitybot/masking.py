"""Hiding credentials in anything shown to a person: check-config, start-up errors, logs.

A URL is masked with the parser that will read it: SQLAlchemy's ``make_url`` for database URLs
(it takes a raw ``/``, ``#`` or ``?`` in a password, which ``urlsplit`` would cut elsewhere, so
the password would be printed as a path or a fragment), ``urlsplit`` for HTTP URLs. A URL either
parser reads differently from how its client would (an ``@`` outside the authority, a port that is
not a number) is shown as ``scheme://**********``: hiding too much beats guessing.

Text that is not a URL (a driver's error, a traceback) is scrubbed of the configured secrets
themselves, in every form they can be written (raw, percent-encoded).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url

MASK = "**********"  # what pydantic shows for a SecretStr, so every hidden value looks the same
# Query parameters and mapping keys (headers) whose value is a credential: ?token=, ?key=,
# ?sig= (Azure SAS), ?code= (Azure Functions), ?password= (libpq), X-Api-Key, Authorization, ...
SECRET_NAME_RE = re.compile(r"token|key|sig|secret|pass|auth|code|credential|session", re.I)
# Keys that match the secret-name pattern but hold nothing secret (shown as configured).
NOT_SECRET_KEYS = frozenset({"ikey", "dedup_key", "secure_cookies", "source"})
# Slack incoming webhooks: the path after /services/ is the secret.
_SLACK_HOOK_PREFIX = "/services/"
# Database URLs SQLAlchemy reads (``name`` or ``name+driver``).
_DB_SCHEME_RE = re.compile(
    r"^(sqlite|postgresql|postgres|mysql|mariadb|oracle|mssql|cockroachdb)(\+\w+)?$", re.I
)
# Rendered in place of a secret, then replaced by MASK: SQLAlchemy percent-encodes ``*``.
_PLACEHOLDER = "SBMASKEDVALUE0"
# Shorter strings are not scrubbed from free text: a 2-character "secret" would mangle every
# log line and protects nothing.
MIN_SCRUB_LENGTH = 4


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME_RE.search(name)) and name not in NOT_SECRET_KEYS


def mask_url(value: str) -> str:
    """``value`` with every credential replaced by ``**********``; unchanged if it holds none."""
    scheme, sep, _ = value.partition("://")
    if not sep:
        return value
    if _DB_SCHEME_RE.match(scheme):
        return _mask_db_url(value, scheme)
    return _mask_http_url(value, scheme)


def _mask_db_url(value: str, scheme: str) -> str:
    try:
        url = make_url(value)
    except Exception:  # e.g. libpq's "h1:5432,h2:5432", which SQLAlchemy cannot read
        return f"{scheme}://{MASK}"
    query = {k: (_PLACEHOLDER if is_secret_name(k) else v) for k, v in url.query.items()}
    if url.password is None and query == dict(url.query):
        return value
    if url.password is not None:
        url = url.set(password=_PLACEHOLDER)
    return url.set(query=query).render_as_string(hide_password=False).replace(_PLACEHOLDER, MASK)


def _mask_http_url(value: str, scheme: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a malformed netloc)
    except ValueError:
        return f"{scheme}://{MASK}"
    if "@" in parts.path + parts.query + parts.fragment:
        # Userinfo that held a "/", "?" or "#" unencoded: where it ends depends on the client.
        return f"{scheme}://{MASK}"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        # A lone user part is often a token itself (https://TOKEN@host), so hide it too.
        shown = f"{user}:{MASK}" if has_password else MASK
        netloc = f"{shown}@{hostport}"
    path = parts.path
    if (parts.hostname or "").endswith("hooks.slack.com") and path.startswith(_SLACK_HOOK_PREFIX):
        path = _SLACK_HOOK_PREFIX + MASK
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs], safe="*")
    if (netloc, path, query) == (parts.netloc, parts.path, parts.query):
        return value  # nothing hidden: show it exactly as configured
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def mask_secrets_in(value: Any) -> Any:
    """:func:`mask_url` for a string holding ``://``; any other value unchanged."""
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def mask_config_tree(data: Any, key: str = "") -> Any:
    """Apply :func:`mask_secrets_in` to every value, and hide values under secret-like keys."""
    if isinstance(data, dict):
        return {k: mask_config_tree(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_config_tree(v, key) for v in data]
    # Mappings such as outbound headers: {"Authorization": "Bearer ..."}; an unset secret stays
    # visibly unset (null), which check-config readers rely on.
    if isinstance(data, str) and is_secret_name(key):
        return MASK
    return mask_secrets_in(data)


# ---- secrets inside free text ------------------------------------------------------------------


def url_secrets(value: str) -> set[str]:
    """The credentials inside URL ``value`` as they may appear in text (raw and encoded)."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return set()
    found: set[str] = set()
    # However a parser splits it, a password sits between the first ":" and the last "@"
    # of the part after the scheme (libpq's and SQLAlchemy's reading; urlsplit's differs).
    database = bool(_DB_SCHEME_RE.match(scheme))
    if "@" in rest:
        userinfo = rest[: rest.rfind("@")]
        user, colon, password = userinfo.partition(":")
        if colon:
            found.add(password)
        elif not database:  # https://TOKEN@host; a database user name is no secret
            found.add(user)
    if database:
        try:
            url = make_url(value)
        except Exception:
            url = None
        if url is not None:
            found.add(url.password or "")
            for k, v in url.query.items():
                if is_secret_name(k):
                    found.update([v] if isinstance(v, str) else v)
    else:
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is not None:
            found.add(parts.password or "")
            for k, v in parse_qsl(parts.query, keep_blank_values=True):
                if is_secret_name(k):
                    found.add(v)
            if parts.path.startswith(_SLACK_HOOK_PREFIX):
                found.add(parts.path.removeprefix(_SLACK_HOOK_PREFIX))
    return _spellings(found)


def _spellings(values: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for v in values:
        for form in (v, unquote(v), quote(v, safe=""), quote_plus(v), quote(v)):
            if len(form) >= MIN_SCRUB_LENGTH:
                out.add(form)
    return out


def settings_secrets(settings: BaseModel) -> set[str]:
    """Every secret of a configuration: SecretStr values, URL credentials, secret-keyed values."""
    found: set[str] = set()

    def walk(node: Any, key: str) -> None:
        if isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name), name)
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list | tuple | set | frozenset):
            for v in node:
                walk(v, key)
        elif isinstance(node, SecretStr):
            found.update(_spellings([node.get_secret_value()]))
        elif isinstance(node, str):
            if is_secret_name(key):
                found.update(_spellings([node]))
            if "://" in node:
                found.update(url_secrets(node))

    walk(settings, "")
    return found


class Scrubber:
    """Replaces known secrets in text; longest first, so no part of a longer one survives."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        merged = set(self._secrets) | {s for s in secrets if len(s) >= MIN_SCRUB_LENGTH}
        self._secrets = sorted(merged, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


# The process's configured secrets, filled by configure_logging; error strings that are stored
# or shown (an outbox job's last error, a start-up failure) go through it as log lines do.
known_secrets = Scrubber()


def scrub(text: str, *urls: str) -> str:
    """``text`` without the known secrets, nor those of ``urls``, nor ``urls`` unmasked."""
    for url in urls:
        text = text.replace(url, mask_url(url))
    if urls:
        text = Scrubber(s for u in urls for s in url_secrets(u))(text)
    return known_secrets(text)


class ScrubbingFormatter(logging.Formatter):
    """Wraps the real formatter: whatever a line holds (message, arguments, a traceback), the
    configured secrets are replaced before it is written."""

    def __init__(self, inner: logging.Formatter, scrubber: Scrubber) -> None:
        super().__init__()
        self.inner, self.scrubber = inner, scrubber

    def format(self, record: logging.LogRecord) -> str:
        return self.scrubber(self.inner.format(record))
