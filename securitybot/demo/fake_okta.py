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

import threading

from securitybot.demo.fake_okta_api import OktaApi
from securitybot.demo.fake_okta_records import ANSWERS, Json, OktaRequest, Push, _oid, _User


class FakeOkta(OktaApi):
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

    # ---- helpers (lock held) ---------------------------------------------------------------

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


__all__ = ["FakeOkta"]
