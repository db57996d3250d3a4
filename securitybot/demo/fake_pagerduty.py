"""A local fake of PagerDuty: the Events API v2 (``POST /v2/enqueue``), the REST API's
``GET /users/{id}``, and the v3 webhooks PagerDuty sends back, signed like PagerDuty signs them.

Every answer is one PagerDuty documents, verbatim where the documentation gives an example
(the examples are in ``pagerduty_examples``):

* Events API v2 (github.com/PagerDuty/developer-docs, docs/events-API-v2/01-Overview.md and
  02-Trigger-Events.md; github.com/PagerDuty/api-schema, reference/events-v2/openapiv3.json):
  ``202 {"status": "success", "message": "Event processed", "dedup_key": ...}``; ``400`` with
  ``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`` (the
  routing-key example of v2.developer.pagerduty.com's "Send an Event") or, for a body that is
  not JSON, the OpenAPI's ``{"status": "Unrecognized object", ...}``; ``429`` with an empty
  body ("429 - Request Limit Exceeded", 05-Rate-Limits.md). Summaries over 1024 characters and
  dedup keys over 255 are refused, as the field table says they may not be longer. A trigger
  with the dedup key of an open alert opens no second incident; acknowledge and resolve without
  an open alert are dropped (02-Trigger-Events.md, "Alert De-Duplication").
* REST ``GET /users/{id}``: the "Get a user" response example of api-schema's
  reference/REST/openapiv3.json, with the fake's own id, name and email; errors as
  docs/REST-API/14-Errors.md shows them; ``Authorization: Token token=...``
  (docs/REST-API/02-Authentication.md).
* Webhooks v3 (docs/webhooks/01-Overview.md, 04-Signatures.md): the documented example payload
  (``incident.priority_updated``'s), with ``event_type``, ``data.status``, ``data.incident_key``
  and the agent changed to what happened here; ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of
  the body>``, and an ``X-Webhook-Id`` repeated on each delivery attempt (02-Behavior.md).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import httpx

from securitybot.demo._serving import FakeServer, ServedFake, write_reply
from securitybot.demo.pagerduty_examples import DOCUMENTED_USER, DOCUMENTED_WEBHOOK

log = logging.getLogger(__name__)

Json = dict[str, Any]

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"  # the Events API OpenAPI example's key
API_TOKEN = "y_NbAkKc66ryYTWUXYEu"  # docs/REST-API/02-Authentication.md's example token
WEBHOOK_SECRET = "fake-pagerduty-webhook-secret-0123456789"
SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255


def sign_webhook(secret: str, body: bytes) -> str:
    """``X-PagerDuty-Signature``'s value for ``body`` (04-Signatures.md)."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PdRequest:
    method: str
    path: str
    body: Json | None
    headers: dict[str, str]
    status: int
    at: float


@dataclass
class Incident:
    id: str
    number: int
    dedup_key: str
    summary: str
    severity: str
    status: str = "triggered"  # triggered, acknowledged, resolved
    # Every event applied to the incident's alert, in order: its alert log.
    log: list[str] = field(default_factory=lambda: ["trigger"])
    event: Json = field(default_factory=dict)  # the trigger that opened it


@dataclass(frozen=True)
class PdUser:
    id: str
    name: str
    email: str


@dataclass
class _Failure:
    status: int
    times: int
    headers: dict[str, str]


class FakePagerDuty(ServedFake):
    """Connect the bot with ``**fake.config()``; drive the pager with ``acknowledge`` and
    ``resolve`` (which send the signed webhooks to ``webhook_url``)."""

    def __init__(
        self,
        routing_key: str = ROUTING_KEY,
        api_token: str = API_TOKEN,
        webhook_secret: str = WEBHOOK_SECRET,
    ) -> None:
        self.routing_key = routing_key
        self.api_token = api_token
        self.webhook_secret = webhook_secret
        self.requests: list[PdRequest] = []
        self.incidents: dict[str, Incident] = {}  # by dedup key; a resolved one is replaced
        self.closed: list[Incident] = []
        self.users: dict[str, PdUser] = {}
        self.webhook_url: str | None = None
        self.latency = 0.0  # seconds before each answer (the request is recorded at once)
        self._failures: list[_Failure] = []
        self._numbers = 0
        self._lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakePagerDuty:
        if self._server is None:
            self._serve_in_thread(FakeServer("fake-pagerduty", self._serve), "fake-pagerduty")
        return self

    @property
    def base_url(self) -> str:
        """Where the Events API lives (events.pagerduty.com's stand-in)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """Where the REST API lives (api.pagerduty.com's stand-in): the same server."""
        return f"http://127.0.0.1:{self.port}"

    def config(self, *, webhooks: bool = True) -> Json:
        pd: Json = {"routing_key": self.routing_key, "base_url": self.base_url}
        if webhooks:
            pd |= {"api_url": self.api_url, "api_token": self.api_token,
                   "webhook_secret": self.webhook_secret}  # fmt: skip
        return {"pagerduty": pd}

    # ---- scenario controls -------------------------------------------------------------------

    def add_user(self, user_id: str, name: str, email: str) -> PdUser:
        user = PdUser(user_id, name, email)
        with self._lock:
            self.users[user_id] = user
        return user

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` Events API calls with ``status`` (429, 400, 500...)."""
        with self._lock:
            self._failures.append(_Failure(status, times, dict(headers or {})))

    def events(self, action: str | None = None, dedup_key: str | None = None) -> list[Json]:
        """Bodies of the Events API calls PagerDuty accepted (202), optionally filtered."""
        with self._lock:
            found = [r.body or {} for r in self.requests
                     if r.path == "/v2/enqueue" and r.status == 202]  # fmt: skip
        return [
            b for b in found
            if (action is None or b.get("event_action") == action)
            and (dedup_key is None or b.get("dedup_key") == dedup_key)
        ]  # fmt: skip

    def enqueue_calls(self) -> list[PdRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == "/v2/enqueue"]

    def incidents_for(self, dedup_key: str) -> list[Incident]:
        """Every incident a dedup key ever opened (resolved ones included)."""
        with self._lock:
            found = [i for i in self.closed if i.dedup_key == dedup_key]
            if dedup_key in self.incidents:
                found.append(self.incidents[dedup_key])
            return found

    def wait_for_event(
        self, action: str, dedup_key: str | None = None, count: int = 1, timeout: float = 10.0
    ) -> list[Json]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(action, dedup_key)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {count} PagerDuty {action} events for {dedup_key}")
            time.sleep(0.02)

    # ---- the pager: a person acts in PagerDuty, which tells the bot ---------------------------

    def webhook_body(
        self, event_type: str, dedup_key: str, user_id: str, *, event_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> bytes:  # fmt: skip
        """The documented v3 payload for ``event_type`` on the incident of ``dedup_key``, acted
        on by the fake's user ``user_id``."""
        with self._lock:
            incident = self.incidents.get(dedup_key) or next(
                (i for i in reversed(self.closed) if i.dedup_key == dedup_key), None
            )
            user = self.users.get(user_id)
        payload = copy.deepcopy(DOCUMENTED_WEBHOOK)
        event = payload["event"]
        event["id"] = event_id or str(uuid.uuid4())
        event["event_type"] = event_type
        when = occurred_at or datetime.now(UTC)
        event["occurred_at"] = (
            when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        )
        event["agent"].update({
            "html_url": f"https://acme.pagerduty.com/users/{user_id}", "id": user_id,
            "self": f"{self.api_url}/users/{user_id}",
            "summary": user.name if user else "Tenex Engineer",
        })  # fmt: skip
        data = event["data"]
        data["status"] = event_type.removeprefix("incident.")
        data["incident_key"] = dedup_key
        if incident is not None:
            data.update({
                "id": incident.id, "number": incident.number, "title": incident.summary,
                "self": f"https://api.pagerduty.com/incidents/{incident.id}",
                "html_url": f"https://acme.pagerduty.com/incidents/{incident.id}",
            })  # fmt: skip
        return json.dumps(payload).encode()

    def signed(self, body: bytes, *, secret: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-PagerDuty-Signature": sign_webhook(secret or self.webhook_secret, body),
            "X-Webhook-Id": str(uuid.uuid4()),
        }

    def _act(self, dedup_key: str, user_id: str, status: str) -> httpx.Response | None:
        with self._lock:
            incident = self.incidents.get(dedup_key)
            if incident is None:
                raise KeyError(f"no open incident for {dedup_key}")
            incident.status = status
            incident.log.append(f"{status} by {user_id}")
            if status == "resolved":
                self.closed.append(self.incidents.pop(dedup_key))
        if self.webhook_url is None:
            return None
        body = self.webhook_body(f"incident.{status}", dedup_key, user_id)
        return httpx.post(self.webhook_url, content=body, headers=self.signed(body), timeout=10)

    def acknowledge(self, dedup_key: str, user_id: str) -> httpx.Response | None:
        """``user_id`` acknowledges the incident in PagerDuty; the webhook goes to the bot."""
        return self._act(dedup_key, user_id, "acknowledged")

    def resolve(self, dedup_key: str, user_id: str) -> httpx.Response | None:
        return self._act(dedup_key, user_id, "resolved")

    # ---- serving -----------------------------------------------------------------------------

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        split = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        body: Json | None = None
        try:
            parsed = json.loads(raw) if raw else None
            body = parsed if isinstance(parsed, dict) else None
        except ValueError:
            parsed = None
        headers = {k: v for k, v in req.headers.items()}
        extra: dict[str, str] = {}
        if req.command == "POST" and split.path == "/v2/enqueue":
            status, reply, extra = self._enqueue(raw, body)
        elif req.command == "GET" and split.path.startswith("/users/"):
            status, reply = self._user(split.path.removeprefix("/users/"), headers)
        else:
            status, reply = 404, {"error": {"message": "Not Found", "code": 2100}}
        with self._lock:
            self.requests.append(PdRequest(req.command, split.path, body, headers, status,
                                           time.time()))  # fmt: skip
        if self.latency:
            time.sleep(self.latency)
        data = b"" if reply is None else json.dumps(reply).encode()
        write_reply(req, status, data, None if reply is None else "application/json", extra)

    def _failure(self) -> _Failure | None:
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self._failures.pop(0)
            return failure

    def _enqueue(self, raw: bytes, body: Json | None) -> tuple[int, Json | None, dict[str, str]]:
        failure = self._failure()
        if failure is not None:
            if failure.status == 429:
                return 429, None, failure.headers  # documented: an empty text body
            if failure.status == 400:
                return 400, _invalid("Length of 'routing_key' is incorrect (should be 32 "
                                     "characters)"), failure.headers  # fmt: skip
            error = {"status": "Internal Server Error", "message": "Internal Server Error"}
            return failure.status, error, failure.headers
        if body is None:
            # events-v2 openapiv3.json, "Example Error Response".
            return 400, {"status": "Unrecognized object",
                         "message": "Event object format is unrecognized",
                         "errors": ["JSON parse error"]}, {}  # fmt: skip
        problem = _problem(body, self.routing_key)
        if problem is not None:
            return 400, _invalid(problem), {}
        action = body["event_action"]
        dedup_key = str(body.get("dedup_key") or uuid.uuid4().hex)
        with self._lock:
            open_incident = self.incidents.get(dedup_key)
            if action == "trigger":
                if open_incident is None:
                    self._numbers += 1
                    payload = body["payload"]
                    self.incidents[dedup_key] = Incident(
                        id="Q" + uuid.uuid4().hex[:13].upper(), number=self._numbers,
                        dedup_key=dedup_key, summary=payload["summary"],
                        severity=payload["severity"], event=body,
                    )  # fmt: skip
                else:
                    open_incident.log.append("trigger")
            elif open_incident is not None:  # acknowledge, resolve: dropped without an alert
                open_incident.log.append(action)
                if action == "acknowledge" and open_incident.status == "triggered":
                    open_incident.status = "acknowledged"
                elif action == "resolve":
                    open_incident.status = "resolved"
                    self.closed.append(self.incidents.pop(dedup_key))
        # 02-Trigger-Events.md / events-v2 openapiv3.json, "Example Success Response".
        return 202, {"status": "success", "message": "Event processed",
                     "dedup_key": dedup_key}, {}  # fmt: skip

    def _user(self, user_id: str, headers: dict[str, str]) -> tuple[int, Json]:
        if headers.get("Authorization") != f"Token token={self.api_token}":
            return 401, {"error": {"message": "Authentication failed", "code": 2006}}
        with self._lock:
            user = self.users.get(user_id)
        if user is None:
            return 404, {"error": {"message": "Not Found", "code": 2100}}
        reply = copy.deepcopy(DOCUMENTED_USER)
        reply["user"].update({
            "id": user.id, "summary": user.name, "name": user.name, "email": user.email,
            "self": f"https://api.pagerduty.com/users/{user.id}",
            "html_url": f"https://subdomain.pagerduty.com/users/{user.id}",
        })  # fmt: skip
        return 200, reply


def _invalid(error: str) -> Json:
    # v2.developer.pagerduty.com "Send an Event", the documented 400 answer.
    return {"status": "invalid event", "message": "Event object is invalid", "errors": [error]}


def _problem(body: Json, routing_key: str) -> str | None:
    """Why PagerDuty would refuse ``body`` (the first problem), or None. Only the routing-key
    wording is PagerDuty's own example; the others name the documented rule they break."""
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        return "Length of 'routing_key' is incorrect (should be 32 characters)"
    if key != routing_key:
        return "'routing_key' does not match an integration"
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        return "'event_action' is missing or invalid"
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > DEDUP_KEY_LIMIT):
        return "'dedup_key' is longer than 255 characters"
    if action != "trigger":
        return None if dedup else "'dedup_key' is required unless event_action is trigger"
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return "'payload' is missing"
    for name in ("summary", "source", "severity"):
        if not isinstance(payload.get(name), str) or not payload[name].strip():
            return f"'payload.{name}' is missing or blank"
    if len(payload["summary"]) > SUMMARY_LIMIT:
        return "'payload.summary' is longer than 1024 characters"
    if payload["severity"] not in ("critical", "error", "warning", "info"):
        return "'payload.severity' is invalid"
    return None
