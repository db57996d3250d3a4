"""A local fake of Opsgenie's Alert API (``/v2/alerts``), as far as paging uses it.

Answers follow Opsgenie's documentation (docs.opsgenie.com/docs/alert-api, /docs/response,
/docs/api-rate-limiting) and its OpenAPI (github.com/opsgenie/opsgenie-python-sdk,
opsgenie-oas.yml):

* create, acknowledge, close and add-note answer ``202`` with the documented sample
  ``{"result": "Request will be processed", "took": 0.302, "requestId": ...}`` (each request gets
  its own requestId, as Opsgenie gives one per request); the work happens after the answer, so
  acknowledging an alias that has no alert still answers 202 (its request status would read
  "Alert does not exist").
* an open alert with the same alias is not created again: its ``count`` goes up (alias
  de-duplication).
* list notes answers the OpenAPI's ``ListAlertNotesResponse`` (``data`` of ``{note, owner,
  createdAt, offset}``, ``paging``, ``took``, ``requestId``).
* errors use the ErrorResponse shape (``message``, ``took``, ``requestId``); the 422 and 429
  bodies and the 429's ``X-RateLimit-State/-Reason/-Period-In-Sec`` headers are those of
  Opsgenie's own Go SDK tests (github.com/opsgenie/opsgenie-go-sdk-v2, client/client_test.go).
  Field limits are the documented ones: message 130, alias 512, description 15000 characters,
  at most 20 tags of 50, responders of type team, user, escalation or schedule, priority P1-P5.
* every request must carry ``Authorization: GenieKey <apiKey>``, else 401.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from securitybot.demo._serving import FakeServer, ServedFake, write_reply

log = logging.getLogger(__name__)

Json = dict[str, Any]
API_KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"  # shaped like the documentation's sample key
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
RESPONDER_TYPES = ("team", "user", "escalation", "schedule")


@dataclass(frozen=True)
class OgRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Json | None
    headers: dict[str, str]
    status: int
    at: float


@dataclass
class OgAlert:
    alias: str
    body: Json  # the create request
    status: str = "open"
    acknowledged: bool = False
    count: int = 1
    notes: list[Json] = field(default_factory=list)


@dataclass
class _Failure:
    status: int
    times: int


def _error(message: str, **more: Any) -> Json:
    return {"message": message, **more, "took": 0.083, "requestId": str(uuid.uuid4())}


class FakeOpsgenie(ServedFake):
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.requests: list[OgRequest] = []
        self.alerts: dict[str, OgAlert] = {}  # open alerts by alias
        self.closed: list[OgAlert] = []
        self.latency = 0.0
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()

    def start(self) -> FakeOpsgenie:
        if self._server is None:
            self._serve_in_thread(FakeServer("fake-opsgenie", self._serve), "fake-opsgenie")
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, **more: Any) -> Json:
        return {"opsgenie": {"api_key": self.api_key, "base_url": self.base_url, **more}}

    def fail_next(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._failures.append(_Failure(status, times))

    def calls(self, action: str | None = None, alias: str | None = None) -> list[OgRequest]:
        """Accepted (202) calls: action is "create", "acknowledge", "close" or "notes"."""
        with self._lock:
            found = [r for r in self.requests if r.status == 202]
        out = []
        for r in found:
            parts = r.path.strip("/").split("/")
            act = "create" if len(parts) == 2 else parts[-1]
            who = (r.body or {}).get("alias") if act == "create" else unquote(parts[2])
            if (action is None or act == action) and (alias is None or who == alias):
                out.append(r)
        return out

    def alert(self, alias: str) -> OgAlert | None:
        with self._lock:
            return self.alerts.get(alias) or next(
                (a for a in reversed(self.closed) if a.alias == alias), None
            )

    def wait_for(self, action: str, alias: str | None = None, count: int = 1,
                 timeout: float = 10.0) -> list[OgRequest]:  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls(action, alias)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {count} Opsgenie {action} calls for {alias}")
            time.sleep(0.02)

    # ---- serving -------------------------------------------------------------------------------

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        split = urlsplit(req.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        headers = {k: v for k, v in req.headers.items()}
        body: Json | None = None
        extra: dict[str, str] = {}
        try:
            parsed = json.loads(raw) if raw else {}
            body = parsed if isinstance(parsed, dict) else None
            status, reply, extra = self._route(req.command, split.path, query, body, headers)
        except ValueError:
            status, reply = 400, _error("Invalid JSON body")
        with self._lock:
            self.requests.append(OgRequest(req.command, split.path, query, body, headers,
                                           status, time.time()))  # fmt: skip
        if self.latency:
            time.sleep(self.latency)
        data = json.dumps(reply).encode()
        write_reply(req, status, data,
                    headers={"X-Request-ID": str(reply.get("requestId", "")), **extra})  # fmt: skip

    def _failure(self) -> _Failure | None:
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self._failures.pop(0)
            return failure

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Json | None,
        headers: dict[str, str],
    ) -> tuple[int, Json, dict[str, str]]:  # fmt: skip
        if headers.get("Authorization") != f"GenieKey {self.api_key}":
            return 401, _error("Could not authenticate"), {}
        failure = self._failure()
        if failure is not None:
            if failure.status == 429:
                return 429, {"message": "TooManyRequests", "took": 1, "requestId": "rId"}, {
                    "X-RateLimit-State": "THROTTLED", "X-RateLimit-Reason": "ACCOUNT",
                    "X-RateLimit-Period-In-Sec": "60",
                }  # fmt: skip
            if failure.status == 422:
                return (
                    422,
                    _error(
                        "Request body is not processable. Please check the errors.",
                        errors={"recipients#type": "Invalid recipient type 'bb'"},
                    ),
                    {},
                )
            return failure.status, _error("Internal Server Error"), {}
        if body is None:
            return 400, _error("Invalid JSON body"), {}
        parts = path.strip("/").split("/")
        if parts[:2] != ["v2", "alerts"]:
            return 404, _error("Resource or handler not found"), {}
        if method == "POST" and len(parts) == 2:
            return self._create(body)
        if len(parts) != 4 or query.get("identifierType") != "alias":
            return 404, _error("Resource or handler not found"), {}
        alias, action = unquote(parts[2]), parts[3]
        if method == "GET" and action == "notes":
            return 200, self._notes(alias), {}
        if method != "POST" or action not in ("acknowledge", "close", "notes"):
            return 405, _error("URL is valid but HTTP method not supported"), {}
        if action == "notes" and not str(body.get("note") or "").strip():
            return 422, _error("Request body is not processable. Please check the errors.",
                               errors={"note": "Note can not be empty."}), {}  # fmt: skip
        with self._lock:
            alert = self.alerts.get(alias)
            if alert is None and action == "notes":  # a closed alert still takes notes
                alert = next((a for a in reversed(self.closed) if a.alias == alias), None)
            if alert is not None:
                if action == "acknowledge":
                    alert.acknowledged = True
                elif action == "close":
                    alert.status = "closed"
                    self.closed.append(self.alerts.pop(alias))
                else:
                    alert.notes.append({
                        "note": body["note"], "owner": body.get("user") or "API",
                        "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                        "offset": f"{time.time_ns() // 1000}_{len(alert.notes)}",
                    })  # fmt: skip
        return 202, self._accepted(), {}

    @staticmethod
    def _accepted() -> Json:
        # docs.opsgenie.com/docs/alert-api, "Create Alert" sample response.
        return {"result": "Request will be processed", "took": 0.302,
                "requestId": str(uuid.uuid4())}  # fmt: skip

    def _create(self, body: Json) -> tuple[int, Json, dict[str, str]]:
        errors = _create_problems(body)
        if errors:
            return 422, _error("Request body is not processable. Please check the errors.",
                               errors=errors), {}  # fmt: skip
        alias = str(body.get("alias") or uuid.uuid4())
        with self._lock:
            open_alert = self.alerts.get(alias)
            if open_alert is not None:
                open_alert.count += 1
            else:
                self.alerts[alias] = OgAlert(alias, body)
        return 202, self._accepted(), {}

    def _notes(self, alias: str) -> Json:
        alert = self.alert(alias)
        notes = list(reversed(alert.notes)) if alert else []  # newest first (order=desc)
        return {"data": notes, "paging": {}, "took": 0.01, "requestId": str(uuid.uuid4())}


def _create_problems(body: Json) -> dict[str, str]:
    errors: dict[str, str] = {}
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        errors["message"] = "Message can not be empty."
    elif len(message) > 130:
        errors["message"] = "Message can not be longer than 130 characters."
    if len(str(body.get("alias") or "")) > 512:
        errors["alias"] = "Alias can not be longer than 512 characters."
    if len(str(body.get("description") or "")) > 15000:
        errors["description"] = "Description can not be longer than 15000 characters."
    if body.get("priority") not in (None, *PRIORITIES):
        errors["priority"] = f"Invalid priority {body.get('priority')!r}"
    tags = body.get("tags") or []
    if len(tags) > 20 or any(len(str(t)) > 50 for t in tags):
        errors["tags"] = "At most 20 tags of at most 50 characters."
    for responder in body.get("responders") or []:
        if responder.get("type") not in RESPONDER_TYPES:
            errors["responders#type"] = f"Invalid recipient type '{responder.get('type')}'"
    details = body.get("details") or {}
    if sum(len(str(k)) + len(str(v)) for k, v in details.items()) > 8000:
        errors["details"] = "Details can not be longer than 8000 characters in total."
    return errors
