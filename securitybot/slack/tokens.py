"""The right token for each call, and whether each token has the scopes its calls need.

Three tokens, three jobs (docs/deploy.md, "Tokens and scopes"):

* ``slack.bot_token`` (``xoxb-``): every message, DM, lookup and view;
* ``slack.admin_token`` (an Enterprise Grid org admin's user token, ``xoxp-``):
  ``admin.users.session.reset`` for the home org's people (a workspace installed through
  OAuth: its installer's user token, or none; slack/session_reset.py), and the Audit Logs API
  unless ``aer.audit_logs.token`` names a token of its own;
* ``aer.audit_logs.token``: the Audit Logs API (``auditlogs:read``, Org Owner only).

Slack answers every Web API call with the token's scopes in the ``x-oauth-scopes`` response
header (docs.slack.dev/authentication/tokens, "Checking scopes": "you can see the scopes
attached to a token by calling any method, such as auth.test, and checking the
x-oauth-scopes header"). So one ``auth.test`` per token at start says which scope is missing,
in one line naming it, instead of the first session reset failing with ``missing_scope``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.config import Settings

logger = logging.getLogger(__name__)

# What each token's calls need; tests/slack/test_manifest_scopes.py keeps these equal to
# slack-manifest.yaml's lists.
BOT_SCOPES: tuple[str, ...] = (
    "chat:write", "im:write", "im:history", "channels:history", "groups:history",
    "channels:read", "groups:read", "users:read", "users:read.email", "usergroups:read",
    "commands",
)  # fmt: skip
ADMIN_SCOPES: tuple[str, ...] = ("admin.users:write",)
AUDIT_SCOPES: tuple[str, ...] = ("auditlogs:read",)

# What fails without each scope, for the one-line error.
NEEDED_FOR: dict[str, str] = {
    "chat:write": "every DM and escalation post",
    "im:write": "opening DMs (conversations.open)",
    "im:history": "typed replies in the DM (message.im)",
    "channels:history": "finding an earlier escalation post in a public channel",
    "groups:history": "finding an earlier escalation post in a private channel",
    "channels:read": "checking the bot is in a public channel",
    "groups:read": "checking the bot is in a private channel",
    "users:read": "users.info (names, time zones)",
    "users:read.email": "users.lookupByEmail (alerts name people by email)",
    "usergroups:read": "responders given as user groups",
    "commands": "the /securitybot command",
    "admin.users:write": "admin.users.session.reset (confirm compromise, AER resets)",
    "auditlogs:read": "the Audit Logs API (AER's Slack anomaly events)",
}


def audit_logs_token(settings: Settings) -> SecretStr | None:
    """The Audit Logs API's token: ``aer.audit_logs.token``, else ``slack.admin_token``."""
    return settings.aer.audit_logs.token or settings.slack.admin_token


def granted(headers: Mapping[str, Any]) -> set[str] | None:
    """The scopes an answer's ``x-oauth-scopes`` header lists; None without the header."""
    for key, value in headers.items():
        if key.lower() == "x-oauth-scopes":
            raw = value[0] if isinstance(value, list) else value
            return {s.strip() for s in str(raw).split(",") if s.strip()}
    return None


@dataclass(frozen=True)
class TokenCheck:
    """What ``auth.test`` said about one token."""

    name: str  # the config key, e.g. "slack.admin_token"
    auth: dict[str, Any]
    missing: tuple[str, ...] = ()
    error: str | None = None  # Slack's error (invalid_auth, ...) or the network's
    scopes_known: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None and not self.missing

    def line(self) -> str:
        if self.error is not None:
            return f"Slack: {self.name} does not work: {self.error}"
        team, org = self.auth.get("team_id"), self.auth.get("enterprise_id")
        who = f"{self.auth.get('user_id')} in {team or org or '-'}"
        if org and org != team:
            who += f" (enterprise {org})"
        if self.auth.get("is_enterprise_install"):
            who += ", org-wide install"
        if self.missing:
            needs = "; ".join(f"{s}: {NEEDED_FOR.get(s, 'needed')}" for s in self.missing)
            return (
                f"Slack: {self.name} ({who}) is missing scope "
                f"{', '.join(self.missing)} ({needs}); add it in the app's OAuth & "
                "Permissions page and reinstall the app (docs/deploy.md, Tokens and scopes)"
            )
        if not self.scopes_known:
            return f"Slack: {self.name} ({who}): Slack did not say its scopes"
        return f"Slack: {self.name} ({who}) has the scopes it needs"


async def check_token(client: AsyncWebClient, name: str, needed: Iterable[str]) -> TokenCheck:
    """``auth.test`` with ``client``'s token, and the scopes it lacks of ``needed``."""
    try:
        resp = await client.auth_test()
    except SlackApiError as exc:
        return TokenCheck(name, {}, error=str(exc.response.get("error") or "error"))
    auth = resp.data if isinstance(resp.data, dict) else {}
    have = granted(resp.headers or {})
    if have is None:
        return TokenCheck(name, auth, scopes_known=False)
    return TokenCheck(name, auth, tuple(s for s in needed if s not in have))


def clients_to_check(
    settings: Settings, bot: AsyncWebClient, admin: AsyncWebClient | None
) -> list[tuple[AsyncWebClient, str, tuple[str, ...]]]:
    """Each configured token with its config key and the scopes its calls need. When the
    admin token is also the Audit Logs token, it needs both scopes."""
    out: list[tuple[AsyncWebClient, str, tuple[str, ...]]] = [(bot, "slack.bot_token", BOT_SCOPES)]
    own_audit = settings.aer.audit_logs.token
    audit_enabled = settings.aer.enabled
    if admin is not None:
        needs = ADMIN_SCOPES + (AUDIT_SCOPES if audit_enabled and own_audit is None else ())
        out.append((admin, "slack.admin_token", needs))
    if own_audit is not None and audit_enabled:
        audit = AsyncWebClient(token=own_audit.get_secret_value(), base_url=settings.slack.api_url)
        out.append((audit, "aer.audit_logs.token", AUDIT_SCOPES))
    return out


async def check_tokens(
    settings: Settings, bot: AsyncWebClient, admin: AsyncWebClient | None
) -> list[TokenCheck]:
    """Check every token; log one line for each that lacks a scope or does not work."""
    results = []
    for client, name, needed in clients_to_check(settings, bot, admin):
        try:
            result = await check_token(client, name, needed)
        except Exception as exc:  # a network failure is one line, like the channel check's
            result = TokenCheck(name, {}, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
        results.append(result)
        # Start-up says how Slack looks in one line (slack/channels.py); a token is a line of
        # its own only when something is wrong with it.
        (logger.debug if result.ok else logger.error)("%s", result.line())
    return results
