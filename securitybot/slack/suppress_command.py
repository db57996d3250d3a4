"""``/securitybot suppress|rules`` and ``revoke R3``: responders manage suppression rules.

Parsing is pure; carrying out is one small transaction, audited with the Slack identity. The
answers are in the team's language (``t``: ``i18n.team_locale``); a field matcher's own problem
(``flows/suppressions.py``, shared with the API) stays English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from securitybot.flows import suppressions
from securitybot.i18n import ENGLISH, Translator
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


def parse_suppress(
    rest: str, max_suppression: timedelta, *, command: str, t: Translator = ENGLISH
) -> Suppress | str:
    """``<kind> [field=glob...] <duration> <reason>`` → Suppress, or why not (a message)."""
    _ = t.gettext
    usage = _(
        "Usage: `{command} suppress <kind> [field=value...] <duration> <reason>`, e.g. "
        "`suppress sensitive_command host=build-* 4h CI maintenance`."
    ).format(command=command)
    tokens = rest.split(None, 1)
    if len(tokens) < 2:
        return usage
    kind, rest = tokens[0], tokens[1]
    if not re.match(KIND_RE, kind):
        return _("{kind} is not an alert kind.").format(kind=md.code(kind, 66)) + " " + usage
    matchers: dict[str, str] = {}
    while True:
        head, _sep, tail = rest.partition(" ")
        if "=" not in head:
            break
        name, _sep, pattern = head.partition("=")
        problem = suppressions.matcher_error(name, pattern)
        if problem:
            return f"{md.code(head, 82)}: {problem}."
        if name in matchers:
            return _("{name} is given twice.").format(name=md.code(name, 66))
        matchers[name] = pattern
        if len(matchers) > suppressions.MAX_MATCHERS:
            return _("At most {count} field matchers.").format(count=suppressions.MAX_MATCHERS)
        rest = tail.strip()
    raw_duration, _sep, reason = rest.partition(" ")
    reason = reason.strip()
    duration = parse_duration(raw_duration) if raw_duration else None
    if duration is None:
        return not_a_duration(raw_duration, t) + " " + usage
    if duration > max_suppression:
        return _("Suppression rules last at most {duration}.").format(
            duration=describe(max_suppression)
        )
    if not reason:
        return _("A reason is required.") + " " + usage
    if len(reason) > MAX_REASON:
        return reason_too_long(t)
    return Suppress(kind, duration, reason, matchers)


def not_a_duration(raw: str, t: Translator = ENGLISH) -> str:
    return t.gettext("{value} is not a duration: use 30m, 12h, 7d or 2w.").format(
        value=md.code(raw, 22)
    )


def reason_too_long(t: Translator = ENGLISH) -> str:
    return t.gettext("The reason is limited to {count} characters.").format(count=MAX_REASON)


def kind_refusal(kinds: KindRegistry, kind: str, t: Translator = ENGLISH) -> str | None:
    """Why alerts of ``kind`` may not be suppressed, or None."""
    if kind not in kinds:
        known = ", ".join(md.code(k, 66) for k in kinds.names())
        return t.gettext("There is no alert kind {kind}; known kinds: {known}.").format(
            kind=md.code(kind, 66), known=known
        )
    if kinds.get(kind).always_escalate:
        return t.gettext(
            "Alerts of kind {kind} always go to the security team (`always_escalate`), so "
            "they cannot be suppressed."
        ).format(kind=md.code(kind, 66))
    return None


def suppress(
    db: Database, cmd: Suppress, actor: str, via: dict[str, Any], command: str,
    t: Translator = ENGLISH,
) -> str:  # fmt: skip
    expires_at = utcnow() + cmd.duration
    with db.write() as session:
        rule = suppressions.create(
            session, kind=cmd.kind, matchers=cmd.matchers, reason=cmd.reason, actor=actor,
            expires_at=expires_at, via=via,
        )  # fmt: skip
        name = suppressions.describe(rule)
        rule_id = rule.id
    return t.gettext(
        "Suppression rule {rule} is active until {when}: matching new alerts are stored and "
        "closed as suppressed (they stay visible in the dashboard and the daily summary). Your "
        "own alerts are never suppressed by it. Undo with `{command} revoke R{rule_id}`."
    ).format(rule=md.code(name, 300), when=slack_date(expires_at), command=command,
             rule_id=rule_id)  # fmt: skip


def list_rules(db: Database, t: Translator = ENGLISH) -> str:
    _ = t.gettext
    with db.read() as session:
        lines = [
            "• " + _("{rule} until {when}, by {user}: {reason}").format(
                rule=md.code(suppressions.describe(r), 300), when=slack_date(r.expires_at),
                user=md.user(r.created_by), reason=md.inline(r.reason, 200))
            for r in suppressions.list_rules(session)
        ]  # fmt: skip
    if not lines:
        return _("No active rules.")
    return "\n".join(["*" + _("Active suppression rules") + "*", *lines])


def revoke(
    db: Database, rule_id: int, actor: str, via: dict[str, Any], t: Translator = ENGLISH
) -> str:
    with db.write() as session:
        done = suppressions.revoke(session, rule_id=rule_id, actor=actor, via=via)
    if done:
        return t.gettext("Revoked suppression rule R{rule_id}.").format(rule_id=rule_id)
    return t.gettext("There is no active suppression rule R{rule_id}.").format(rule_id=rule_id)
