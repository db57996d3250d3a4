"""A local fake of Duo's Auth API v2, served over HTTPS with a throwaway CA.

It verifies every request's HMAC signature the way Duo does (``duo_signature``), so a client
that signs wrongly fails here exactly as it would against Duo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from securitybot.demo._serving import FakeServer, HungUp, TLSFake, hold, write_reply
from securitybot.demo.duo_signature import DuoError, check_signature
from securitybot.demo.fake_push import PushBook

log = logging.getLogger(__name__)
_IDLE = 30.0  # seconds a kept-alive connection may sit idle before the fake closes it

Json = dict[str, Any]
# auth_status ``status`` -> (``result``, ``status_msg``) for the statuses Duo documents for a
# push (https://duo.com/docs/authapi, "/auth_status"). calling/answered/sent belong to phone
# and SMS factors, which this fake does not offer.
_STATUS = {
    "pushed": ("waiting", "Pushed a login request to your device..."),
    "push_failed": ("waiting", "Push failed; open Duo Mobile to approve the request"),
    "allow": ("allow", "Success. Logging you in..."),
    "bypass": ("allow", "Allowing unknown user"),
    "deny": ("deny", "Login request denied."),
    "fraud": ("deny", "Request reported as fraudulent."),
    "locked_out": ("deny", "Your account is disabled due to too many failed attempts."),
    "timeout": ("deny", "Login timed out."),
}
# What a scripted or console answer may set: the phone's answers plus Duo-side outcomes.
ANSWERS = frozenset(_STATUS) - {"pushed"}
_CAPABILITIES = {
    "push": ["auto", "push", "sms", "phone", "mobile_otp"],
    "sms": ["sms", "phone"],
    "phone": ["phone"],
}


@dataclass
class Push:
    txid: str
    username: str
    pushinfo: dict[str, str]
    created_at: float
    # One of the _STATUS keys: "pushed" until answered or timed out.
    outcome: str = "pushed"
    # The status auth_status last returned: Duo long-polls for the *next* update.
    reported: str | None = None
    # When auth_status first answered with the push's final status (the phone's answer
    # reached the client): benchmarks split approval -> resolved into the fake's part and ours.
    answered_at: float | None = None
    # auth_status calls being held for this push right now: an answer given while none is
    # held waits for the client's next call, which is the client's delay, not the fake's.
    held: int = 0
    # Signalled when this push changes: a held auth_status wakes for its own push only,
    # not for every answer (thousands of held polls must not all wake on each one).
    changed: threading.Condition | None = field(default=None, repr=False, compare=False)

    @property
    def waiting(self) -> bool:
        return _STATUS[self.outcome][0] == "waiting"


@dataclass(frozen=True)
class DuoRequest:
    method: str
    path: str
    params: dict[str, str]
    signature_ok: bool
    sig_version: int | None
    status: int
    at: float


@dataclass
class _User:
    devices: list[Json]
    preauth: str = "auth"
    next_push: deque[str] = field(default_factory=deque)


class FakeDuo(TLSFake, PushBook[Push]):
    """Duo Auth API fake. Connect with duo_client.Auth(host=fd.host, port=fd.port, ...)."""

    push_vendor = "Duo"

    def __init__(self, ikey: str = "DIXXXXXXXXXXXXXXXXXX", skey: str = "s" * 40) -> None:
        self.ikey = ikey
        self.skey = skey
        self.host = "localhost"
        # auth_status long-polls like Duo's: a push's first status comes back at once, later
        # calls are held until the status changes or the push times out (up to a minute).
        # status_delay caps the hold (seconds) for tests; None holds as long as Duo would.
        self.status_delay: float | None = None
        # Unanswered pushes time out like Duo's, after which they read as deny/timeout.
        self.push_timeout = 60.0
        # Duo rejects requests whose Date header is too far off; None disables the check.
        self.max_clock_skew: float | None = 300.0
        # A held auth_status whose client hung up is not answered (its txid is listed in
        # ``dropped``); with notice_drops (seconds), a hold looks that often, not only when it
        # ends, so a test sees a poll let go without answering the push.
        self.notice_drops: float | None = None
        self.dropped: list[str] = []
        self._served = threading.local()  # the connection each handler thread answers
        self.requests: list[DuoRequest] = []
        self._users: dict[str, _User] = {}
        self._pushes: dict[str, Push] = {}
        self._fail_status: int | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = False

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeDuo:
        if self._server is None:
            self._stopping = False
            self._serve_tls("fake-duo", self._serve, keep_alive=True, idle=_IDLE)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        with self._changed:
            # Release handlers blocked in a synchronous auth or a long-poll.
            self._stopping = True
            self._changed.notify_all()
            for push in self._pushes.values():
                if push.changed is not None:
                    push.changed.notify_all()
        super().stop()

    @property
    def api_host(self) -> str:
        return f"{self.host}:{self.port}"

    def config(self, timeout: float = 5) -> Json:
        """The config sections that point the bot at this fake (it must be started)."""
        return {
            "duo": {"ikey": self.ikey, "skey": self.skey, "api_host": self.api_host,
                    "ca_certs": self.ca_path, "timeout": timeout},
        }  # fmt: skip

    # ---- scenario controls -----------------------------------------------------------------

    def enroll(self, username: str, devices: list[str] | None = None) -> None:
        """Enroll `username`; devices are kinds ("push", "sms", "phone"), [] = none usable."""
        kinds = ["push"] if devices is None else devices
        phones = [
            {
                "device": "DP" + hashlib.sha1(f"{username}/{i}".encode()).hexdigest()[:18].upper(),
                "type": "phone",
                "display_name": f"iOS ({i + 1})",
                "name": "",
                "number": f"XXX-XXX-{1000 + i}",
                "capabilities": list(_CAPABILITIES[kind]),
            }
            for i, kind in enumerate(kinds)
        ]
        with self._lock:
            self._users[username] = _User(devices=phones)

    def set_preauth(self, username: str, result: str) -> None:
        if result not in ("auth", "enroll", "deny", "allow"):
            raise ValueError(result)
        with self._lock:
            self._users.setdefault(username, _User(devices=[])).preauth = result

    def next_push_response(self, username: str, response: str) -> None:
        """Script the answer to `username`'s next push: one of ANSWERS, or "ignore"."""
        if response not in ANSWERS | {"ignore"}:
            raise ValueError(response)
        with self._lock:
            self._users.setdefault(username, _User(devices=[])).next_push.append(response)

    def answer_push(self, txid: str, response: str) -> None:
        """Answer a waiting push: "allow", "deny", "fraud" (the user taps "report fraud"),
        or any other status in ANSWERS ("push_failed" keeps it waiting)."""
        if response not in ANSWERS:
            raise ValueError(response)
        with self._changed:
            push = self._pushes[txid]
            if not push.waiting:
                raise ValueError(f"push {txid} already {push.outcome}")
            push.outcome = response
            self._changed.notify_all()
            if push.changed is not None:
                push.changed.notify_all()

    @property
    def connections(self) -> int:
        """TLS connections accepted so far."""
        return self._server.connections if isinstance(self._server, FakeServer) else 0

    def fail_all(self, status: int | None = 500) -> None:
        """Answer every request with this HTTP status; None restores normal service.

        Note duo_client itself retries 429 with backoff for about a minute.
        """
        with self._lock:
            self._fail_status = status

    # ---- request plumbing ------------------------------------------------------------------

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        self._served.conn = req.connection
        split = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length).decode("utf-8") if length else ""
        headers = {k.lower(): v for k, v in req.headers.items()}
        is_json = "json" in headers.get("content-type", "")
        signed: dict[str, list[str]] = parse_qs(split.query, keep_blank_values=True)
        if req.command == "POST" and not is_json:
            signed = parse_qs(body, keep_blank_values=True)
        params: dict[str, str] = {k: v[0] for k, v in signed.items()}
        if is_json and body:
            with contextlib.suppress(ValueError, AttributeError):
                params.update({k: str(v) for k, v in json.loads(body).items()})
        version: int | None = None
        try:
            if self._fail_status is not None:
                raise DuoError(self._fail_status, self._fail_status * 100, "Service unavailable")
            try:
                version = check_signature(
                    self, req.command, split.path, signed, body, is_json, headers
                )
            except DuoError:
                # ping is the one unauthenticated endpoint; duo_client signs it anyway.
                if split.path != "/auth/v2/ping":
                    raise
            reply: Json = {"stat": "OK", "response": self._route(req.command, split.path, params)}
            status = 200
        except DuoError as err:
            status, reply = err.status, err.body
        except HungUp:
            req.close_connection = True
            return
        except Exception:
            # A bug in the fake must surface as a Duo-shaped 500, not a dropped connection.
            log.exception("fake duo failed answering %s", split.path)
            status, reply = 500, {"stat": "FAIL", "code": 50000, "message": "Internal error"}
        with self._lock:
            ok = version is not None
            self.requests.append(
                DuoRequest(req.command, split.path, params, ok, version, status, time.time())
            )
        data = json.dumps(reply).encode()
        write_reply(req, status, data)

    def _route(self, method: str, path: str, params: dict[str, str]) -> Json:
        routes = {
            ("GET", "/auth/v2/ping"): self._ping,
            ("GET", "/auth/v2/check"): self._ping,
            ("POST", "/auth/v2/preauth"): self._preauth,
            ("POST", "/auth/v2/auth"): self._auth,
            ("GET", "/auth/v2/auth_status"): self._auth_status,
        }
        handler = routes.get((method, path))
        if handler is None:
            if any(p == path for _, p in routes):
                raise DuoError(405, 40501, "Method not allowed")
            raise DuoError(404, 40401, "Resource not found")
        return handler(params)

    def _ping(self, params: dict[str, str]) -> Json:
        return {"time": int(time.time())}

    def _preauth(self, params: dict[str, str]) -> Json:
        username = params.get("username") or params.get("user_id")
        if not username:
            raise DuoError(400, 40001, "Missing required request parameters", "username")
        with self._lock:
            user = self._users.get(username)
        result = user.preauth if user else "enroll"
        if result == "auth" and user is not None:
            return {"result": "auth", "status_msg": "Account is active", "devices": user.devices}
        messages = {
            "enroll": "Enroll an authentication device to proceed",
            "deny": "Login denied by policy",
            "allow": "Allowing unknown user",
            "auth": "Account is active",
        }
        reply: Json = {"result": result, "status_msg": messages[result]}
        if result == "enroll":
            reply["enroll_portal_url"] = f"https://{self.api_host}/portal?code=fake"
        return reply

    def _auth(self, params: dict[str, str]) -> Json:
        username, factor = params.get("username", ""), params.get("factor", "")
        if not username or not factor:
            raise DuoError(400, 40001, "Missing required request parameters", "username")
        if factor not in ("push", "auto"):
            raise DuoError(400, 40002, "Invalid request parameters", "factor")
        with self._changed:
            user = self._users.get(username)
            if user is None or user.preauth in ("enroll", "deny"):
                outcome = "deny"
            elif user.preauth == "allow":
                outcome = "bypass"
            else:
                device = params.get("device", "auto")
                usable = [d for d in user.devices if "push" in d["capabilities"]]
                if not any(device in ("auto", d["device"]) for d in usable):
                    raise DuoError(400, 40002, "Invalid request parameters", "device")
                scripted = user.next_push.popleft() if user.next_push else "ignore"
                outcome = "pushed" if scripted == "ignore" else scripted
            push = Push(
                txid=str(uuid.uuid4()),
                username=username,
                pushinfo=dict(parse_qsl(params.get("pushinfo", ""), keep_blank_values=True)),
                created_at=time.time(),
                outcome=outcome,
                changed=threading.Condition(self._lock),
            )
            self._pushes[push.txid] = push
            self._changed.notify_all()
            if params.get("async") == "1":
                return {"txid": push.txid}
            # Synchronous auth blocks until the user answers, like Duo.
            self._changed.wait_for(
                lambda: not push.waiting or self._stopping or self._expire_pushes(),
                timeout=self.push_timeout,
            )
            self._expire_pushes(force=push)
            return self._status_of(push)

    def _auth_status(self, params: dict[str, str]) -> Json:
        txid = params.get("txid", "")
        with self._changed:
            push = self._pushes.get(txid)
            if push is None:
                raise DuoError(400, 40002, "Invalid request parameters", "txid")
            self._expire(push)
            if push.waiting and push.outcome == push.reported:
                # Nothing new since the last call: hold until the phone answers, the push
                # times out, or (tests) status_delay passes, like Duo's long-poll.
                wait = push.created_at + self.push_timeout - time.time()
                if self.status_delay is not None:
                    wait = min(wait, self.status_delay)
                assert push.changed is not None
                push.held += 1
                try:
                    hold(push.changed, lambda: push.outcome != push.reported or self._stopping,
                         wait, getattr(self._served, "conn", None), self.notice_drops)  # fmt: skip
                except HungUp:
                    self.dropped.append(txid)  # the push's news waits for the next poll
                    raise
                finally:
                    push.held -= 1
                self._expire(push)
            push.reported = push.outcome
            if not push.waiting and push.answered_at is None:
                push.answered_at = time.time()
            return self._status_of(push)

    def _expire(self, push: Push) -> None:
        """Time out this push if it is stale (lock held). A held poll looks at its own push
        only: scanning every push on each of thousands of polls made the fake the bottleneck."""
        if push.waiting and time.time() - push.created_at >= self.push_timeout:
            push.outcome = "timeout"

    def _expire_pushes(self, force: Push | None = None) -> bool:
        """Time out stale pushes (lock held). Returns True if anything changed."""
        changed = False
        now = time.time()
        for push in self._pushes.values():
            stale = now - push.created_at >= self.push_timeout or push is force
            if push.waiting and stale:
                push.outcome, changed = "timeout", True
        return changed

    @staticmethod
    def _status_of(push: Push) -> Json:
        result, message = _STATUS[push.outcome]
        return {"result": result, "status": push.outcome, "status_msg": message}


__all__ = ["ANSWERS", "DuoError", "DuoRequest", "FakeDuo", "Push"]
