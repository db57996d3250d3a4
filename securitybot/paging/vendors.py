"""The pagers' HTTP APIs, and what each answer means for the outbox job that made the call.

Plain httpx rather than a vendor SDK: each call is one JSON request, and the outbox, not a
client library's own in-process retry loop, must own retries, so that a 429 or an outage
survives restarts and is shared fairly between replicas (PagerDuty's ``pagerduty`` client and
Opsgenie's SDK both retry inside the call).

What an answer means (PagerDuty: docs/events-API-v2/01-Overview.md, "Response Codes & Retry
Logic"; Opsgenie: docs.opsgenie.com/docs/response and /docs/api-rate-limiting):

* 2xx: done.
* 429: not yet. Retried after the vendor's ``Retry-After`` or Opsgenie's
  ``X-RateLimit-Period-In-Sec``; PagerDuty's Events API documents neither, and suggests
  retries about 30 seconds apart. It spends no attempt: the event is fine.
* 5xx, 408, a network error: retried with backoff; after ``MAX_ATTEMPTS`` the job is dead.
* any other 4xx: the vendor refused this request for good (PagerDuty's "400 ... Retry? No");
  the job is dead at once, with the vendor's message, and counted in /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx

from securitybot import metrics
from securitybot.config import OpsgenieConfig, PagerDutyConfig
from securitybot.outbox.jobs import Done, GiveUp, Job, Outcome, RetryAt, backoff
from securitybot.store.models import utcnow

MAX_ATTEMPTS = 20  # with backoff capped at 10 minutes: about two and a half hours of outage
PAGERDUTY_429_WAIT = 30.0
TIMEOUT = 10.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: httpx.Headers

    @property
    def message(self) -> str:
        """The vendor's own words about a refusal (PagerDuty's message and errors, Opsgenie's
        message and errors), for the job's last_error."""
        body = self.body
        if not isinstance(body, dict):
            return ""
        parts = [str(body.get("message") or body.get("status") or "")]
        errors = body.get("errors")
        if isinstance(errors, list):
            parts += [str(e) for e in errors]
        elif isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        return "; ".join(p for p in parts if p)[:500]


async def call(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Answer:
    resp = await client.request(method, url, timeout=TIMEOUT, **kw)
    try:
        body: Any = resp.json()
    except ValueError:
        body = resp.text[:500]
    return Answer(resp.status_code, body, resp.headers)


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 3600 else None


def outcome(job: Job, provider: str, answer: Answer | None, error: Exception | None = None,
            ) -> Outcome:  # fmt: skip
    """What ``answer`` (or the network ``error``) means for ``job``."""
    if answer is not None and 200 <= answer.status < 300:
        return Done()
    if answer is not None and answer.status == 429:
        metrics.PAGES_RATE_LIMITED.labels(provider).inc()
        wait = (_seconds(answer.headers.get("Retry-After"))
                or _seconds(answer.headers.get("X-RateLimit-Period-In-Sec"))
                or PAGERDUTY_429_WAIT)  # fmt: skip
        return RetryAt(
            utcnow() + timedelta(seconds=wait),
            f"HTTP 429 from {provider}: retrying in {wait:.0f} s",
            failure=False,
        )
    if answer is None:
        reason = f"{type(error).__name__}: {error}"
    else:
        reason = f"HTTP {answer.status} from {provider}: {answer.message}".rstrip(": ")
        if 400 <= answer.status < 500 and answer.status != 408:
            return GiveUp(reason)
    if job.attempts + 1 >= MAX_ATTEMPTS:
        return GiveUp(reason)
    return RetryAt(utcnow() + backoff(job.attempts + 1, cap=600), reason)


class PagerDuty:
    """Events API v2 (``POST {base_url}/v2/enqueue``) and the REST API's users."""

    def __init__(self, cfg: PagerDutyConfig, client: httpx.AsyncClient) -> None:
        self.cfg, self.client = cfg, client

    async def send(self, event: dict[str, Any]) -> Answer:
        assert self.cfg.routing_key is not None
        body = {"routing_key": self.cfg.routing_key.get_secret_value(), **event}
        return await call(self.client, "POST", f"{self.cfg.base_url}/v2/enqueue", json=body)

    def may_follow(self, link: str) -> bool:
        """A ``self`` link from a webhook is followed only into the configured REST API: the
        token must never be sent anywhere else."""
        base = httpx.URL(self.cfg.api_url)
        url = httpx.URL(link)
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)

    async def user(self, link: str) -> Answer:
        """``GET`` a user by the link PagerDuty gave (the webhook agent's ``self``)."""
        assert self.cfg.api_token is not None
        headers = {"Authorization": f"Token token={self.cfg.api_token.get_secret_value()}",
                   "Accept": "application/vnd.pagerduty+json;version=2"}  # fmt: skip
        return await call(self.client, "GET", link, headers=headers)


class Opsgenie:
    """Alert API v2: create, then act on the alert by its alias."""

    def __init__(self, cfg: OpsgenieConfig, client: httpx.AsyncClient) -> None:
        self.cfg, self.client = cfg, client

    @property
    def _headers(self) -> dict[str, str]:
        assert self.cfg.api_key is not None
        return {"Authorization": f"GenieKey {self.cfg.api_key.get_secret_value()}"}

    def _alias_url(self, alias: str, action: str) -> str:
        return f"{self.cfg.base_url}/v2/alerts/{quote(alias, safe='')}/{action}"

    async def create(self, body: dict[str, Any]) -> Answer:
        return await call(self.client, "POST", f"{self.cfg.base_url}/v2/alerts", json=body,
                          headers=self._headers)  # fmt: skip

    async def act(self, alias: str, action: str, body: dict[str, Any]) -> Answer:
        """``acknowledge``, ``close`` or ``notes`` (add a note) on the alert with ``alias``."""
        return await call(self.client, "POST", self._alias_url(alias, action), json=body,
                          params={"identifierType": "alias"}, headers=self._headers)  # fmt: skip

    async def notes(self, alias: str) -> Answer:
        """The alert's latest notes (newest first, at most 100)."""
        return await call(self.client, "GET", self._alias_url(alias, "notes"),
                          params={"identifierType": "alias", "order": "desc", "limit": "100"},
                          headers=self._headers)  # fmt: skip
