"""Faults the fake Slack can be told to answer with: a method's next calls failing, Slack's
rate limits enforced (429 with Retry-After), replies lost after Slack acted.

Kept apart from the fake's state and methods (``fake_slack.FakeSlack`` mixes this in and sets
the state below): the tests of failures and retries read what the fake can do in one place.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from securitybot.demo.fake_slack_methods import Json
from securitybot.slack.tiers import Limits


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: int | None
    remaining: int


class SlackFaults:
    """Fault injection, over the state ``FakeSlack.__init__`` sets up."""

    users: dict[str, Json]
    rate_limits: Limits | None
    rate_limited: int
    _failures: dict[str, list[_Failure]]
    _lost_replies: dict[str, int]
    _lock: threading.Lock

    def fail_next(
        self,
        method: str,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls to `method` fail.

        status=429 answers ratelimited with Retry-After (default 1); status>=500 answers a
        server error; otherwise HTTP 200 {"ok": false, "error": error}.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        if status == 200 and error is None:
            raise ValueError("fail_next needs an error name or a non-200 status")
        with self._lock:
            self._failures.setdefault(method, []).append(
                _Failure(status, error, retry_after, times)
            )

    def enforce_rate_limits(self, limits: Limits | None = None) -> None:
        """Answer 429 with Retry-After, as Slack does, past each method's tier and past the
        per-channel post rate (``securitybot.slack.tiers``; ``Limits(scale=...)`` to speed up)."""
        with self._lock:
            self.rate_limits = limits or Limits()

    def lose_next_reply(self, method: str, times: int = 1) -> None:
        """Do the next `times` calls to `method`, then drop the connection without answering:
        the network failing after Slack acted, so the caller cannot know that it did."""
        with self._lock:
            self._lost_replies[method] = self._lost_replies.get(method, 0) + times

    def _fault(
        self, method: str, params: dict[str, Any]
    ) -> tuple[int, Json, dict[str, str]] | None:
        """The fault this call is answered with, if any; called with the state lock held."""
        if self.rate_limits is not None:
            channel = str(params.get("channel") or "") or None
            if channel and channel[:1] in "UW" and channel in self.users:
                channel = "D" + channel  # a post to a user id lands in their DM
            wait = self.rate_limits.try_call(method, channel, time.monotonic())
            if wait > 0:
                self.rate_limited += 1
                # Slack's Retry-After is whole seconds.
                retry = str(max(1, math.ceil(wait)))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry}
        failures = self._failures.get(method)
        if failures:
            failure = failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                failures.pop(0)
            if failure.status == 429:
                return (
                    429,
                    {"ok": False, "error": "ratelimited"},
                    {"Retry-After": str(failure.retry_after)},
                )
            if failure.status >= 500:
                body = {"ok": False, "error": failure.error} if failure.error else {}
                return failure.status, body, {}
            return failure.status, {"ok": False, "error": failure.error}, {}
        return None
