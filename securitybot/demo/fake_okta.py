"""A local fake of the parts of Okta's Management API that Okta Verify push uses, over HTTPS.

Shapes follow Okta's own documentation (developer.okta.com/docs/api/openapi/okta-management/,
tags "User", "UserFactor" and "SystemLog"): users with ``status`` and ``profile``, factors
``{"factorType": "push", "provider": "OKTA", "status": "ACTIVE"}``. The push itself answers with
Okta's documented examples verbatim (``okta_examples``: the verify answer with its ``_links``,
the WAITING/SUCCESS/REJECTED/TIMEOUT transaction bodies, the 429 E0000047 error object), with
dotted transaction ids as real orgs send them; errors are ``{"errorCode": "E00000xx", ...}`` and
the ``X-Rate-Limit-Limit/-Remaining/-Reset`` headers are on every answer. Every request must carry
``Authorization: SSWS <token>``, or it gets Okta's ``E0000011`` 401.

Scenario controls use the fake Duo's words (``enroll``, ``answer_push(txid, "allow")``,
``set_preauth``...), so one test can drive either provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from securitybot.demo import okta_examples as documented
from securitybot.demo._serving import TLSFake
from securitybot.demo.fake_push import PushBook

log = logging.getLogger(__name__)

Json = dict[str, Any]
FRAUD_EVENT = "user.account.report_suspicious_activity_by_enduser"
# The fake Duo's answer words -> Okta's factorResult ("fraud": rejected, then reported).
_RESULTS = {"allow": "SUCCESS", "deny": "REJECTED", "fraud": "REJECTED", "timeout": "TIMEOUT"}
ANSWERS = frozenset(_RESULTS)
RATE_LIMIT = 600  # per minute, like many /api/v1/users endpoints


def _oid(prefix: str, seed: str) -> str:
    """An Okta-style 20-character id (00u… users, opf… push factors, v2m… transactions)."""
    return prefix + hashlib.sha1(seed.encode()).hexdigest()[: 20 - len(prefix)]


def _transaction_id() -> str:
    """Shaped like real push transaction ids: "v2mst." and 22 base64url characters, so a dot,
    a "-" or a "_" can appear (``v2mst.GldKV5VxTrifyeZmWSQguA``, okta-sdk-dotnet's fixture)."""
    return "v2mst." + base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Push:
    txid: str
    username: str
    user_id: str
    factor_id: str
    created_at: float
    outcome: str = "WAITING"  # Okta's factorResult
    answer: str | None = None  # the fake Duo's word that set the outcome
    pushinfo: dict[str, str] = field(default_factory=dict)

    @property
    def waiting(self) -> bool:
        return self.outcome == "WAITING"


@dataclass(frozen=True)
class OktaRequest:
    method: str
    path: str
    params: dict[str, str]
    token_ok: bool
    status: int
    at: float


@dataclass
class _User:
    id: str
    login: str
    email: str
    status: str = "ACTIVE"
    factors: list[Json] = field(default_factory=list)
    bypass: bool = False  # verify answers SUCCESS without asking the phone
    next_push: deque[str] = field(default_factory=deque)


class OktaError(Exception):
    def __init__(self, status: int, code: str, summary: str) -> None:
        super().__init__(summary)
        self.status = status
        self.body: Json = {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae" + uuid.uuid4().hex[:19],
            "errorCauses": [],
        }

    @classmethod
    def documented(cls, status: int, example: str) -> OktaError:
        """An error answered with one of Okta's documented error objects, verbatim."""
        err = cls(status, "", "")
        err.body = documented.render(example, "")
        return err


class FakeOkta(TLSFake, PushBook[Push]):
    """Okta fake. Connect with okta.org_url = fo.org_url, okta.ca_certs = fo.ca_path."""

    push_vendor = "Okta Verify"

    def __init__(self, token: str = "00fake-okta-api-token-0123456789abcdef") -> None:
        self.token = token
        # Okta Verify pushes expire after five minutes unanswered; then polls read TIMEOUT.
        self.push_timeout = 300.0
        self.requests: list[OktaRequest] = []
        self._users: dict[str, _User] = {}
        self._pushes: dict[str, Push] = {}
        self._log: list[Json] = []
        self._fail_status: int | None = None
        # Answer every verify (the call that pushes) with this HTTP status instead.
        self.verify_fails: int | None = None
        # A token without okta.logs.read: System Log queries answer 403 E0000006.
        self.logs_forbidden = False
        self._window = (0, 0)  # (minute, calls in it) for the rate-limit headers
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeOkta:
        if self._server is None:
            self._serve_tls("fake-okta", self._serve)
        return self

    @property
    def org_url(self) -> str:
        return f"https://localhost:{self.port}"

    def config(self, timeout: float = 5) -> Json:
        """The config sections that point the bot at this fake (it must be started)."""
        return {
            "verify": {"provider": "okta"},
            "okta": {"org_url": self.org_url, "api_token": self.token, "ca_certs": self.ca_path,
                     "timeout": timeout},
        }  # fmt: skip

    # ---- scenario controls -----------------------------------------------------------------

    def enroll(
        self, username: str, devices: list[str] | None = None, *, login: str | None = None
    ) -> None:
        """Add the active user with email `username` (and login `login`, default the same);
        devices are factor kinds ("push", "sms"), [] = none. A push factor is Okta Verify."""
        kinds = ["push"] if devices is None else devices
        user_id = _oid("00u", username)
        factors = [self._factor(username, user_id, kind, i) for i, kind in enumerate(kinds)]
        if login is not None:
            user_id = _oid("00u", login)
            factors = [self._factor(login, user_id, kind, i) for i, kind in enumerate(kinds)]
        with self._lock:
            # Keyed by login, which Okta keeps unique; two users may share an email.
            self._users[login or username] = _User(
                user_id, login or username, username, factors=factors
            )

    def set_status(self, username: str, status: str) -> None:
        """Okta user status: ACTIVE, SUSPENDED, LOCKED_OUT, DEPROVISIONED, ..."""
        with self._lock:
            self._user(username).status = status

    def set_factor_status(self, username: str, status: str) -> None:
        """Status of the user's factors: ACTIVE, PENDING_ACTIVATION, INACTIVE."""
        with self._lock:
            for factor in self._user(username).factors:
                factor["status"] = status

    def set_preauth(self, username: str, result: str) -> None:
        """The fake Duo's preauth words, in Okta terms: "auth" (active, push enrolled),
        "enroll" (no push factor), "deny" (suspended), "allow" (passes without a push)."""
        if result not in ("auth", "enroll", "deny", "allow"):
            raise ValueError(result)
        with self._lock:
            if not any(username in (u.login, u.email) for u in self._users.values()):
                user_id = _oid("00u", username)
                self._users[username] = _User(
                    user_id, username, username, factors=[self._factor(username, user_id, "push")]
                )
            user = self._user(username)
            user.status = "SUSPENDED" if result == "deny" else "ACTIVE"
            user.bypass = result == "allow"
            if result == "enroll":
                user.factors = [f for f in user.factors if f["factorType"] != "push"]

    def next_push_response(self, username: str, response: str) -> None:
        """Script the answer to `username`'s next push: one of ANSWERS, or "ignore"."""
        if response not in ANSWERS | {"ignore"}:
            raise ValueError(response)
        with self._lock:
            self._user(username).next_push.append(response)

    def answer_push(self, txid: str, response: str) -> None:
        """Answer a waiting push: "allow", "deny", "timeout", or "fraud" (the user rejects
        it and reports it as suspicious, which Okta writes to the System Log)."""
        if response not in ANSWERS:
            raise ValueError(response)
        # A poll link or a bare transaction id: the id is the link's last part.
        txid = txid.rsplit("/", 1)[-1]
        with self._changed:
            push = self._pushes[txid]
            if not push.waiting:
                raise ValueError(f"push {txid} already {push.outcome}")
            self._settle(push, response)
            self._changed.notify_all()

    def fail_all(self, status: int | None = 500) -> None:
        """Answer every request with this HTTP status (429: Okta's rate-limit answer, with
        X-Rate-Limit-Remaining 0); None restores normal service."""
        with self._lock:
            self._fail_status = status

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
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)

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

    def _user(self, username: str) -> _User:
        user = self._users.get(username) or next(
            (u for u in self._users.values() if u.email == username), None
        )
        if user is None:
            raise KeyError(f"{username} is not an Okta user of this fake")
        return user

    @staticmethod
    def _factor(username: str, user_id: str, kind: str, index: int = 0) -> Json:
        push = kind == "push"
        return {
            "id": _oid("opf" if push else "mbl", f"{username}/{index}"),
            "factorType": "push" if push else kind,
            "provider": "OKTA",
            "vendorName": "OKTA",
            "status": "ACTIVE",
            "profile": (
                {"credentialId": username, "deviceType": "SmartPhone_IPhone",
                 "name": "iPhone", "platform": "IOS", "version": "17.0"}
                if push else {"phoneNumber": "+1-555-415-1337"}
            ),
        }  # fmt: skip

    def _user_json(self, user: _User) -> Json:
        local = user.email.split("@")[0]
        return {
            "id": user.id,
            "status": user.status,
            "profile": {"login": user.login, "email": user.email, "firstName": local.title(),
                        "lastName": "Example"},
            "_links": {"self": {"href": f"{self.org_url}/api/v1/users/{user.id}"}},
        }  # fmt: skip


__all__ = ["ANSWERS", "FRAUD_EVENT", "FakeOkta", "OktaError", "OktaRequest", "Push"]
