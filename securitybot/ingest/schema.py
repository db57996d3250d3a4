"""The generic alert payload and how validation errors are reported to callers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from securitybot.untrusted import utc_time

SLACK_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,30}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
MAX_FUTURE_SKEW = timedelta(minutes=5)


def no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL; refusing it here makes it a 422, not a 500 at insert."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def person(v: str) -> str:
    """An email address (compared lower-case) or a Slack user id."""
    found = as_person(v)
    if found is None:
        raise ValueError("must be an email address or a Slack user id (U… or W…)")
    return found


def as_person(v: str) -> str | None:
    """``v`` normalised if it names someone Slack can look up (email or Slack id), else None."""
    if SLACK_ID_RE.match(v):
        return v
    if EMAIL_RE.match(v):
        return v.lower()
    return None


# audit_log.subject_user is VARCHAR(64): it indexes people, so a non-person or longer value
# is not written there (the alert row keeps what the tool said).
MAX_SUBJECT = 64


def audit_subject(user: str) -> str | None:
    """The value for ``audit_log.subject_user`` of an alert naming ``user``."""
    found = as_person(user)
    return found if found is not None and len(found) <= MAX_SUBJECT else None


def no_user_note(user: str) -> str | None:
    """Why an accepted alert will not DM anyone, for the ingest answer; None when it will.

    A tool that names nobody (or a login such as ``root``) still raised a real alert: it is
    stored and goes straight to the security team (``no_user``) instead of being refused,
    because a refused webhook is usually dropped for good by the sender.
    """
    if as_person(user) is not None:
        return None
    got = f"got {user[:80]!r}" if user else "the user is empty"
    return f"names no Slack user ({got}); it goes to the security team"


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    # Required (the contract), but any value is accepted: one that is not an email or Slack id
    # escalates as ``no_user`` (see ``no_user_note``) rather than losing the alert.
    user: str = Field(max_length=254)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=8000)
    source: str | None = Field(default=None, max_length=64)
    occurred_at: datetime | None = None
    dedup_key: str | None = Field(default=None, min_length=1, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict)

    _no_nul = field_validator(
        "kind", "user", "title", "description", "source", "dedup_key", mode="before"
    )(no_nul)

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        return as_person(v) or v

    @property
    def note(self) -> str | None:
        return no_user_note(self.user)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        v = utc_time(v)  # ValueError (a 422) where astimezone would overflow
        if v > datetime.now(UTC) + MAX_FUTURE_SKEW:
            raise ValueError("is in the future")
        return v


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as ``[{"field": "user", "reason": "..."}]``, readable by a person."""
    out = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            reason = "unknown field"
        elif err["type"] == "missing":
            reason = "is required"
        out.append({"field": field, "reason": reason})
    return out
