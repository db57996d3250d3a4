"""``/securitybot suppress|rules`` and ``revoke R3``: responders manage suppression rules.

Parsing is pure; carrying out is one small transaction, audited with the Slack identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from securitybot.flows import suppressions
from securitybot.kinds import KindRegistry
from securitybot.slack import mrkdwn as md
from securitybot.slack.dates import slack_date
from securitybot.slack.durations import describe, parse_duration
from securitybot.store.db import Database
from securitybot.store.models import utcnow

KIND_RE = r"^[a-z][a-z0-9_]{0,63}$"
MAX_REASON = 2000


@dataclass(frozen=True)
class Suppress:
    kind: str
    duration: timedelta
    reason: str
    matchers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListRules:
    pass


def parse_suppress(rest: str, max_suppression: timedelta, *, command: str) -> Suppress | str:
    """``<kind> [field=glob...] <duration> <reason>`` → Suppress, or why not (a message)."""
    usage = (
        f"Usage: `{command} suppress <kind> [field=value...] <duration> <reason>`, e.g. "
        f"`suppress sensitive_command host=build-* 4h CI maintenance`."
    )
    tokens = rest.split(None, 1)
    if len(tokens) < 2:
        return usage
    kind, rest = tokens[0], tokens[1]
    if not re.match(KIND_RE, kind):
        return f"{md.code(kind, 66)} is not an alert kind. {usage}"
    matchers: dict[str, str] = {}
    while True:
        head, _, tail = rest.partition(" ")
        if "=" not in head:
            break
        name, _, pattern = head.partition("=")
        problem = suppressions.matcher_error(name, pattern)
        if problem:
            return f"{md.code(head, 82)}: {problem}."
        if name in matchers:
            return f"{md.code(name, 66)} is given twice."
        matchers[name] = pattern
        if len(matchers) > suppressions.MAX_MATCHERS:
            return f"At most {suppressions.MAX_MATCHERS} field matchers."
        rest = tail.strip()
    raw_duration, _, reason = rest.partition(" ")
    reason = reason.strip()
    duration = parse_duration(raw_duration) if raw_duration else None
    if duration is None:
        return f"{md.code(raw_duration, 22)} is not a duration: use 30m, 12h, 7d or 2w. {usage}"
    if duration > max_suppression:
        return f"Suppression rules last at most {describe(max_suppression)}."
    if not reason:
        return f"A reason is required. {usage}"
    if len(reason) > MAX_REASON:
        return f"The reason is limited to {MAX_REASON} characters."
    return Suppress(kind, duration, reason, matchers)


def kind_refusal(kinds: KindRegistry, kind: str) -> str | None:
    """Why alerts of ``kind`` may not be suppressed, or None."""
    if kind not in kinds:
        known = ", ".join(md.code(k, 66) for k in kinds.names())
        return f"There is no alert kind {md.code(kind, 66)}; known kinds: {known}."
    if kinds.get(kind).always_escalate:
        return (
            f"Alerts of kind {md.code(kind, 66)} always go to the security team "
            "(`always_escalate`), so they cannot be suppressed."
        )
    return None


def suppress(db: Database, cmd: Suppress, actor: str, via: dict[str, Any], command: str) -> str:
    expires_at = utcnow() + cmd.duration
    with db.write() as session:
        rule = suppressions.create(
            session, kind=cmd.kind, matchers=cmd.matchers, reason=cmd.reason, actor=actor,
            expires_at=expires_at, via=via,
        )  # fmt: skip
        name = suppressions.describe(rule)
        rule_id = rule.id
    return (
        f"Suppression rule {md.code(name, 300)} is active until {slack_date(expires_at)}: "
        "matching new alerts are stored and closed as suppressed (they stay visible in the "
        f"dashboard and the daily summary). Your own alerts are never suppressed by it. "
        f"Undo with `{command} revoke R{rule_id}`."
    )


def list_rules(db: Database) -> str:
    with db.read() as session:
        lines = [
            f"• {md.code(suppressions.describe(r), 300)} until {slack_date(r.expires_at)}, "
            f"by {md.user(r.created_by)}: {md.inline(r.reason, 200)}"
            for r in suppressions.list_rules(session)
        ]
    return "\n".join(["*Active suppression rules*", *lines]) if lines else "No active rules."


def revoke(db: Database, rule_id: int, actor: str, via: dict[str, Any]) -> str:
    with db.write() as session:
        done = suppressions.revoke(session, rule_id=rule_id, actor=actor, via=via)
    return (
        f"Revoked suppression rule R{rule_id}."
        if done
        else f"There is no active suppression rule R{rule_id}."
    )
