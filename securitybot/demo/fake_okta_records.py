"""The fake Okta's records and errors: users, pushes and the requests it saw, Okta-style ids,
and ``OktaError``, answered as Okta's error object (``{"errorCode": "E00000xx", ...}``)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from securitybot.demo import okta_examples as documented

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
