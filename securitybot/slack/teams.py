"""Which Slack workspaces (teams) and Enterprise Grid orgs this app serves, and the one guard
that refuses every request from any other.

A Slack app's signing secret is per app, not per workspace: once the app is installed in a
second workspace (or its distribution is turned on), that workspace's slash commands, clicks and
events arrive signed with the very same secret. The signature then proves only "Slack sent
this", not "our workspace sent this", so a valid signature from another team used to create
suppression rules and answer alerts. This guard is a Bolt global middleware, so it runs for
every request type Bolt dispatches (events, interactions, slash commands, options), over HTTP
and Socket Mode alike, after Bolt's own signature check and before the receipts middleware and
any listener. A refused request is answered 403, counted, logged and audited.

What is served: the team (and enterprise, on Enterprise Grid) that ``auth.test`` names for the
bot token (``HomeIdentity``: at start, and again until it answers), plus ``slack.team_ids`` /
``slack.enterprise_ids`` from the config, plus (``slack.oauth``) the workspaces installed
through OAuth, read from the installation store. Never the team a request names: Bolt's
``authorize`` result names the sender's own team for ``app_uninstalled``/``tokens_revoked`` and
an installed workspace's for its requests, and anyone can install a distributed app.
A list is the mechanism on purpose: serving several workspaces of one org (Enterprise Grid)
means adding them to these lists, nothing else. One exception: a request from this app's
*org-wide* install (Bolt's ``context.is_enterprise_install``, from ``authorizations[0]`` of an
event or ``is_enterprise_install`` of an interaction, docs: api.slack.com/enterprise/apps/reference)
in a served enterprise is served from any workspace of that org: the Org Admin chose those
workspaces when adding the app, so listing them again here is not needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from securitybot import metrics
from securitybot.store.alerts import audit
from securitybot.store.db import Database

logger = logging.getLogger(__name__)

AUDIT_ACTION = "slack.request_refused"
# Uninstall events, always let through to Bolt's token revocation listeners once OAuth
# installs are on (slack/multi_workspace.py).
REVOCATIONS = frozenset({"app_uninstalled", "tokens_revoked"})


@dataclass
class ServedTeams:
    """The allowed lists. Empty lists serve nobody: a request is refused until the bot's own
    team is known (from auth.test) or configured."""

    teams: set[str] = field(default_factory=set)
    enterprises: set[str] = field(default_factory=set)

    @classmethod
    def from_config(cls, team_ids: Iterable[str], enterprise_ids: Iterable[str]) -> ServedTeams:
        return cls(set(team_ids), set(enterprise_ids))

    def learn(self, auth_test: dict[str, Any]) -> None:
        """Add the team and enterprise an ``auth.test`` answer names."""
        if team := auth_test.get("team_id"):
            self.teams.add(str(team))
        if enterprise := auth_test.get("enterprise_id"):
            self.enterprises.add(str(enterprise))

    @property
    def known(self) -> bool:
        return bool(self.teams or self.enterprises)

    def refusal(
        self, team_id: str | None, enterprise_id: str | None, enterprise_install: bool = False
    ) -> str | None:
        """Why a request from this team/enterprise is not served, or None if it is.
        ``enterprise_install``: the request comes from an org-wide install of the app."""
        if enterprise_id and self.enterprises and enterprise_id not in self.enterprises:
            return "foreign_enterprise"
        if team_id:
            if team_id in self.teams:
                return None
            if enterprise_install and enterprise_id and enterprise_id in self.enterprises:
                return None  # any workspace of our org the org-wide install was added to
            return "foreign_team"
        # Org-wide installs on Enterprise Grid send some payloads with no workspace, only the
        # enterprise: served only if that enterprise is.
        if enterprise_id:
            return None if enterprise_id in self.enterprises else "foreign_enterprise"
        return "no_team"


class HomeIdentity:
    """auth.test of slack.bot_token: our own team (and enterprise), the one source the served
    list learns from. The start-up check's answer is kept (``learn``); until one succeeds,
    ``auth`` asks Slack again (one call in flight, shared), so a Slack down at start costs
    nothing once it is back. ``learned`` is told of the answer, once."""

    def __init__(self, client: AsyncWebClient, served: ServedTeams) -> None:
        self.client = client
        self.served = served
        self.answer: dict[str, Any] | None = None
        self.learned: list[Callable[[Mapping[str, Any]], None]] = []
        self._asking: asyncio.Future[dict[str, Any]] | None = None

    def learn(self, auth_test: Mapping[str, Any]) -> None:
        if self.answer is not None:
            return
        self.answer = dict(auth_test)
        self.served.learn(self.answer)
        for listener in self.learned:
            listener(self.answer)

    async def auth(self) -> dict[str, Any]:
        """The auth.test answer; raises (SlackApiError, network errors) while Slack fails."""
        if self.answer is not None:
            return self.answer
        if self._asking is None:
            self._asking = asyncio.ensure_future(self._ask())
            self._asking.add_done_callback(self._asked)
        return await asyncio.shield(self._asking)

    async def _ask(self) -> dict[str, Any]:
        found = await self.client.auth_test()
        self.learn(found.data if isinstance(found.data, dict) else {})
        assert self.answer is not None
        return self.answer

    def _asked(self, done: asyncio.Future[dict[str, Any]]) -> None:
        if self._asking is done:
            self._asking = None
        if not done.cancelled():
            done.exception()  # retrieved: every waiter got it already


class TeamGuard(AsyncMiddleware):
    """Bolt global middleware: requests from a team or enterprise not served get 403."""

    def __init__(
        self, served: ServedTeams, db: Database,
        installed: Callable[[str], Awaitable[bool]] | None = None,
        home: HomeIdentity | None = None,
    ) -> None:  # fmt: skip
        self.served = served
        self.db = db
        self.home = home
        # slack.oauth: whether a workspace is installed through OAuth (the installation store
        # is the allowlist for those, beside slack.team_ids).
        self.installed = installed

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        if not self.served.known and self.home is not None:
            # auth.test at start failed (Slack unreachable then): ask it again. Not Bolt's
            # authorize result: that names the sender's team for an uninstall event.
            try:
                await self.home.auth()
            except Exception as exc:  # still unknown: the request is refused below
                logger.warning("Slack: cannot learn the bot's own team (auth.test): %s", exc)
        team, enterprise = req.context.team_id, req.context.enterprise_id
        org_wide = bool(req.context.is_enterprise_install)
        reason = self.served.refusal(team, enterprise, org_wide)
        if reason is None:
            return await next()
        # A workspace installed through OAuth may be in another Grid org than ours: asked
        # whether it is installed whichever of the two refused it.
        if self.installed is not None and team and reason in ("foreign_team", "foreign_enterprise"):
            event = req.body.get("event") or {}
            # app_uninstalled / tokens_revoked: the workspace's own uninstall reaches Bolt's
            # listeners (which delete only that workspace's installation) even once its bot
            # is gone; anything else from an installed workspace is served.
            if event.get("type") in REVOCATIONS or await self.installed(str(team)):
                return await next()
        kind = str(req.body.get("type") or req.body.get("command") or "unknown")[:64]
        user = req.context.user_id
        metrics.SLACK_REFUSED.labels(reason).inc()
        logger.warning("Slack request refused (%s): team %s, enterprise %s, %s from %s",
                       reason, team, enterprise, kind, user)  # fmt: skip
        details = {"reason": reason, "team_id": team, "enterprise_id": enterprise, "type": kind}
        await asyncio.to_thread(self._audit, user or "slack", details)
        return BoltResponse(
            status=403,
            body={"error": "team_not_served", "message": f"{reason}: this app does not serve it"},
        )

    def _audit(self, actor: str, details: dict[str, Any]) -> None:
        with self.db.write() as session:
            audit(session, action=AUDIT_ACTION, actor=actor, details=details)


def register(
    app: AsyncApp, served: ServedTeams, db: Database,
    installed: Callable[[str], Awaitable[bool]] | None = None,
    home: HomeIdentity | None = None,
) -> TeamGuard:  # fmt: skip
    """Register before any other middleware (receipts) so nothing from another team is
    recorded or handled."""
    guard = TeamGuard(served, db, installed, home)
    app.use(guard)
    return guard
