"""Slack's Web API rate limits, and a token bucket to keep within them (pure: no I/O, no clock).

Slack limits each method "per app per workspace" by tier, in calls per minute: Tier 1 1+,
Tier 2 20+, Tier 3 50+, Tier 4 100+, with bursts tolerated; chat.postMessage is special:
"generally one message per second per channel", short bursts allowed, plus a workspace-wide
limit (https://docs.slack.dev/apis/web-api/rate-limits). Over a limit Slack answers HTTP 429
with ``Retry-After`` in seconds. The tiers below are those on each method's reference page
(https://docs.slack.dev/reference/methods/<method>).

Slack's figures are floors ("20+ per minute"): a workspace Slack granted more sets
``slack.rate_limits.<method>`` (calls per minute) instead. For ``chat.postMessage`` that figure
is the workspace-wide ceiling on posts (Slack publishes no number for it: the default below is
our assumption, overridable); the per-channel limit (one post a second) is never raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from securitybot.token_bucket import Bucket

PER_MINUTE = {1: 1.0, 2: 20.0, 3: 50.0, 4: 100.0}
METHOD_TIER = {
    "users.lookupByEmail": 3,
    "users.info": 4,
    "users.list": 2,
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
# The per-minute figure of one channel's posts in ``per_minute`` (Slack: about 60; not a limit
# Slack raises, but a fake Slack without limits, as in the exactly-once tests, has none).
PER_CHANNEL = "chat.postMessage.channel"
# Posts a minute across the workspace (chat.postMessage's "workspace-wide limit", unnumbered in
# Slack's documentation): five a second, the pace issue 27 measured Slack allowing.
WORKSPACE_POSTS_PER_MINUTE = 300.0


def per_minute(method: str, overrides: dict[str, float] | None = None) -> float | None:
    """Calls a minute allowed for ``method`` (None: not paced): the configured figure, else
    Slack's documented tier (for chat.postMessage, the workspace-wide post ceiling)."""
    if overrides and method in overrides:
        return overrides[method]
    if method == POST:
        return WORKSPACE_POSTS_PER_MINUTE
    tier = METHOD_TIER.get(method)
    return None if tier is None else PER_MINUTE[tier]


@dataclass
class Limits:
    """Per-method (for chat.postMessage: workspace-wide) and per-channel buckets. ``scale``
    multiplies every rate (a test that wants the limits in seconds rather than minutes);
    ``per_minute`` overrides a method's documented figure (``slack.rate_limits``)."""

    scale: float = 1.0
    per_minute: dict[str, float] = field(default_factory=dict)
    burst_seconds: float = 10.0  # how much unused rate a bucket saves for a burst
    post_burst: float = 3.0
    # Tokens a bucket keeps back (the gateway's side: one, so calls that reach Slack a little
    # out of step with their turn still find the allowance Slack counts).
    spare: float = 0.0
    methods: dict[str, Bucket] = field(default_factory=dict)
    channels: dict[str, Bucket] = field(default_factory=dict)

    def method(self, name: str, team: str | None = None) -> Bucket | None:
        """``name``'s bucket in workspace ``team`` (None: the app's own): Slack counts each
        method's tier per app per workspace, so an org-wide or multi-workspace install has
        one allowance in each workspace, and a 429 in one holds no other."""
        key = name if team is None else f"{name}@{team}"
        bucket = self.methods.get(key)
        if bucket is None:
            figure = per_minute(name, self.per_minute)
            if figure is None:
                return None
            rate = figure / 60.0 * self.scale
            burst = max(1.0, rate * self.burst_seconds - self.spare)
            bucket = self.methods[key] = Bucket(rate, burst)
        return bucket

    def channel(self, channel: str) -> Bucket:
        bucket = self.channels.get(channel)
        if bucket is None:
            per_second = self.per_minute.get(PER_CHANNEL, POSTS_PER_SECOND_PER_CHANNEL * 60) / 60
            rate = per_second * self.scale
            burst = max(1.0, self.post_burst - self.spare)
            bucket = self.channels[channel] = Bucket(rate, burst)
        return bucket

    def buckets(self, method: str, channel: str | None, team: str | None = None) -> list[Bucket]:
        found = [b for b in (self.method(method, team),) if b is not None]
        if method == POST and channel:
            found.append(self.channel(channel))
        return found

    def try_call(
        self, method: str, channel: str | None, now: float, team: str | None = None
    ) -> float:
        """Slack's side: 0.0 if the call is within every limit (and counted), else the seconds
        until it would be (nothing counted)."""
        buckets = self.buckets(method, channel, team)
        waits = [b.take(now) for b in buckets]
        if max(waits, default=0.0) <= 0.0:
            return 0.0
        for bucket, wait in zip(buckets, waits, strict=True):
            if wait <= 0.0:
                bucket.tokens += 1.0  # give back what the refused call took
        return max(waits)


def lifted(per_minute: float = 1_000_000.0) -> dict[str, float]:
    """``slack.rate_limits`` that take every documented limit out of the way (a fake Slack that
    enforces none, in the benchmarks and tests that measure the bot rather than Slack)."""
    return {**{method: per_minute for method in METHOD_TIER}, POST: per_minute,
            PER_CHANNEL: per_minute}  # fmt: skip
