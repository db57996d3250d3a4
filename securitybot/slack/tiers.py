"""Slack's Web API rate limits, and a token bucket to keep within them (pure: no I/O, no clock).

Slack limits each method "per app per workspace" by tier, in calls per minute: Tier 1 1+,
Tier 2 20+, Tier 3 50+, Tier 4 100+, with bursts tolerated; chat.postMessage is special:
"generally one message per second per channel", short bursts allowed, plus a workspace-wide
limit (https://docs.slack.dev/apis/web-api/rate-limits). Over a limit Slack answers HTTP 429
with ``Retry-After`` in seconds. The tiers below are those on each method's reference page
(https://docs.slack.dev/reference/methods/<method>).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from securitybot.token_bucket import Bucket

PER_MINUTE = {1: 1.0, 2: 20.0, 3: 50.0, 4: 100.0}
METHOD_TIER = {
    "users.lookupByEmail": 3,
    "users.info": 4,
    "conversations.open": 3,
    "conversations.history": 3,
    "chat.update": 3,
    "chat.delete": 3,
    "chat.postEphemeral": 4,
    "views.open": 4,
    "views.update": 4,
    "views.publish": 4,
    "usergroups.users.list": 2,
    "admin.users.session.reset": 2,
    "auth.test": 4,
}
POST = "chat.postMessage"
POSTS_PER_SECOND_PER_CHANNEL = 1.0


@dataclass
class Limits:
    """Per-method and per-channel buckets. ``scale`` multiplies every rate (a workspace with
    higher limits, or a test that wants the limits in seconds rather than minutes)."""

    scale: float = 1.0
    burst_seconds: float = 10.0  # how much unused rate a bucket saves for a burst
    post_burst: float = 3.0
    methods: dict[str, Bucket] = field(default_factory=dict)
    channels: dict[str, Bucket] = field(default_factory=dict)

    def method(self, name: str) -> Bucket | None:
        tier = METHOD_TIER.get(name)
        if tier is None:
            return None
        bucket = self.methods.get(name)
        if bucket is None:
            rate = PER_MINUTE[tier] / 60.0 * self.scale
            bucket = self.methods[name] = Bucket(rate, max(1.0, rate * self.burst_seconds))
        return bucket

    def channel(self, channel: str) -> Bucket:
        bucket = self.channels.get(channel)
        if bucket is None:
            rate = POSTS_PER_SECOND_PER_CHANNEL * self.scale
            bucket = self.channels[channel] = Bucket(rate, self.post_burst)
        return bucket

    def buckets(self, method: str, channel: str | None) -> list[Bucket]:
        found = [b for b in (self.method(method),) if b is not None]
        if method == POST and channel:
            found.append(self.channel(channel))
        return found

    def try_call(self, method: str, channel: str | None, now: float) -> float:
        """Slack's side: 0.0 if the call is within every limit (and counted), else the seconds
        until it would be (nothing counted)."""
        buckets = self.buckets(method, channel)
        waits = [b.take(now) for b in buckets]
        if max(waits, default=0.0) <= 0.0:
            return 0.0
        for bucket, wait in zip(buckets, waits, strict=True):
            if wait <= 0.0:
                bucket.tokens += 1.0  # give back what the refused call took
        return max(waits)
