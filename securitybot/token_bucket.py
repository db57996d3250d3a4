"""A token bucket (pure: the caller passes the clock). Used by the ingest API's per-source
limits and by the pacing of Slack's Web API calls."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Bucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    rate: float
    burst: float
    tokens: float = field(default=-1.0)
    at: float | None = None  # None: never used, so full

    def _refill(self, now: float) -> None:
        if self.at is None:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 if one was there, else how many seconds until one is (none taken)."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def reserve(self, now: float) -> float:
        """Take the next token even if it is in the future: how long to wait for it. Callers
        that all reserve are spread out one token apart instead of retrying together."""
        self._refill(now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def pause(self, now: float, seconds: float) -> None:
        """Slack said "retry after": no token until then."""
        self._refill(now)
        self.tokens = min(self.tokens, -seconds * self.rate)
