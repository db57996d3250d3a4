"""Is the bot in the channels it posts to?

Slack posts only where the bot was invited: ``chat.postMessage`` to a channel it is not in
answers ``not_in_channel`` (docs.slack.dev/reference/methods/chat.postMessage), and a private
channel it is not in does not exist for it (``channel_not_found``). Forgetting ``/invite
@Securitybot`` in the security channel is the commonest setup mistake, and it used to show only
when the first escalation failed. So: start-up and ``check-config`` ask ``conversations.info``
about the security channel and every routed channel and say in one line where the bot is
missing; and every post's outcome keeps ``ChannelHealth`` current, which ``/healthz`` and the
``securitybot_slack_channel_problem`` gauge show until a post there succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from securitybot import metrics
from securitybot.config import Settings

logger = logging.getLogger(__name__)

# Post errors that mean "this channel is unusable until someone fixes the workspace", not
# "try again in a moment": the bot is not in it, it is gone, or it is archived.
CHANNEL_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


def is_channel(channel: str) -> bool:
    """A public or private channel (C…/G…), as opposed to a DM (D…) or a user id."""
    return channel[:1] in ("C", "G")


@dataclass
class ChannelHealth:
    """The last known problem of each channel the bot posts to (absent: fine)."""

    problems: dict[str, str] = field(default_factory=dict)

    def failed(self, channel: str, error: str) -> None:
        if not is_channel(channel) or error not in CHANNEL_ERRORS:
            return
        if self.problems.get(channel) != error:
            old = self.problems.get(channel)
            if old is not None:
                metrics.SLACK_CHANNEL_PROBLEM.remove(channel, old)
            self.problems[channel] = error
            metrics.SLACK_CHANNEL_PROBLEM.labels(channel, error).set(1)

    def ok(self, channel: str) -> None:
        old = self.problems.pop(channel, None)
        if old is not None:
            metrics.SLACK_CHANNEL_PROBLEM.remove(channel, old)
            logger.info("Slack channel %s is usable again", channel)

    def snapshot(self) -> dict[str, str]:
        return dict(self.problems)


def routed_channels(settings: Settings) -> dict[str, str]:
    """Every channel the configuration routes posts to, with what it is for."""
    out: dict[str, str] = {}
    if settings.slack.security_channel:
        out[settings.slack.security_channel] = "security channel"
    for i, route in enumerate(settings.escalation.routes):
        out.setdefault(route.channel, f"escalation.routes[{i}]")
    layers: list[tuple[str, Mapping[str, Any]]] = [("aer.defaults", settings.aer.defaults)]
    layers += [(f"aer.orgs.{org}", layer) for org, layer in settings.aer.orgs.items()]
    for where, layer in layers:
        notify = layer.get("notify") if isinstance(layer, Mapping) else None
        channel = notify.get("channel") if isinstance(notify, Mapping) else None
        if isinstance(channel, str) and channel:
            out.setdefault(channel, f"{where}.notify.channel")
    return out


@dataclass(frozen=True)
class SlackCheck:
    """What ``auth.test`` and ``conversations.info`` said at start."""

    auth: dict[str, Any]
    missing: dict[str, str]  # channel -> error (not_in_channel, channel_not_found, ...)
    routed: dict[str, str]

    def line(self) -> str:
        who = f"Slack: bot {self.auth.get('user_id')} in team {self.auth.get('team_id')}"
        if self.auth.get("enterprise_id"):
            who += f" (enterprise {self.auth['enterprise_id']})"
        if not self.routed:
            return f"{who}; no channel configured (slack.security_channel)"
        if not self.missing:
            return f"{who}; member of {_listed(self.routed)}"
        gaps = ", ".join(
            f"{ch} ({self.routed[ch]}): {err}" for ch, err in sorted(self.missing.items())
        )
        return (
            f"{who}; NOT usable: {gaps}; invite the bot there (/invite @Securitybot), "
            "escalations go to escalation.fallback_webhook meanwhile"
        )


def describe(exc: BaseException) -> str:
    """One line for why Slack could not be asked: Slack's own error name when it answered."""
    if isinstance(exc, SlackApiError):
        return f"Slack answered {exc.response.get('error') or exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _listed(channels: dict[str, str]) -> str:
    return ", ".join(f"{ch} ({what})" for ch, what in channels.items())


async def check_slack(
    client: AsyncWebClient, settings: Settings,
    elsewhere: Mapping[str, AsyncWebClient] | None = None,
) -> SlackCheck:  # fmt: skip
    """``auth.test``, then ``conversations.info`` for each routed channel. Raises SlackApiError
    (or a network error) if Slack cannot be asked at all. ``elsewhere``: channels of another
    workspace installed through OAuth, asked with that workspace's client."""
    auth = (await client.auth_test()).data
    assert isinstance(auth, dict)
    routed = routed_channels(settings)
    missing: dict[str, str] = {}
    for channel in routed:
        try:
            asker = (elsewhere or {}).get(channel, client)
            info = (await asker.conversations_info(channel=channel)).data
        except SlackApiError as exc:
            missing[channel] = str(exc.response.get("error") or "error")
            continue
        assert isinstance(info, dict)
        if not (info.get("channel") or {}).get("is_member"):
            missing[channel] = "not_in_channel"
    return SlackCheck(auth, missing, routed)
