"""Okta Verify push through Okta's Factors API, over httpx's async client (never blocks the loop).

What Okta documents (developer.okta.com, Management API, "User Factors"):

* ``GET /api/v1/users/{id or login}`` and ``GET /api/v1/users?search=profile.email eq "…"``
  find the user; only an ``ACTIVE`` user is challenged (SUSPENDED, LOCKED_OUT, … fail closed).
* ``GET /api/v1/users/{userId}/factors`` lists enrolled factors; Okta Verify push is
  ``factorType: push`` with ``provider: OKTA``, usable when ``status: ACTIVE``.
* ``POST /api/v1/users/{userId}/factors/{factorId}/verify`` answers with
  ``factorResult: WAITING`` and ``_links.poll.href`` (``…/transactions/{transactionId}``).
* ``GET`` on that poll link answers at once (no long-poll) with ``factorResult`` ``WAITING``,
  ``SUCCESS``, ``REJECTED`` or ``TIMEOUT``; any other value fails closed. Okta: "always use the
  ``poll`` link relation and never manually construct your own URL". Real transaction ids are
  not plain tokens (``v2mst.GldKV5VxTrifyeZmWSQguA``), so the link is followed exactly as given,
  as the push's handle, once it is known to be on the configured org (https, same origin): the
  SSWS token never travels anywhere else.
* Every call carries ``Authorization: SSWS <token>``; a ``429`` (with ``X-Rate-Limit-Limit``,
  ``-Remaining`` and ``-Reset``) is an error to retry, then escalate, as for Duo.

The transaction's poll status does not tell "rejected" from "reported as not me". Okta records the
report in the System Log as ``user.account.report_suspicious_activity_by_enduser``; after a
``REJECTED`` the verifier asks the System Log (scope ``okta.logs.read``) and reports fraud when
the user filed one. Without that scope a rejection still escalates, as a denial.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from securitybot import metrics
from securitybot.config import OktaConfig
from securitybot.verify.base import PushPoll, PushStart, PushStatus, StartResult

logger = logging.getLogger(__name__)

FRAUD_EVENT = "user.account.report_suspicious_activity_by_enduser"
# A push lives five minutes at most; a report filed since then belongs to this push or a
# sibling one, and either way the user says "not me".
_FRAUD_LOOKBACK = timedelta(minutes=10)
# Only to name the user for the System Log's fraud query; the link is followed as it is.
_LINK_USER = re.compile(r"/api/v1/users/(?P<user>[A-Za-z0-9]+)/")
# The handle is kept in full in the poll job; the alert's duo_txid column holds at most this.
_TXID_MAX = 128
_POLL_RESULTS = {
    "WAITING": PushStatus.WAITING,
    "SUCCESS": PushStatus.APPROVED,
    "REJECTED": PushStatus.DENIED,
    "TIMEOUT": PushStatus.TIMEOUT,
}


class OktaProblem(Exception):
    """Okta refused or failed a call; ``detail`` is safe to show (never the token)."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def _describe(resp: httpx.Response) -> str:
    """Okta's error body (errorCode/errorSummary) plus any rate-limit reset, in one line."""
    summary = ""
    try:
        body = resp.json()
        if isinstance(body, Mapping):
            summary = f"{body.get('errorCode', '')} {body.get('errorSummary', '')}".strip()
    except ValueError:
        pass
    if resp.status_code == 429:
        reset = resp.headers.get("X-Rate-Limit-Reset")
        when = (
            datetime.fromtimestamp(int(reset), UTC).strftime("%H:%M:%SZ")
            if reset and reset.isdigit()
            else "unknown"
        )
        limit = resp.headers.get("X-Rate-Limit-Limit", "?")
        return f"Okta rate limit ({limit}/min) reached, resets at {when}"
    return f"Okta HTTP {resp.status_code}" + (f": {summary}" if summary else "")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port if url.port not in (None, 443) else None
    return url.scheme, url.host.lower(), port


def poll_link_problem(href: str, org_url: str) -> str | None:
    """Why ``href`` may not be followed with our token (None: it may): https, on ``org_url``'s
    origin, no credentials of its own."""
    try:
        url = httpx.URL(href)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "not a URL"
    if url.scheme != "https":
        return "not https"
    if url.userinfo or _origin(url) != _origin(httpx.URL(org_url)):
        return "not on okta.org_url"
    return None


def transaction_label(href: str) -> str:
    """What the alert records as the push's id: the link's last part (Okta's transaction id),
    hashed when it would not fit its column."""
    label = httpx.URL(href).path.rstrip("/").rsplit("/", 1)[-1] or href
    if len(label) > _TXID_MAX:
        return "sha256:" + hashlib.sha256(href.encode()).hexdigest()
    return label


def poll_status_from(reply: Mapping[str, Any]) -> PushPoll:
    """Map one transaction status to a ``PushPoll``; only ``SUCCESS`` is an approval."""
    result = str(reply.get("factorResult", ""))
    status = _POLL_RESULTS.get(result)
    message = str(reply.get("factorResultMessage") or "")
    if status is None:
        return PushPoll(PushStatus.ERROR, detail=f"undocumented Okta factorResult {result!r}")
    return PushPoll(status, detail=message or result)


class OktaVerifier:
    name = "okta"
    # The Slack user's email identifies the Okta user; okta.user_field says how it is matched.
    username_mode = "email"

    def __init__(self, cfg: OktaConfig) -> None:
        assert cfg.configured and cfg.org_url is not None and cfg.api_token is not None
        self._cfg = cfg
        self._org_url = cfg.org_url
        self._token = cfg.api_token
        self._client: httpx.AsyncClient | None = None
        self._closing = False

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=str(self._cfg.org_url),
                timeout=self._cfg.timeout,
                verify=ssl.create_default_context(cafile=self._cfg.ca_certs),
                follow_redirects=False,
                headers={"Accept": "application/json", "User-Agent": "securitybot"},
            )
        return self._client

    async def _call(self, call: str, method: str, path: str, **kw: Any) -> httpx.Response:
        # The token travels only in this header; it is never part of a URL, log line or detail.
        headers = {"Authorization": f"SSWS {self._token.get_secret_value()}"}
        with metrics.VERIFY_LATENCY.labels(self.name, call).time():
            try:
                resp = await self._http().request(method, path, headers=headers, **kw)
            except httpx.HTTPError as exc:
                raise OktaProblem(f"{call}: {type(exc).__name__}: {exc}") from None
        remaining = resp.headers.get("X-Rate-Limit-Remaining")
        if remaining is not None and remaining.isdigit() and int(remaining) == 0:
            logger.warning("okta: rate limit for %s exhausted (%s)", call, _describe(resp))
        if resp.status_code >= 400:
            raise OktaProblem(f"{call}: {_describe(resp)}", resp.status_code)
        return resp

    async def _find_user(self, email: str) -> Mapping[str, Any] | None:
        if self._cfg.user_field == "login":
            try:
                resp = await self._call("get_user", "GET", f"/api/v1/users/{quote(email, '@')}")
            except OktaProblem as exc:
                if exc.status == 404:
                    return None
                raise
            user = resp.json()
            return user if isinstance(user, Mapping) else None
        escaped = email.replace("\\", "\\\\").replace('"', '\\"')
        resp = await self._call(
            "find_user", "GET", "/api/v1/users", params={"search": f'profile.email eq "{escaped}"'}
        )
        users = resp.json()
        if not isinstance(users, list):
            raise OktaProblem("find_user: malformed response")
        if len(users) > 1:
            # Two Okta people share this email: we cannot know whose phone to ask.
            raise OktaProblem(f"find_user: {len(users)} Okta users have this email")
        return users[0] if users else None

    async def start_push(self, username: str, pushinfo: dict[str, str]) -> PushStart:
        # Okta's push shows its own text; pushinfo (Duo's extra lines) has no place here.
        del pushinfo
        if self._closing:
            # Like Duo's closed pool: the job fails this run and is retried after the restart.
            raise RuntimeError("the Okta verifier is closed")
        try:
            return await self._start(username)
        except OktaProblem as exc:
            return PushStart(StartResult.ERROR, detail=exc.detail)
        except (ValueError, KeyError, TypeError) as exc:
            return PushStart(StartResult.ERROR, detail=f"malformed Okta response: {exc}")

    async def _start(self, username: str) -> PushStart:
        user = await self._find_user(username)
        if user is None:
            return PushStart(StartResult.NOT_ENROLLED, detail="Okta does not know this user")
        status, user_id = str(user.get("status", "")), str(user.get("id", ""))
        if status != "ACTIVE":
            return PushStart(StartResult.DENIED, detail=f"Okta user is {status or 'not active'}")
        if not user_id:
            return PushStart(StartResult.ERROR, detail="Okta user has no id")
        resp = await self._call("list_factors", "GET", f"/api/v1/users/{user_id}/factors")
        factors = resp.json()
        if not isinstance(factors, list):
            return PushStart(StartResult.ERROR, detail="list_factors: malformed response")
        push = next(
            (
                f
                for f in factors
                if f.get("factorType") == "push"
                and f.get("provider") == "OKTA"
                and f.get("status") == "ACTIVE"
            ),
            None,
        )
        if push is None:
            return PushStart(StartResult.NOT_ENROLLED, detail="no active Okta Verify push factor")
        path = f"/api/v1/users/{user_id}/factors/{push['id']}/verify"
        try:
            reply = (await self._call("verify", "POST", path, json={})).json()
        except (OktaProblem, ValueError) as exc:
            # Okta may have sent the push all the same: never ask the phone a second time.
            detail = exc.detail if isinstance(exc, OktaProblem) else "verify: malformed response"
            return PushStart(StartResult.ERROR, detail=detail, sent=True)
        result = str(reply.get("factorResult", "")) if isinstance(reply, Mapping) else ""
        if result == "SUCCESS":
            # Okta let the user through without asking the phone: that proves nothing here.
            return PushStart(StartResult.NOT_ENROLLED, detail="Okta passed without a push")
        if result != "WAITING":
            return PushStart(
                StartResult.ERROR, detail=f"verify: factorResult {result!r}", sent=True
            )
        links = reply.get("_links")
        poll = links.get("poll") if isinstance(links, Mapping) else None
        href = poll.get("href") if isinstance(poll, Mapping) else None
        if not isinstance(href, str) or not href:
            return PushStart(StartResult.ERROR, detail="verify: no poll link", sent=True)
        problem = poll_link_problem(href, self._org_url)
        if problem is not None:
            return PushStart(StartResult.ERROR, detail=f"verify: poll link {problem}", sent=True)
        return PushStart(StartResult.PUSHED, txid=transaction_label(href), handle=href, sent=True)

    async def poll(self, txid: str) -> PushPoll:
        """``txid`` is the push's handle: the poll link Okta gave, followed as it is."""
        if self._closing:
            return PushPoll(PushStatus.WAITING, detail="shutting down")
        problem = poll_link_problem(txid, self._org_url)
        if problem is not None:
            return PushPoll(PushStatus.ERROR, detail=f"not an Okta poll link ({problem})")
        try:
            reply = (await self._call("poll", "GET", txid)).json()
        except OktaProblem as exc:
            if self._closing:  # the client closed under this poll: Okta keeps the push
                return PushPoll(PushStatus.WAITING, detail="shutting down")
            return PushPoll(PushStatus.ERROR, detail=exc.detail)
        except ValueError:
            return PushPoll(PushStatus.ERROR, detail="poll: malformed response")
        if not isinstance(reply, Mapping):
            return PushPoll(PushStatus.ERROR, detail="poll: malformed response")
        polled = poll_status_from(reply)
        if polled.status == PushStatus.DENIED:
            user = _LINK_USER.search(httpx.URL(txid).path)
            if user is not None and await self._reported_as_fraud(user["user"]):
                return PushPoll(PushStatus.FRAUD, detail="the user reported the push as not theirs")
        return polled

    async def _reported_as_fraud(self, user_id: str) -> bool:
        since = (datetime.now(UTC) - _FRAUD_LOOKBACK).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        query = f'eventType eq "{FRAUD_EVENT}" and actor.id eq "{user_id}"'
        try:
            resp = await self._call(
                "system_log", "GET", "/api/v1/logs",
                params={"since": since, "filter": query, "limit": "1"},
            )  # fmt: skip
            events = resp.json()
        except (OktaProblem, ValueError) as exc:
            # No okta.logs.read scope, or Okta failing: the rejection still escalates.
            logger.info("okta: cannot read the System Log for fraud reports: %s", exc)
            return False
        return isinstance(events, list) and bool(events)

    def saturated(self) -> bool:
        return False  # Okta answers a poll at once: there is no slot to wait for

    def close(self) -> None:
        """Call on the event loop. Okta never holds a poll; nothing new reaches Okta."""
        self._closing = True
        client, self._client = self._client, None
        if client is not None:
            # No loop running: nothing is in flight to close gracefully.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(client.aclose())
