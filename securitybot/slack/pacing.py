"""The gateway's side of Slack's rate tiers: which buckets a call waits on, whose
allowance it spends, and which bucket a 429 holds.

Kept apart from the gateway (slack/gateway.py) so the pacing rules read in one place; the
buckets and Slack's figures are slack/tiers.py's, this only decides which to use when.
"""

from __future__ import annotations

import asyncio
import time

from securitybot import metrics
from securitybot.slack.installations import Installations
from securitybot.slack.tiers import POST, Limits
from securitybot.token_bucket import Bucket


class Pacing:
    """Mixed into SlackGateway, whose ``__init__`` sets the state below."""

    limits: Limits
    _dms: dict[str, str]
    workspaces: frozenset[str] | None
    installations: Installations | None
    home_team: str | None

    async def _pace(self, method: str, channel: str | None, team: str | None) -> None:
        """Wait for this call's turn in every bucket it counts against.

        A call with one bucket reserves its token at once, so concurrent callers are spread
        one token apart (in order) rather than retrying together. A post counts against two
        (the workspace's ceiling and its channel's one a second) and takes both at the
        moment it is sent, as Slack counts them: a token reserved ahead in one bucket while
        the other makes the post wait would be spent early, and the post arrive in a burst.
        """
        started = now = time.monotonic()
        key = self._channel_key(channel) if channel else None
        buckets = self.limits.buckets(method, key, team)
        if len(buckets) == 1:
            wait = buckets[0].reserve(now)
            if wait > 0:
                await asyncio.sleep(wait)
        elif buckets:
            while (wait := self.limits.try_call(method, key, now, team)) > 0:
                await asyncio.sleep(wait)
                now = time.monotonic()
        metrics.SLACK_BUCKET_WAIT.labels(method).observe(time.monotonic() - started)

    def _channel_key(self, channel: str) -> str:
        """A post to a user id lands in their DM: the same channel, the same bucket."""
        return self._dms.get(channel, channel)

    def _rate_limited(
        self, method: str, channel: str | None, team: str | None, retry_after: float
    ) -> None:
        """Slack said 429: hold the bucket it refused, and only that one (a post's channel;
        any other call's method in that workspace), for Retry-After."""
        now = time.monotonic()
        if method == POST and channel:
            held: Bucket | None = self.limits.channel(self._channel_key(channel))
        else:
            held = self.limits.method(method, team)
        if held is not None:
            held.pause(now, retry_after)

    def _bucket_team(self, team: str | None) -> str | None:
        """Whose allowance a call to ``team`` spends: Slack counts limits per workspace, so
        with several served (Grid, OAuth installs) that one's; None for the app's own (and
        always with one workspace: one allowance, however a call is keyed)."""
        if self.workspaces is None and self.installations is None:
            return None
        return None if not team or team == self.home_team else team
