"""``app_home_opened`` → ``views.publish``, and the revoke buttons of the App Home."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from securitybot.flows import exemptions, snoozes, suppressions
from securitybot.i18n import ENGLISH, LocaleOf, Translator
from securitybot.slack import app_home, commands
from securitybot.slack.triage import Responders
from securitybot.store.db import Database
from securitybot.store.models import Alert, utcnow
from securitybot.storms.decide import list_storms
from securitybot.storms.guard import held_users

logger = logging.getLogger(__name__)

VIA = {"via": "slack_app_home"}
OPEN = ("new", "awaiting_ack", "awaiting_2fa", "escalated", "triaging")


def _mine(db: Database, user: str) -> tuple[list[Alert], list[Alert]]:
    with db.read() as session:
        mine = select(Alert).where(Alert.user_id == user)
        open_alerts = session.scalars(
            mine.where(Alert.status.in_(OPEN)).order_by(Alert.id).limit(app_home.MAX_ITEMS + 1)
        ).all()
        history = session.scalars(
            mine.where(Alert.status.not_in(OPEN)).order_by(Alert.id.desc()).limit(10)
        ).all()
        return list(open_alerts), list(history)


def _team(db: Database) -> app_home.TeamView:
    now = utcnow()
    with db.read() as session:
        queue = session.scalars(
            select(Alert)
            .where(Alert.status.in_(("escalated", "triaging")), Alert.parent_id.is_(None))
            .order_by(Alert.id.desc())
            .limit(50)
        ).all()
        active = [
            e for e in exemptions.list_all(session) if e.expires_at is None or e.expires_at > now
        ]
        held = [(s, held_users(session, s.id))
                for s in list_storms(session, limit=app_home.MAX_ITEMS + 1)]  # fmt: skip
        return app_home.TeamView(
            queue=list(queue), exemptions=active, snoozes=snoozes.list_recent(session),
            rules=suppressions.list_rules(session), storms=held,
        )  # fmt: skip


def build(
    db: Database, user: str, is_responder: bool, t: Translator = ENGLISH,
    team_t: Translator = ENGLISH,
) -> dict[str, Any]:  # fmt: skip
    open_alerts, history = _mine(db, user)
    team = _team(db) if is_responder else None
    return app_home.home_view(open_alerts, history, team, t, team_t)


def register(
    app: AsyncApp, db: Database, responders: Responders, locale_of: LocaleOf | None = None,
    team_t: Translator = ENGLISH,
) -> None:  # fmt: skip
    """``locale_of`` finds the language of the person whose App Home is shown; ``team_t`` is
    the team's (``i18n.team_locale``), for the responders' part."""

    async def publish(client: AsyncWebClient, user: str) -> None:
        is_responder = await responders.contains(user)
        t = await locale_of(user) if locale_of is not None else ENGLISH
        view = await asyncio.to_thread(build, db, user, is_responder, t, team_t)
        await client.views_publish(user_id=user, view=view)

    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return  # the Messages tab is the DM itself
        await publish(client, str(event["user"]))

    @app.action(app_home.REVOKE_ACTION)
    async def revoke(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = body["user"]["id"]
        raw = str(body["actions"][0].get("value", ""))
        # The same parser and checks as `/securitybot revoke`: a forged click is refused too.
        parsed = commands.parse_command(
            f"revoke {raw}", max_exemption=commands.DEFAULT_MAX_SUPPRESSION
        )
        if not await responders.contains(user):
            await asyncio.to_thread(commands.refuse, db, user, "not a responder", parsed)
            return
        if isinstance(parsed, commands.Revoke):
            text = await asyncio.to_thread(commands.revoke, db, parsed, user, VIA)
            logger.info("App Home: %s by %s", text, user)
        await publish(client, user)
