"""The AER decision framework: what to do about one anomaly, and why, as a pure function.

Every outcome, including "do nothing", is a :class:`Decision` with a human-readable reason, so
the audit trail answers "why was (or wasn't) Alice logged out?" without reading code. The reason
is a template and its values (:mod:`securitybot.aer.reason`): recorded in English, shown to the
team in its language.

Checks run in this order; the first that applies wins:

1. DISABLED - AER is off for the org.
2. EXCLUDED - the user, or one of their groups, is excluded (service accounts, break-glass).
3. DUPLICATE - the anomaly comes from a session that was already reset (the reset is still
   propagating) or already escalated; acting again would add nothing.
4. The configured response for the anomaly type: notify_only -> NOTIFY, ask_user -> ASK_USER.
5. reset_sessions, against the user's last reset:
   a. ESCALATE_PERSISTENCE - the last reset was at most ``persistence_window`` ago and the
      anomaly comes from a *new* session. Resetting evidently did not get rid of whoever it
      is (a stolen password, a malicious OAuth token, malware re-minting cookies), so a
      human must look; resetting again would just loop. Checked first because it is the
      stronger signal: it must not be masked by the cool-down.
   b. COOLDOWN - the last reset was less than ``cooldown`` ago (an anomaly with no session id
      that cannot be called new, or a cool-down longer than the persistence window). Notify,
      don't reset: resets are bounded to one per cool-down, so a legitimate user whose normal
      work keeps tripping a rule is not logged out in a loop.
   c. RESET.

With the defaults (window 1 h, cool-down 30 min), in the hour after a reset an anomaly from a
new session escalates; one without a session id is held by the cool-down for 30 min and may
reset after that.
Setting ``cooldown`` above ``persistence_window`` (e.g. 24 h) gives "at most one automatic
reset per day, humans after that".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from securitybot.aer import reason as r
from securitybot.aer.detect import Anomaly
from securitybot.aer.detection_config import (
    DETECTION_KEYS,
    IPNetwork,
    OrgDetectionConfig,
    parse_cidrs,
)
from securitybot.aer.reason import Reason
from securitybot.aer.rules import ANOMALY_TYPES, Rules, RulesError, parse_asn_list
from securitybot.durations import parse_duration


class Action(StrEnum):
    RESET_SESSIONS = "reset_sessions"
    ASK_USER = "ask_user"
    NOTIFY_ONLY = "notify_only"


class Verdict(StrEnum):
    RESET = "reset"
    ASK_USER = "ask_user"
    NOTIFY = "notify"
    ESCALATE_PERSISTENCE = "escalate_persistence"
    DUPLICATE = "duplicate"
    COOLDOWN = "cooldown"
    EXCLUDED = "excluded"
    DISABLED = "disabled"
    # A reset past the org's reset budget (aer.reset_budget), waiting for a responder.
    HELD = "held"


# Slack's AER defaults: Tor and scraping reset sessions, everything else only notifies.
DEFAULT_RESPONSES: Mapping[str, Action] = MappingProxyType(
    {
        kind: Action.RESET_SESSIONS
        if kind in ("tor", "unexpected_scraping")
        else Action.NOTIFY_ONLY
        for kind in sorted(ANOMALY_TYPES)
    }
)
DEFAULT_PERSISTENCE_WINDOW = 3600.0
DEFAULT_COOLDOWN = 1800.0
DECISION_KEYS = frozenset(
    {
        "enabled",
        "responses",
        "excluded_users",
        "excluded_groups",
        "persistence_window",
        "cooldown",
        "trusted_asns",
        "trusted_cidrs",
        "notify",
    }
)
ORG_KEYS = DECISION_KEYS | DETECTION_KEYS
_NOTIFY_KEYS = frozenset({"primary_owner", "security_admins", "channel"})
_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")


class AerConfigError(ValueError):
    """An invalid AER org setting; the message starts with the dotted key."""


@dataclass(frozen=True, slots=True)
class NotifyTargets:
    primary_owner: bool = True
    security_admins: bool = True
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class OrgAerConfig:
    enabled: bool = True
    responses: Mapping[str, Action] = field(default_factory=lambda: DEFAULT_RESPONSES)
    excluded_users: frozenset[str] = frozenset()
    excluded_groups: frozenset[str] = frozenset()
    persistence_window: float = DEFAULT_PERSISTENCE_WINDOW
    cooldown: float = DEFAULT_COOLDOWN
    trusted_asns: frozenset[int] = frozenset()
    trusted_cidrs: tuple[IPNetwork, ...] = ()
    notify: NotifyTargets = NotifyTargets()

    def response_for(self, anomaly_type: str) -> Action:
        return self.responses.get(anomaly_type, Action.NOTIFY_ONLY)


@dataclass(frozen=True, slots=True)
class UserHistory:
    last_reset_at: datetime | None = None
    reset_sessions: frozenset[str] = frozenset()
    user_groups: frozenset[str] = frozenset()
    # Sessions already escalated as persistence: later anomalies from them add nothing new.
    escalated_sessions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    action: Action | None
    # Why, as a template and its values: in the team's language where Slack shows it.
    why: Reason
    configured: Action | None = field(default=None, compare=False)

    @property
    def reason(self) -> str:
        """Why, in English: what the anomaly row stores, the API returns and the log says."""
        return self.why.english()


def _duration(value: Any, where: str, *, allow_zero: bool) -> float:
    try:
        return parse_duration(value, zero_is_off=allow_zero)
    except ValueError as exc:
        if str(exc).startswith("must be"):  # a duration, but out of range
            raise AerConfigError(f"{where}: must be {'>= 0' if allow_zero else '> 0'}") from None
        raise AerConfigError(f"{where}: must be a duration such as 1800, '30m' or '1h'") from None


def _strings(value: Any, where: str, pattern: re.Pattern[str] | None = None) -> frozenset[str]:
    if not isinstance(value, list | tuple | set | frozenset):
        raise AerConfigError(f"{where}: must be a list")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise AerConfigError(f"{where}[{i}]: must be a non-empty string")
        if pattern is not None and not pattern.match(item):
            raise AerConfigError(f"{where}[{i}]: {item!r} is not a Slack user id")
    return frozenset(value)


def _responses(value: Any, where: str, into: dict[str, Action]) -> None:
    if not isinstance(value, Mapping):
        raise AerConfigError(f"{where}: must be a mapping of anomaly type to action")
    for kind, action in value.items():
        if kind not in ANOMALY_TYPES:
            raise AerConfigError(f"{where}.{kind}: unknown anomaly type")
        try:
            into[kind] = Action(action)
        except ValueError:
            choices = ", ".join(a.value for a in Action)
            raise AerConfigError(f"{where}.{kind}: must be one of {choices}") from None


def _notify(value: Any, where: str, base: NotifyTargets) -> NotifyTargets:
    if not isinstance(value, Mapping):
        raise AerConfigError(f"{where}: must be a mapping")
    fields_: dict[str, Any] = {
        "primary_owner": base.primary_owner,
        "security_admins": base.security_admins,
        "channel": base.channel,
    }
    for key, item in value.items():
        if key not in _NOTIFY_KEYS:
            raise AerConfigError(f"{where}.{key}: unknown key")
        ok = isinstance(item, str) and item if key == "channel" else isinstance(item, bool)
        if not ok and not (key == "channel" and item is None):
            kind = "a channel id or name" if key == "channel" else "true or false"
            raise AerConfigError(f"{where}.{key}: must be {kind}")
        fields_[key] = item
    return NotifyTargets(**fields_)


def _check_layer(layer: Mapping[str, Any] | None, where: str) -> Mapping[str, Any]:
    if layer is None:
        return {}
    if not isinstance(layer, Mapping):
        raise AerConfigError(f"{where}: must be a mapping")
    for key in layer:
        if key not in ORG_KEYS:
            raise AerConfigError(f"{where}.{key}: unknown key")
    try:
        OrgDetectionConfig.from_mapping(layer, where)  # validates the detection keys
    except RulesError as exc:
        raise AerConfigError(str(exc)) from None
    return layer


def merged_org_mapping(
    defaults: Mapping[str, Any] | None, org: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``aer.orgs.<org>`` over ``aer.defaults``, key by key (the org value replaces).

    Build the engine's per-org settings from this too, so detection and decisions agree on the
    trusted networks.
    """
    return {**(defaults or {}), **(org or {})}


def merge_org_config(
    defaults: Mapping[str, Any] | None,
    org: Mapping[str, Any] | None,
    *,
    org_id: str = "<org>",
    rules: Rules | None = None,
) -> OrgAerConfig:
    """Validate and merge. Top-level keys of the org replace the defaults', except
    ``responses`` and ``notify``, which merge per entry so an org can change one type only.
    Base responses are the rules file's (or Slack's defaults without ``rules``).
    """
    layers = [
        (_check_layer(defaults, "aer.defaults"), "aer.defaults"),
        (_check_layer(org, f"aer.orgs.{org_id}"), f"aer.orgs.{org_id}"),
    ]
    responses = (
        {k: Action(v) for k, v in rules.responses.items()} if rules else dict(DEFAULT_RESPONSES)
    )
    values: dict[str, Any] = {}
    notify = NotifyTargets()
    for layer, where in layers:
        for key, value in layer.items():
            at = f"{where}.{key}"
            if key == "responses":
                _responses(value, at, responses)
            elif key == "notify":
                notify = _notify(value, at, notify)
            elif key == "enabled":
                if not isinstance(value, bool):
                    raise AerConfigError(f"{at}: must be true or false")
                values[key] = value
            elif key in ("persistence_window", "cooldown"):
                values[key] = _duration(value, at, allow_zero=key == "cooldown")
            elif key == "excluded_users":
                values[key] = _strings(value, at, _USER_RE)
            elif key == "excluded_groups":
                values[key] = _strings(value, at)
            elif key == "trusted_asns":
                values[key] = parse_asn_list(value, at)
            elif key == "trusted_cidrs":
                values[key] = parse_cidrs(value, at)
    return OrgAerConfig(**values, responses=MappingProxyType(responses), notify=notify)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _ago(seconds: float) -> str:
    """A duration in unit symbols (``45s``, ``12 min``, ``1.5 h``), the same in every language."""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def decide(anomaly: Anomaly, cfg: OrgAerConfig, history: UserHistory, now: datetime) -> Decision:
    """Decide what to do about ``anomaly``; see the module docstring for the order of checks."""
    what = Reason(r.WHAT, {"type": anomaly.type, "rule": anomaly.rule, "user": anomaly.user})
    if not cfg.enabled:
        return Decision(
            Verdict.DISABLED, None, Reason(r.DISABLED, {"what": what, "org": anomaly.org})
        )
    if anomaly.user in cfg.excluded_users:
        return Decision(Verdict.EXCLUDED, None, Reason(r.EXCLUDED_USER, {"what": what}))
    groups = history.user_groups & cfg.excluded_groups
    if groups:
        listed = ", ".join(sorted(groups))
        why = Reason(r.EXCLUDED_GROUP, {"what": what, "groups": listed})
        return Decision(Verdict.EXCLUDED, None, why)
    session = anomaly.session
    configured = cfg.response_for(anomaly.type)
    if session is not None and session in history.reset_sessions:
        if history.last_reset_at:
            at = history.last_reset_at.isoformat()
            why = Reason(r.ALREADY_RESET, {"what": what, "session": session, "at": at})
        else:
            why = Reason(r.ALREADY_RESET_LAST, {"what": what, "session": session})
        return Decision(Verdict.DUPLICATE, None, why, configured)
    if session is not None and session in history.escalated_sessions:
        why = Reason(r.ALREADY_ESCALATED, {"what": what, "session": session})
        return Decision(Verdict.DUPLICATE, None, why, configured)
    response = Reason(r.RESPONSE, {"what": what, "type": anomaly.type, "action": configured.value})
    if configured is Action.NOTIFY_ONLY:
        return Decision(Verdict.NOTIFY, Action.NOTIFY_ONLY, response, configured)
    if configured is Action.ASK_USER:
        return Decision(Verdict.ASK_USER, Action.ASK_USER, response, configured)
    last = history.last_reset_at
    if last is not None:
        last = _utc(last)
        since = max(0.0, (_utc(now) - last).total_seconds())
        if session is not None and since <= cfg.persistence_window:
            why = Reason(r.PERSISTENCE, {"what": what, "at": last.isoformat(),
                                         "session": session, "ago": _ago(since)})  # fmt: skip
            return Decision(Verdict.ESCALATE_PERSISTENCE, Action.NOTIFY_ONLY, why, configured)
        if since < cfg.cooldown:
            why = Reason(r.COOLDOWN, {"what": what, "ago": _ago(since), "at": last.isoformat(),
                                      "cooldown": _ago(cfg.cooldown)})  # fmt: skip
            return Decision(Verdict.COOLDOWN, Action.NOTIFY_ONLY, why, configured)
    return Decision(Verdict.RESET, Action.RESET_SESSIONS, response, configured)


def held(decision: Decision, org: str, budget: str | Reason) -> Decision:
    """``decision`` (a reset) held back because the org's reset budget (``budget``, as
    :func:`securitybot.aer.budget.describe_reason` says it) is spent."""
    why = Reason(r.HELD, {"reason": decision.why, "org": org, "budget": budget})
    return Decision(Verdict.HELD, None, why, decision.configured)
