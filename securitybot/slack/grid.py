"""Enterprise Grid, installed org-wide: which workspaces the app was added to, kept current.

An org-wide install has one bot token for the whole org, but the app reaches only the
workspaces an Org Admin added it to ("An organization-wide app isn't automatically added to
every workspace in an organization", api.slack.com/enterprise/org-wide-apps).
``auth.test`` says whether the token is such an install (``is_enterprise_install``), and
``auth.teams.list`` lists those workspaces ("Obtain a full list of workspaces your org-wide app
has been approved for", docs.slack.dev/reference/methods/auth.teams.list). The gateway uses
the list to tell a person in one of them (DM as usual) from a person in none
(``not_reachable``: escalated, never silently dropped), and to pass ``team_id`` to the methods
that need one with an org-level token.

The list changes while the service runs: Slack sends ``team_access_granted`` when an admin adds
the app to a workspace and ``team_access_revoked`` when it is removed from one
(api.slack.com/events/team_access_granted, .../team_access_revoked; no scope needed). Slack
POSTs each event once, to whichever replica the balancer picks, so the event alone cannot keep
several replicas current. Slack itself is the one list every replica can read, so:

* the replica that receives the event applies it at once;
* every replica re-reads ``auth.teams.list`` every ``REFRESH`` seconds (a removal reaches the
  others within that), and
* before calling anyone ``not_reachable`` a replica re-reads it unless it did in the last
  ``RECHECK`` seconds, so a person in a workspace just added is DMed on every replica.

The first read happens at start (after ``auth.test`` says the install is org-wide); when it
fails (one transient error of either method), the periodic re-read does it instead: until
then an org-wide install would treat everyone as reachable.

Keeping the list in the database instead would copy Slack's own state, need a table, and still
leave the other replicas to poll for it; a Tier 2 read a minute per replica costs less.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from slack_bolt.async_app import AsyncApp

from securitybot.slack.gateway import SlackGateway

logger = logging.getLogger(__name__)

MAX_PAGES = 100
# Every replica re-reads the list this often: a workspace removed is seen everywhere within it.
REFRESH = 60.0
# Before calling someone not_reachable, re-read the list unless it is younger than this (and
# at most this often: a storm of alerts about people outside the app's workspaces costs one
# auth.teams.list, a Tier 2 method, per RECHECK seconds per replica).
RECHECK = 15.0


async def list_workspaces(gateway: SlackGateway) -> frozenset[str]:
    """Every workspace the org-wide install was added to (auth.teams.list, all pages)."""
    teams: set[str] = set()
    cursor = ""
    for _ in range(MAX_PAGES):
        kw: dict[str, Any] = {"limit": 1000}
        if cursor:
            kw["cursor"] = cursor
        data = await gateway.client.auth_teams_list(**kw)
        teams.update(str(t["id"]) for t in data.get("teams") or [] if t.get("id"))
        cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor:
            break
    return frozenset(teams)


class Workspaces:
    """Keeps ``gateway.workspaces`` current on this replica (see the module's docstring)."""

    def __init__(self, gateway: SlackGateway, clock: Callable[[], float] = time.monotonic):
        self.gateway = gateway
        self._clock = clock
        self.read_at: float | None = None
        self._reading: asyncio.Future[None] | None = None
        # Events received while a read is in flight: Slack may have answered before the change,
        # so they are applied again over what it answered.
        self._during: list[tuple[frozenset[str], frozenset[str]]] | None = None
        gateway.recheck_workspaces = self.recheck
        # auth.test of slack.bot_token (slack/teams.py, HomeIdentity: the start-up check's
        # answer, or asked again): for the periodic re-read when the first read failed.
        self.home: Callable[[], Awaitable[dict[str, Any]]] | None = None
        self._learnt = False  # whether the install is org-wide is known (and its list read)

    async def learn(self, auth: dict[str, Any]) -> None:
        """After ``auth.test``: on an org-wide install, read its workspaces; else nothing."""
        if not auth.get("is_enterprise_install"):
            self._learnt = True
            return
        await self.refresh()
        self._learnt = True
        workspaces = self.gateway.workspaces or frozenset()
        logger.info(
            "Slack: org-wide install in enterprise %s, added to %s workspace(s): %s",
            auth.get("enterprise_id"), len(workspaces),
            ", ".join(sorted(workspaces)) or "none yet (add it to workspaces in the org's "
            "admin pages, Integrations → Installed apps)",
        )  # fmt: skip

    async def refresh(self) -> None:
        """Re-read auth.teams.list; callers meanwhile share the one read in flight."""
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(self._read_done)
        await asyncio.shield(self._reading)

    def _read_done(self, done: asyncio.Future[None]) -> None:
        if self._reading is done:
            self._reading = None
        if not done.cancelled():
            done.exception()  # retrieved: every waiter got it already

    async def _read(self) -> None:
        started = self._clock()
        self._during = []
        try:
            found = await list_workspaces(self.gateway)
            for added, removed in self._during:
                found = (found | added) - removed
        finally:
            self._during = None
        before = self.gateway.workspaces
        self.gateway.workspaces, self.read_at = found, started
        if before is not None and found != before:
            self._log_change(found - before, before - found, "auth.teams.list")

    async def periodic(self) -> None:
        """The scheduler's job: re-read the list of an org-wide install (nothing otherwise),
        or the first read when the one at start failed."""
        if not self._learnt and self.home is not None:
            try:
                await self.learn(await self.home())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("Slack: cannot list the org's workspaces yet: %s; trying again "
                               "in %.0f s", exc, REFRESH)  # fmt: skip
            return
        if self.gateway.workspaces is None:
            return
        try:
            await self.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the list known so far keeps serving
            logger.warning("Slack: cannot re-read the org's workspaces (auth.teams.list): %s; "
                           "trying again in %.0f s", exc, REFRESH)  # fmt: skip

    async def recheck(self) -> None:
        """Before someone is called not_reachable: re-read the list unless it is fresh."""
        if self.gateway.workspaces is None:
            return
        if self.read_at is not None and self._clock() - self.read_at < RECHECK:
            return
        try:
            await self.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("Slack: cannot re-read the org's workspaces (auth.teams.list): %s",
                           exc)  # fmt: skip

    def granted(self, team_ids: Iterable[str]) -> None:
        """team_access_granted: the app was added to these workspaces."""
        if self.gateway.workspaces is None:
            return  # not known to be an org-wide install yet: the read at start will see them
        if self._during is not None:
            self._during.append((frozenset(team_ids), frozenset()))
        added = frozenset(team_ids) - self.gateway.workspaces
        self.gateway.workspaces = self.gateway.workspaces | added
        self._log_change(added, frozenset(), "team_access_granted")

    def revoked(self, team_ids: Iterable[str]) -> None:
        """team_access_revoked: the app was removed from these workspaces."""
        if self.gateway.workspaces is None:
            return
        if self._during is not None:
            self._during.append((frozenset(), frozenset(team_ids)))
        removed = self.gateway.workspaces & frozenset(team_ids)
        self.gateway.workspaces = self.gateway.workspaces - removed
        self._log_change(frozenset(), removed, "team_access_revoked")

    def _log_change(self, added: frozenset[str], removed: frozenset[str], source: str) -> None:
        if added:
            logger.info("Slack: the app was added to workspace(s) %s (%s); their people are "
                        "DMed from now on", ", ".join(sorted(added)), source)  # fmt: skip
        if removed:
            logger.warning("Slack: the app was removed from workspace(s) %s (%s); alerts about "
                           "people only there escalate as not_reachable",
                           ", ".join(sorted(removed)), source)  # fmt: skip


def team_ids_of(event: dict[str, Any]) -> list[str]:
    """The ``team_ids`` of a team_access_granted / team_access_revoked event."""
    ids = event.get("team_ids")
    return [str(t) for t in ids if isinstance(t, str) and t] if isinstance(ids, list) else []


def register(app: AsyncApp, workspaces: Workspaces) -> None:
    """Bolt listeners for the events that change the workspaces (slack-manifest.yaml
    subscribes to both). Their event, per api.slack.com/events/team_access_granted:
    ``{"type": "team_access_granted", "team_ids": ["T1XX3", "TXX34"]}``."""

    async def on_granted(event: dict[str, Any]) -> None:
        workspaces.granted(team_ids_of(event))

    async def on_revoked(event: dict[str, Any]) -> None:
        workspaces.revoked(team_ids_of(event))

    app.event("team_access_granted")(on_granted)
    app.event("team_access_revoked")(on_revoked)
