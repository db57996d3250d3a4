"""Slack's limits are "not yet" for AER's messages too (issue 27.3): a DM, an escalation or a
session reset that Slack answered 429 waits for its Retry-After without spending an attempt,
like every other Slack job; only a real error counts as a failed attempt."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from securitybot.aer.respond import Responder
from securitybot.config import Settings
from securitybot.kinds import load_kinds
from securitybot.outbox.jobs import Job, RetryAt
from securitybot.slack.gateway import SlackRetryLater
from securitybot.store.models import utcnow


class _LimitedSlack:
    """Every call answered as the gateway answers a 429 (slack/gateway.py)."""

    def __init__(self, *, rate_limited: bool) -> None:
        self.rate_limited = rate_limited

    def _refuse(self, method: str) -> SlackRetryLater:
        exc = SlackRetryLater(method, "ratelimited", retry_after=30.0)
        exc.spends_attempt = not self.rate_limited
        return exc

    async def open_dm(self, user: str) -> str:
        raise self._refuse("conversations.open")

    async def post(self, channel: str, text: str, *_: Any, **__: Any) -> str:
        raise self._refuse("chat.postMessage")

    async def reset_sessions(self, user: str) -> None:
        raise self._refuse("admin.users.session.reset")


def _outcomes(slack: _LimitedSlack) -> dict[str, Any]:
    settings = Settings.model_validate({"slack": {"security_channel": "CSECURITY"}})
    responder = Responder(None, settings, load_kinds(settings.alerts.dir), slack)  # type: ignore[arg-type]
    payload = {
        "org": "E0ACME",
        "user": "UALICE",
        "anomaly_id": 1,
        "type": "session",
        "rule": "new_country",
        "observed": 1,
        "reason": "sign-in from a new country",
    }
    job = Job(7, "aer_dm", None, payload, attempts=3, created_at=datetime.now(UTC))

    async def run() -> dict[str, Any]:
        return {
            "dm": await responder.dm_user(job),
            "escalate": await responder.escalate(job),
            "reset": await responder.reset(job),
        }

    return asyncio.run(run())


def test_a_429_on_an_aer_message_waits_without_spending_an_attempt() -> None:
    for name, outcome in _outcomes(_LimitedSlack(rate_limited=True)).items():
        assert isinstance(outcome, RetryAt), name
        assert not outcome.failure, f"{name}: a 429 counted as a failed attempt"
        assert (outcome.when - utcnow()).total_seconds() > 25, f"{name}: Retry-After ignored"


def test_a_real_error_on_an_aer_message_still_counts_as_an_attempt() -> None:
    for name, outcome in _outcomes(_LimitedSlack(rate_limited=False)).items():
        assert isinstance(outcome, RetryAt) and outcome.failure, name
