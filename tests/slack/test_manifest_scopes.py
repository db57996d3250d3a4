"""``slack-manifest.yaml`` asks for every scope the code needs: each Slack API method called
anywhere in ``securitybot/`` (found in the source, not listed by hand) must have its scope in
the manifest, bot scopes for the bot token and user scopes for the org-level tokens."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import yaml
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())

# "Required scopes" of each method, from its page https://api.slack.com/methods/<method>
# (a method needs one of the listed scopes; which one depends on the channel type).
BOT = "bot"
USER = "user"
REQUIRED: dict[str, tuple[str, frozenset[str]]] = {
    "chat.postMessage": (BOT, frozenset({"chat:write"})),
    "chat.update": (BOT, frozenset({"chat:write"})),
    "chat.postEphemeral": (BOT, frozenset({"chat:write"})),
    "conversations.open": (BOT, frozenset({"im:write"})),
    "conversations.history": (BOT, frozenset({"channels:history", "groups:history"})),
    # start-up and check-config: is the bot in the security channel and the routed ones?
    "conversations.info": (BOT, frozenset({"channels:read", "groups:read"})),
    "auth.test": (BOT, frozenset()),  # no scope: docs.slack.dev/reference/methods/auth.test
    # Enterprise Grid, org-wide install: the workspaces the app was added to. "No scopes
    # required": docs.slack.dev/reference/methods/auth.teams.list
    "auth.teams.list": (BOT, frozenset()),
    "users.info": (BOT, frozenset({"users:read"})),
    "users.lookupByEmail": (BOT, frozenset({"users:read.email"})),
    # the directory sync; members' emails need users:read.email as well (same page)
    "users.list": (BOT, frozenset({"users:read"})),
    "usergroups.users.list": (BOT, frozenset({"usergroups:read"})),
    "views.open": (BOT, frozenset()),  # no scope: a trigger_id from an interaction suffices
    "views.publish": (BOT, frozenset()),  # no scope: the App Home tab of the bot user
    # no scope: docs.slack.dev/reference/methods/chat.getPermalink
    "chat.getPermalink": (BOT, frozenset()),
    # slack.admin_token: an Enterprise Grid org admin's user token.
    "admin.users.session.reset": (USER, frozenset({"admin.users:write"})),
    # aer.audit_logs.token: https://api.slack.com/admins/audit-logs (GET audit/v1/logs).
    "audit/v1/logs": (USER, frozenset({"auditlogs:read"})),
}

# Events need scopes too: https://api.slack.com/events/message.im
# https://api.slack.com/events/app_home_opened: no scope (it comes with the bot user)
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "message.im": frozenset({"im:history"}),
    "app_home_opened": frozenset(),
    # https://docs.slack.dev/reference/events/user_change and .../team_join: users:read
    "user_change": frozenset({"users:read"}),
    "team_join": frozenset({"users:read"}),
    # Enterprise Grid, org-wide install: docs.slack.dev/reference/events/team_access_granted
    # and .../team_access_revoked, "Required Scopes: No scopes required!"
    "team_access_granted": frozenset(),
    "team_access_revoked": frozenset(),
    # https://docs.slack.dev/reference/events/app_uninstalled and .../tokens_revoked: no scope
    "app_uninstalled": frozenset(),
    "tokens_revoked": frozenset(),
}

_CALL = re.compile(r"""\b(?:_call|api_call|_page)\(\s*["']([a-z]+(?:\.[A-Za-z]+)+)["']""")
_CLIENT_METHOD = re.compile(r"\bclient\.([a-z]+_[A-Za-z_]+)\(")
_API_CALL = re.compile(r"""api_call\(\s*["']([a-zA-Z.]+)["']""")


def _sdk_method(name: str) -> str | None:
    """``chat_postEphemeral`` → ``chat.postEphemeral``, as slack_sdk itself spells it."""
    fn = getattr(AsyncWebClient, name, None)
    if fn is None:
        return None
    found = _API_CALL.findall(inspect.getsource(fn))
    return found[0] if found else None


def methods_called() -> set[str]:
    out: set[str] = set()
    for path in (ROOT / "securitybot").rglob("*.py"):
        if "demo" in path.parts:  # the fakes answer calls; they make none to Slack
            continue
        text = path.read_text()
        out.update(_CALL.findall(text))
        out.update(m for n in _CLIENT_METHOD.findall(text) if (m := _sdk_method(n)))
        if "AsyncAuditLogsClient" in text and ".logs(" in text:
            out.add("audit/v1/logs")
    return out


def test_every_method_the_code_calls_has_its_scope_in_the_manifest() -> None:
    called = methods_called()
    assert {"chat.postMessage", "admin.users.session.reset", "audit/v1/logs"} <= called
    unknown = called - REQUIRED.keys()
    assert not unknown, f"add the scopes of {sorted(unknown)} (Slack's method pages) here"
    scopes = MANIFEST["oauth_config"]["scopes"]
    for method in sorted(called):
        token, needed = REQUIRED[method]
        missing = needed - set(scopes.get(token) or [])
        assert not missing, f"{method} needs {sorted(missing)} in oauth_config.scopes.{token}"


def test_every_subscribed_event_has_its_scope() -> None:
    events = MANIFEST["settings"]["event_subscriptions"]["bot_events"]
    # the DM replies, deletions and edits; the App Home tab
    assert sorted(events) == sorted(EVENT_SCOPES)
    needed = {s for e in events for s in EVENT_SCOPES[e]}
    assert needed <= set(MANIFEST["oauth_config"]["scopes"][BOT])


def test_the_manifest_asks_for_nothing_the_code_does_not_use() -> None:
    used = {s for token, needed in REQUIRED.values() for s in needed}
    used |= {"commands", *(s for scopes in EVENT_SCOPES.values() for s in scopes)}
    scopes = MANIFEST["oauth_config"]["scopes"]
    asked = set(scopes.get(BOT) or []) | set(scopes.get(USER) or [])
    assert asked - used == set()


def test_the_scopes_checked_at_start_are_the_manifests() -> None:
    """slack/tokens.py checks each token's scopes (x-oauth-scopes) against these lists."""
    from securitybot.slack.tokens import ADMIN_SCOPES, AUDIT_SCOPES, BOT_SCOPES

    scopes = MANIFEST["oauth_config"]["scopes"]
    assert set(BOT_SCOPES) == set(scopes[BOT])
    assert set(ADMIN_SCOPES) | set(AUDIT_SCOPES) == set(scopes[USER])


def test_the_manifest_opts_in_to_org_wide_deployment() -> None:
    """Enterprise Grid: one install for the whole org. An app opts in to org-wide deployment
    in its settings (api.slack.com/enterprise/org-wide-apps); in a manifest that is
    settings.org_deploy_enabled."""
    assert MANIFEST["settings"]["org_deploy_enabled"] is True
