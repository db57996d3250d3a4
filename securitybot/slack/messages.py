"""Block Kit for the DM and the escalation post. Pure functions: data in, blocks out."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from securitybot.kinds import AlertKind, escalation_severity, render
from securitybot.store.models import Alert

CONFIRM_ACTION = "alert_confirm"
DENY_ACTION = "alert_deny"
CLAIM_ACTION = "triage_claim"
BENIGN_ACTION = "triage_benign"
COMPROMISE_ACTION = "triage_compromise"
BENIGN_MODAL = "triage_benign_modal"
SNOOZE_HOUR_ACTION = "snooze_1h"
SNOOZE_DAY_ACTION = "snooze_1d"

HELP_TEXT = (
    "I understand: `ack`, `acknowledge`, `yes` or `y` (it was me, then I send a Duo push to "
    "your phone), `no`, `n` or `not me` (it wasn't you; the security team takes over). "
    "Add a reason after your answer if you like, e.g. `ack running the quarterly export`."
)

REASON_TEXT = {
    "not_me": "the user said it was not them",
    "duo_denied": "the Duo push was denied",
    "duo_timeout": "the Duo push was not answered in time",
    "duo_not_enrolled": "the user has no usable Duo push device",
    "duo_error": "Duo could not be reached",
    "no_response": "the user did not answer in time",
    "unknown_user": "the user could not be found in Slack",
    "always_escalate": "this kind of alert always goes to the team",
    "user_exempt": "the user is exempt from DMs",
    "dm_failed": "the DM could not be delivered",
    "duo_fraud": "the user reported the Duo push as *fraud*: someone else may hold their password",
    "dm_deleted": "the question or the user's answer was deleted from the DM",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown time"


def _fields(alert: Alert) -> dict[str, Any]:
    details = alert.details or {}
    return {**{k: v for k, v in details.items() if isinstance(k, str)}, "title": alert.title,
            "description": alert.description, "user": alert.user_given}  # fmt: skip


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}


def _what_happened(alert: Alert) -> list[dict[str, Any]]:
    """The alert's description and details, as both the DM and the escalation show them."""
    return [_section(t) for t in (alert.description, _details_text(alert)) if t]


def _details_text(alert: Alert) -> str:
    details = alert.details or {}
    if not details:
        return ""
    lines = []
    for key, value in list(details.items())[:12]:
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"• *{key}*: `{str(shown)[:200]}`")
    return "\n".join(lines)


def _group_text(alert: Alert, grouped: list[Alert]) -> str:
    lines = [f"• #{a.id} {a.title}" for a in [alert, *grouped][:10]]
    more = len(grouped) + 1 - len(lines)
    return "\n".join(lines) + (f"\n…and {more} more" if more > 0 else "")


def dm_message(
    alert: Alert, kind: AlertKind, *, first_name: str, greet: bool,
    grouped: list[Alert] | None = None,
) -> tuple[str, list[dict[str, Any]]]:  # fmt: skip
    values = _fields(alert)
    headline = render(kind.title, values)
    if grouped:
        headline = f"{len(grouped) + 1} alerts: {headline}"
    question = render(kind.message, values).strip()
    intro = (
        f"Hi {first_name}! I'm Securitybot. When monitoring sees something unusual on your "
        "account, I ask you first, because you know best whether it was you.\n\n"
        if greet
        else f"Hi {first_name}, "
    )
    text = f"{intro}{question}"
    context = f"Alert #{alert.id} · {alert.kind} · {_when(alert.occurred_at or alert.created_at)}"
    host = (alert.details or {}).get("host")
    if host:
        context += f" · host `{host}`"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
    ]
    blocks += _what_happened(alert)
    if grouped:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text":
            "One answer covers all of these:\n" + _group_text(alert, grouped)[:2800]}})  # fmt: skip
    blocks += [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        {
            "type": "actions",
            "block_id": f"answer:{alert.id}",
            "elements": [
                {"type": "button", "action_id": CONFIRM_ACTION, "style": "primary",
                 "text": {"type": "plain_text", "text": "Yes, this was me"},
                 "value": str(alert.id)},
                {"type": "button", "action_id": DENY_ACTION, "style": "danger",
                 "text": {"type": "plain_text", "text": "No, this wasn't me"},
                 "value": str(alert.id)},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            "You can also reply `ack` or `no` (with a reason if you like). Saying yes sends a "
            "Duo push to your phone to confirm it's really you."}]},
    ]  # fmt: skip
    return f"{headline}: {question}"[:3000], blocks


def answered_message(
    alert: Alert, kind: AlertKind, outcome_text: str, *, offer_snooze: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """The DM after an answer: what it was about, the outcome, and no answer buttons."""
    headline = render(kind.title, _fields(alert))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": outcome_text[:2900]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Alert #{alert.id} · {alert.kind}"}]},
    ]  # fmt: skip
    if offer_snooze:
        blocks.append({
            "type": "actions", "block_id": f"snooze:{alert.id}",
            "elements": [
                {"type": "button", "action_id": SNOOZE_HOUR_ACTION, "value": str(alert.id),
                 "text": {"type": "plain_text", "text": "Snooze similar alerts for 1 hour"}},
                {"type": "button", "action_id": SNOOZE_DAY_ACTION, "value": str(alert.id),
                 "text": {"type": "plain_text", "text": "Snooze for 1 day"}},
            ],
        })  # fmt: skip
    return f"{headline}: {outcome_text}"[:3000], blocks


def escalation_message(
    alert: Alert,
    kind: AlertKind,
    timeline: list[tuple[datetime, str]],
    *,
    mention: str | None = None,
    grouped: list[Alert] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    reason = alert.escalation_reason or "unknown"
    who = f"<@{alert.user_id}>" if alert.user_id else f"`{alert.user_given}`"
    severity = escalation_severity(kind, alert.escalation_reason)
    sev = severity.value.upper()
    head = f"{sev} · {alert.title}"
    status_line = {
        "escalated": "Needs a responder",
        "triaging": f"Being triaged by <@{alert.claimed_by}>" if alert.claimed_by else "Triaging",
        "closed": f"Closed: *{alert.outcome}*" + (f" by <@{alert.claimed_by}>" if alert.claimed_by else ""),
    }.get(alert.status, alert.status)  # fmt: skip
    summary = (
        f"{mention + ' ' if mention else ''}*Escalated:* {REASON_TEXT.get(reason, reason)} "
        f"(`{reason}`)\n*Who:* {who}\n*Kind:* `{alert.kind}` · *Severity:* {severity.value}"
        f"\n*Status:* {status_line}"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary[:2900]}},
    ]
    blocks += _what_happened(alert)
    if grouped:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text":
            f"*{len(grouped) + 1} alerts in this burst*\n" + _group_text(alert, grouped)[:2800]}})  # fmt: skip
    if timeline:
        lines = [f"`{t.strftime('%H:%M:%S')}` {what}" for t, what in timeline[-15:]]
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*Timeline*\n" + "\n".join(lines)},
            }
        )
    if alert.status in ("escalated", "triaging"):
        blocks.append({
            "type": "actions", "block_id": f"triage:{alert.id}",
            "elements": [
                {"type": "button", "action_id": CLAIM_ACTION, "value": str(alert.id),
                 "text": {"type": "plain_text", "text": "Claim"}},
                {"type": "button", "action_id": BENIGN_ACTION, "value": str(alert.id), "style": "primary",
                 "text": {"type": "plain_text", "text": "Resolve as benign"}},
                {"type": "button", "action_id": COMPROMISE_ACTION, "value": str(alert.id), "style": "danger",
                 "text": {"type": "plain_text", "text": "Confirm compromise"},
                 "confirm": {"title": {"type": "plain_text", "text": "Confirm compromise?"},
                             "text": {"type": "mrkdwn", "text": "This resets all of the user's Slack sessions."},
                             "confirm": {"type": "plain_text", "text": "Reset sessions"},
                             "deny": {"type": "plain_text", "text": "Cancel"}}},
            ],
        })  # fmt: skip
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Alert #{alert.id} · source `{alert.source}`"}]})  # fmt: skip
    text = f"[{sev}] Escalated alert #{alert.id}: {alert.title} ({reason})"
    return text, blocks
