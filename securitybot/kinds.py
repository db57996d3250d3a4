"""Alert kinds are data (``alerts/kinds/*.yaml``): severity, wording and policy per kind.

Keeping them out of code lets a security team add a detection without a release; validating
them at start-up keeps a broken file from surfacing as a half-rendered DM at 3 a.m.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from securitybot.config import ConfigError, Duration
from securitybot.domain import EscalationReason

DEFAULT_KIND = "default"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


# Escalation reasons stronger than any kind's own severity. A push the user reports as fraud
# means someone else holds their password and tried to use it just now: always critical, and
# always worth a mention, however mild the alert that led to it.
_RAISED_BY_REASON: Mapping[str, Severity] = {EscalationReason.DUO_FRAUD: Severity.CRITICAL}


def escalation_severity(kind: AlertKind, reason: str | None) -> Severity:
    """The severity an escalation is shown (and paged) with: the kind's, or higher."""
    raised = _RAISED_BY_REASON.get(reason or "")
    if raised is None:
        return kind.severity
    return max(kind.severity, raised, key=list(Severity).index)


def always_mention(reason: str | None) -> bool:
    """True when an escalation must mention the on-call whatever ``mention_severities`` says."""
    return (reason or "") in _RAISED_BY_REASON


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(
    template: str, values: Mapping[str, Any], quote: Callable[[Any], str] | None = None
) -> str:
    """``str.format`` with unknown placeholders left visible rather than raising.

    The template is the kind's own (trusted) text; the values come from the alert, so ``quote``
    (e.g. Slack escaping) is applied to each value and never to the template around it.
    """
    if quote is not None:
        values = {k: quote(v) for k, v in values.items()}
    return string.Formatter().vformat(template, (), _Missing(values))


class AlertKind(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    severity: Severity = Severity.MEDIUM
    title: str = Field(min_length=1, description="Template for the DM headline")
    message: str = Field(min_length=1, description="Template for the question in the DM")
    ack_timeout: Duration | None = None
    always_escalate: bool = False
    allow_snooze: bool = False
    snooze_scope: tuple[str, ...] = ("host",)
    # Paging the on-call (docs/paging.md): "default" follows paging.severities.
    page: Literal["always", "never", "default"] = "default"

    @field_validator("title", "message")
    @classmethod
    def _parses(cls, v: str) -> str:
        try:
            for _, field, spec, _conv in string.Formatter().parse(v):
                if field is not None and (not field.isidentifier() or spec):
                    raise ValueError(f"placeholder {{{field}}} must be a plain name")
        except ValueError as exc:
            raise ValueError(f"bad template: {exc}") from None
        return v


class KindRegistry:
    """All known kinds; anything unknown falls back to ``default``."""

    def __init__(self, kinds: Mapping[str, AlertKind]) -> None:
        if DEFAULT_KIND not in kinds:
            raise ConfigError(f"config error: alerts: the '{DEFAULT_KIND}' kind is missing")
        self._kinds = dict(kinds)

    def get(self, name: str | None) -> AlertKind:
        return self._kinds.get(name or DEFAULT_KIND) or self._kinds[DEFAULT_KIND]

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def names(self) -> list[str]:
        return sorted(self._kinds)


def load_kinds(directory: str | Path) -> KindRegistry:
    root = Path(directory)
    kinds_dir = root / "kinds" if (root / "kinds").is_dir() else root
    if not kinds_dir.is_dir():
        raise ConfigError(f"config error: alerts.dir: {kinds_dir} is not a directory")
    kinds: dict[str, AlertKind] = {}
    for path in sorted(kinds_dir.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            raise ConfigError(f"config error: {path}: not valid YAML") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config error: {path}: must be a mapping")
        raw.setdefault("name", path.stem)
        try:
            kind = AlertKind.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            raise ConfigError(f"config error: {path.name}: {loc}: {msg}") from None
        if kind.name != path.stem:
            raise ConfigError(f"config error: {path.name}: name {kind.name!r} must match the file")
        kinds[kind.name] = kind
    return KindRegistry(kinds)
