"""Bolt listeners for a held group's decision buttons (held resets, storms): a responder
releases, discards or escalates it.

Like the triage buttons: only ``escalation.responders`` may act, nobody decides on a group that
holds their own account, and every refusal is audited (``triage.refused``). A click decides on
the count the message showed; if more was held since, the clicker is asked to look again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from securitybot import held_groups
from securitybot.held_groups import HeldGroup, parse_value
from securitybot.i18n import ENGLISH, Translator
from securitybot.slack import mrkdwn as md
from securitybot.slack.triage import REFUSALS, Responders
from securitybot.store.db import Database


def register(
    app: AsyncApp, db: Database, wake: Callable[[], None], responders: Responders,
    group: HeldGroup, buttons: Mapping[str, str], t: Translator = ENGLISH,
) -> None:  # fmt: skip
    """Listen for ``buttons`` (Slack action id -> the group's action); the replies to the
    clicker are in ``t``'s language (``i18n.team_locale``)."""
    _ = t.gettext

    async def act(body: dict[str, Any], client: AsyncWebClient, action: str) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or user
        parsed = parse_value(str(body["actions"][0].get("value", "")))
        if parsed is None:
            return
        group_id, shown = parsed
        what = group.actions[action]

        async def say(text: str) -> None:
            await client.chat_postEphemeral(channel=channel, user=user, text=text)

        if not await responders.contains(user):
            await asyncio.to_thread(group.audit_refusal, db, group_id, user, "not a responder",
                                    what)  # fmt: skip
            await say(_(REFUSALS["not a responder"]))
            return
        via = {"via": "slack_button"}
        try:
            await asyncio.to_thread(group.decide, db, group_id, action, user, via, shown)
        except held_groups.NotFound:
            return
        except held_groups.AlreadyResolved as exc:
            await say(_(group.already_here).format(status=exc.status,
                                                   user=md.user(exc.resolved_by)))  # fmt: skip
            return
        except held_groups.Changed as exc:
            await asyncio.to_thread(group.refresh, db, group_id)
            wake()
            await say(_(group.changed_here).format(now=exc.now, shown=exc.shown))
            return
        except held_groups.SelfInvolved:
            await asyncio.to_thread(group.audit_refusal, db, group_id, user, "self", what)
            await say(_(group.self_refusal))
            return
        wake()

    def listener(action: str) -> Callable[..., Any]:
        async def handler(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            await act(body, client, action)

        return handler

    for action_id, action in buttons.items():
        app.action(action_id)(listener(action))
