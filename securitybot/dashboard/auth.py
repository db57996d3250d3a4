"""Who may see the dashboard: argon2 passwords, a trusted proxy header or an OIDC sign-in (see
``oidc_views``), signed session cookies, the role each session carries, CSRF tokens for every
form that changes something, and a brake on password guessing.

Session cookies are signed (HMAC-SHA256 with ``dashboard.session_secret``) and name a
server-side session row, so a sign-out holds in every replica and after a restart. Failed
attempts are counted in the database too (see ``signin``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.requests import Request
from starlette.responses import Response

from securitybot import constant_time
from securitybot.config import DashboardConfig
from securitybot.dashboard.roles import Role, header_groups, highest
from securitybot.dashboard.signin import LoginAttempts, SessionStore, StoredSession
from securitybot.store.db import Database

SESSION_COOKIE = "sb_dashboard"
LOGIN_COOKIE = "sb_login_csrf"
COOKIE_PATH = "/dashboard"
CSRF_FIELD = "csrf"

_HASHER = PasswordHasher()
# Verified when the username is unknown, so a wrong name costs as long as a wrong password
# and response times do not reveal which usernames exist.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@dataclass(frozen=True)
class DashboardSession:
    username: str
    sid: str
    csrf: str
    expires: float
    via: str  # "password", "header" or "oidc"
    # None: signed in, but nothing maps this person to a role (refused everywhere).
    role: Role | None = None
    subject: str | None = None  # the provider's "sub" (OIDC)
    email: str | None = None

    def audit_details(self) -> dict[str, str]:
        """Who did it, for the audit rows of what this session does."""
        out = {"auth": self.via, "role": self.role.name if self.role else "none"}
        if self.subject:
            out["sub"] = self.subject
        if self.email:
            out["email"] = self.email
        return out


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DashboardAuth:
    def __init__(self, cfg: DashboardConfig, db: Database) -> None:
        assert cfg.session_secret is not None, "validated by DashboardConfig"
        self.cfg = cfg
        self._key = hashlib.sha256(
            b"securitybot-dashboard-session\x00" + cfg.session_secret.get_secret_value().encode()
        ).digest()
        # With local_users off, no password is ever checked and no local session honoured.
        users = cfg.users if cfg.local_users else []
        self._hashes = {u.username: u.password_hash.get_secret_value() for u in users}
        self._local_roles = {u.username: Role[u.role] for u in users}
        self.sessions = SessionStore(db)
        self.attempts = LoginAttempts(db)

    # ---- passwords ---------------------------------------------------------------------------

    @property
    def password_login(self) -> bool:
        return bool(self._hashes)

    def local_role(self, username: str) -> Role | None:
        return self._local_roles.get(username)

    def check_password(self, username: str, password: str) -> bool:
        stored = self._hashes.get(username)
        try:
            _HASHER.verify(stored or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None

    # ---- session cookies ---------------------------------------------------------------------

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def seal(self, purpose: str, data: dict[str, Any], lifetime: float) -> str:
        """``data`` as a signed, expiring cookie value for ``purpose`` only (readable by the
        browser: nothing secret from the person it belongs to)."""
        body = json.dumps({"p": purpose, "e": int(time.time() + lifetime), "d": data},
                          separators=(",", ":")).encode()  # fmt: skip
        return f"{_b64(body)}.{self._sign(body)}"

    def unseal(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        """What :meth:`seal` sealed for ``purpose``, while it has not expired; else None."""
        if not value or value.count(".") != 1:
            return None
        raw_body, sig = value.split(".")
        try:
            body = _unb64(raw_body)
            sealed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not constant_time.equal(self._sign(body), sig):
            return None
        if not isinstance(sealed, dict) or sealed.get("p") != purpose:
            return None
        expires, data = sealed.get("e"), sealed.get("d")
        if not isinstance(expires, int) or expires < time.time() or not isinstance(data, dict):
            return None
        return data

    def issue(
        self,
        username: str,
        via: str,
        role: Role | None = None,
        subject: str | None = None,
        email: str | None = None,
    ) -> tuple[DashboardSession, str]:
        session = DashboardSession(
            username=username,
            sid=secrets.token_urlsafe(32),  # 256 bits
            csrf=secrets.token_urlsafe(24),
            expires=time.time() + self.cfg.session_lifetime,
            via=via,
            role=role,
            subject=subject,
            email=email,
        )
        # Only an OIDC role is stored: the others are read afresh from config or headers.
        stored = StoredSession(role.name if role and via == "oidc" else None, subject, email)
        self.sessions.create(
            sid=session.sid,
            username=username,
            via=via,
            expires=datetime.fromtimestamp(session.expires, UTC),
            stored=stored,
        )
        body = json.dumps(
            {
                "u": session.username,
                "s": session.sid,
                "c": session.csrf,
                "e": int(session.expires),
                "v": via,
            },
            separators=(",", ":"),
        ).encode()
        return session, f"{_b64(body)}.{self._sign(body)}"

    def read(self, cookie: str | None) -> DashboardSession | None:
        if not cookie or cookie.count(".") != 1:
            return None
        raw_body, sig = cookie.split(".")
        try:
            body = _unb64(raw_body)
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not constant_time.equal(self._sign(body), sig) or not isinstance(data, dict):
            return None
        try:
            session = DashboardSession(
                username=str(data["u"]),
                sid=str(data["s"]),
                csrf=str(data["c"]),
                expires=float(data["e"]),
                via=str(data["v"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if session.expires < time.time():
            return None
        if session.via == "password" and session.username not in self._hashes:
            return None  # the user was removed from the configuration, or local_users is off
        if (session.via == "oidc" and self.cfg.oidc is None) or (
            session.via == "header" and not self.cfg.trusted_header
        ):
            return None  # that way in is no longer configured
        stored = self.sessions.active(sid=session.sid, username=session.username)
        if stored is None:
            return None  # signed out, expired, or never issued by this database
        if session.via == "oidc":
            return replace(
                session, role=Role.parse(stored.role), subject=stored.subject, email=stored.email
            )
        if session.via == "password":
            return replace(session, role=self._local_roles.get(session.username))
        return session  # a header session's role comes with each request (authenticate)

    def revoke(self, session: DashboardSession) -> None:
        self.sessions.revoke(sid=session.sid)

    def client_address(self, request: Request) -> str:
        """The address that sign-in attempts are counted against."""
        return client_address(request, self.cfg.trusted_proxies)

    def header_user(self, request: Request) -> str | None:
        if not self.cfg.trusted_header:
            return None
        value = request.headers.get(self.cfg.trusted_header, "").strip()
        return value[:64] or None

    def header_role(self, request: Request, username: str) -> Role | None:
        """The role of a trusted_header user: from the groups header or the static mapping;
        with neither configured, admin (every header user could do everything before roles)."""
        cfg = self.cfg
        if not cfg.trusted_groups_header and not cfg.trusted_header_roles:
            return Role.admin
        roles: list[Role | None] = [Role.parse(cfg.trusted_header_roles.get(username))]
        if cfg.trusted_groups_header:
            groups = header_groups(request.headers.get(cfg.trusted_groups_header))
            roles.append(highest(groups, cfg.roles.as_mapping()))
        return max((r for r in roles if r is not None), default=None)

    def authenticate(self, request: Request) -> tuple[DashboardSession | None, str | None]:
        """The request's session, and a fresh cookie to set when the proxy header created one."""
        session = self.read(request.cookies.get(SESSION_COOKIE))
        header = self.header_user(request)
        if header is None:
            # With a trusted header, its absence means the proxy did not authenticate anyone.
            if self.cfg.trusted_header and session is not None and session.via == "header":
                return None, None
            return session, None
        role = self.header_role(request, header)
        if role is None:
            # The proxy vouches for someone with no role: refused, and no session is made.
            nobody = DashboardSession(header, sid="", csrf="", expires=0.0, via="header")
            return nobody, None
        if session is not None and session.via == "header" and session.username == header:
            return replace(session, role=role), None
        fresh, cookie = self.issue(header, "header", role=role)
        return fresh, cookie

    # ---- cookies and CSRF --------------------------------------------------------------------

    def secure(self, request: Request) -> bool:
        mode = self.cfg.secure_cookies
        if mode != "auto":
            return mode == "true"
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return request.url.scheme == "https" or proto == "https"

    def set_cookie(
        self,
        response: Response,
        request: Request,
        name: str,
        value: str,
        max_age: int | None = None,
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age if max_age is not None else int(self.cfg.session_lifetime),
            path=COOKIE_PATH,
            httponly=True,
            secure=self.secure(request),
            samesite="lax",
        )

    def clear_cookie(self, response: Response, request: Request, name: str) -> None:
        response.delete_cookie(
            name, path=COOKIE_PATH, httponly=True, secure=self.secure(request), samesite="lax"
        )


def _trusted(host: str, proxies: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        addr = ip_address(host)
    except ValueError:
        return False
    return any(addr in net for net in proxies)


def client_address(request: Request, proxies: Sequence[IPv4Network | IPv6Network]) -> str:
    """The TCP peer, or, when the peer is a trusted proxy, the first address in
    X-Forwarded-For that no trusted proxy vouches for, read from the right.

    Each proxy appends the address it saw, so the entries on the left are whatever the client
    chose to send; only the entries appended by trusted hops can be believed.
    """
    peer = request.client.host if request.client else "?"
    if not _trusted(peer, proxies):
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    addr = peer
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        addr = hop
        if not _trusted(hop, proxies):
            break
    return addr[:64]


def safe_next(value: str | None) -> str:
    """Where to go after signing in: only paths inside the dashboard, never another host
    ("//evil", "https://…")."""
    if value and value.startswith("/dashboard") and "//" not in value and "\\" not in value:
        return value
    return "/dashboard"


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return constant_time.equal(expected, given)
