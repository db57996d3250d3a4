"""The fake Okta's HTTP API: every request checked for its ``SSWS`` token and answered with
the rate-limit headers, routed to the users, factors, push verify and poll, and System Log
answers, from the state ``FakeOkta.__init__`` sets up (``fake_okta.FakeOkta`` builds on it)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from securitybot.demo import okta_examples as documented
from securitybot.demo._serving import TLSFake, write_reply
from securitybot.demo.fake_okta_records import (
    _RESULTS,
    FRAUD_EVENT,
    RATE_LIMIT,
    Json,
    OktaError,
    OktaRequest,
    Push,
    _iso,
    _transaction_id,
    _User,
)
from securitybot.demo.fake_push import PushBook

# The fake's log lines keep the logger name they always had.
log = logging.getLogger("securitybot.demo.fake_okta")


class OktaApi(TLSFake, PushBook[Push]):
    """Serves and answers Okta's Management API calls (the state lock held while answering)."""

    token: str
    push_timeout: float
    requests: list[OktaRequest]
    _users: dict[str, _User]
    _log: list[Json]
    _fail_status: int | None
    verify_fails: int | None
    logs_forbidden: bool
    _window: tuple[int, int]

    @property
    def org_url(self) -> str:
        return f"https://localhost:{self.port}"

    # ---- request plumbing ------------------------------------------------------------------

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        split = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        if length:
            req.rfile.read(length)
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        token_ok = req.headers.get("Authorization", "") == f"SSWS {self.token}"
        try:
            if self._fail_status == 429:
                raise OktaError.documented(429, documented.RATE_LIMITED)
            if self._fail_status is not None:
                raise OktaError(self._fail_status, "E0000009", "Internal Server Error")
            if not token_ok:
                raise OktaError(401, "E0000011", "Invalid token provided")
            status, reply = self._route(req.command, split.path, params)
        except OktaError as err:
            status, reply = err.status, err.body
        except Exception:
            log.exception("fake okta failed answering %s", split.path)
            status, reply = 500, OktaError(500, "E0000009", "Internal Server Error").body
        with self._lock:
            minute = int(time.time() // 60)
            calls = self._window[1] + 1 if self._window[0] == minute else 1
            self._window = (minute, calls)
            remaining = 0 if status == 429 else max(0, RATE_LIMIT - calls)
            self.requests.append(
                OktaRequest(req.command, split.path, params, token_ok, status, time.time())
            )
        extra = {
            "X-Rate-Limit-Limit": str(RATE_LIMIT),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str((minute + 1) * 60),
        }
        data = json.dumps(reply).encode()
        write_reply(req, status, data, headers=extra)

    def _route(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "v1"]:
            raise OktaError(404, "E0000022", "The endpoint does not support the provided HTTP "
                            "method")  # fmt: skip
        rest = parts[2:]
        with self._changed:
            self._expire_pushes()
            if method == "GET" and rest == ["users"]:
                return 200, self._search(params.get("search", ""))
            if method == "GET" and rest == ["logs"]:
                if self.logs_forbidden:
                    raise OktaError(403, "E0000006", "You do not have permission to perform "
                                    "the requested action")  # fmt: skip
                return 200, self._logs(params)
            if len(rest) >= 2 and rest[0] == "users":
                user = self._find(rest[1])
                if method == "GET" and len(rest) == 2:
                    return 200, self._user_json(user)
                if method == "GET" and rest[2:] == ["factors"]:
                    return 200, list(user.factors)
                if len(rest) >= 4 and rest[2] == "factors":
                    factor = next((f for f in user.factors if f["id"] == rest[3]), None)
                    if factor is None:
                        raise OktaError(404, "E0000007", f"Not found: Resource not found: "
                                        f"{rest[3]} (UserFactor)")  # fmt: skip
                    if method == "POST" and rest[4:] == ["verify"]:
                        return self._verify(user, factor)
                    if method == "GET" and len(rest) == 6 and rest[4] == "transactions":
                        return 200, self._transaction(user, factor, rest[5])
        raise OktaError(404, "E0000022", "The endpoint does not support the provided HTTP method")

    def _search(self, expression: str) -> list[Json]:
        prefix = 'profile.email eq "'
        if not expression.startswith(prefix) or not expression.endswith('"'):
            raise OktaError(400, "E0000031", "Invalid search.")
        email = expression[len(prefix) : -1].replace('\\"', '"').replace("\\\\", "\\")
        return [
            self._user_json(u)
            for u in self._users.values()
            if u.email.lower() == email.lower() and u.status != "DEPROVISIONED"
        ]

    def _find(self, key: str) -> _User:
        for user in self._users.values():
            if key in (user.id, user.login):
                return user
        raise OktaError(404, "E0000007", f"Not found: Resource not found: {key} (User)")

    def _verify(self, user: _User, factor: Json) -> tuple[int, Json]:
        if factor["factorType"] != "push":
            raise OktaError(400, "E0000001", "Api validation failed: passCode")
        if user.status != "ACTIVE" or factor["status"] != "ACTIVE":
            raise OktaError(403, "E0000068", "Invalid Passcode/Answer")
        if self.verify_fails == 429:
            raise OktaError.documented(429, documented.RATE_LIMITED)
        if self.verify_fails is not None:
            raise OktaError(self.verify_fails, "E0000009", "Internal Server Error")
        if user.bypass:
            return 200, {"factorResult": "SUCCESS"}
        now = time.time()
        push = Push(
            txid=_transaction_id(),
            username=user.email, user_id=user.id, factor_id=factor["id"], created_at=now,
        )  # fmt: skip
        scripted = user.next_push.popleft() if user.next_push else "ignore"
        if scripted != "ignore":
            self._settle(push, scripted)
        self._pushes[push.txid] = push
        self._changed.notify_all()
        return 201, self._example(documented.VERIFY_PUSH_WAITING, push)

    def _example(self, example: str, push: Push) -> Json:
        """A documented answer about ``push``: Okta's example with this org's host and ids."""
        host = urlsplit(self.org_url).netloc
        reply: Json = documented.render(
            example, host, user_id=push.user_id, factor_id=push.factor_id,
            transaction_id=push.txid,
        )  # fmt: skip
        return reply

    def _transaction(self, user: _User, factor: Json, txid: str) -> Json:
        push = self._pushes.get(txid)
        if push is None or push.user_id != user.id or push.factor_id != factor["id"]:
            raise OktaError(404, "E0000007", f"Not found: Resource not found: {txid} "
                            "(FactorTransaction)")  # fmt: skip
        example = {
            "WAITING": documented.POLL_WAITING,
            "SUCCESS": documented.POLL_SUCCESS,
            "REJECTED": documented.POLL_REJECTED,
            "TIMEOUT": documented.POLL_TIMEOUT,
        }[push.outcome]
        return self._example(example, push)

    def _logs(self, params: dict[str, str]) -> list[Json]:
        since = params.get("since", "")
        query = params.get("filter", "")
        matches = [
            e
            for e in self._log
            if e["published"] >= since
            and f'eventType eq "{e["eventType"]}"' in query
            and f'actor.id eq "{e["actor"]["id"]}"' in query
        ]
        return matches[: int(params.get("limit") or 100)]

    # ---- helpers (lock held) ---------------------------------------------------------------

    def _settle(self, push: Push, answer: str) -> None:
        push.outcome, push.answer = _RESULTS[answer], answer
        if answer == "fraud":
            self._log.append({
                "uuid": str(uuid.uuid4()),
                "published": _iso(time.time()),
                "eventType": FRAUD_EVENT,
                "displayMessage": "User report suspicious activity",
                "severity": "WARN",
                "actor": {"id": push.user_id, "type": "User", "alternateId": push.username,
                          "displayName": push.username},
                "outcome": {"result": "SUCCESS"},
            })  # fmt: skip

    def _expire_pushes(self) -> None:
        now = time.time()
        for push in self._pushes.values():
            if push.waiting and now - push.created_at >= self.push_timeout:
                push.outcome = "TIMEOUT"

    def _user_json(self, user: _User) -> Json:
        local = user.email.split("@")[0]
        return {
            "id": user.id,
            "status": user.status,
            "profile": {"login": user.login, "email": user.email, "firstName": local.title(),
                        "lastName": "Example"},
            "_links": {"self": {"href": f"{self.org_url}/api/v1/users/{user.id}"}},
        }  # fmt: skip
