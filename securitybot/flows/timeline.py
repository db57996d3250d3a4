"""How each audit action reads in an alert's timeline (the escalation post, the dashboard)."""

from __future__ import annotations

from typing import Any

from securitybot.flows import dm_changes
from securitybot.paging import timeline as paging_timeline
from securitybot.slack import mrkdwn as md
from securitybot.store.models import AuditLog
from securitybot.verify.base import PROVIDER_LABELS, provider_named

_TIMELINE = {
    "alert.ingested": "Alert ingested",
    "alert.dm_sent": "DM sent to the user",
    "alert.user_confirmed": "User said it was them; push requested",
    "alert.user_denied": "User said it was *not* them",
    "duo.push_sent": "Duo push sent",
    "alert.duo_approved": "Duo push *approved*",
    "alert.duo_denied": "Duo push *denied*",
    "alert.duo_timeout": "Duo push not answered",
    "alert.duo_fraud": "Duo push reported as *fraud* by the user",
    "alert.duo_error": "Duo error",
    "alert.duo_not_enrolled": "No usable Duo device",
    "alert.deadline_passed": "Deadline passed without an answer",
    "alert.user_unknown": "User not found in Slack",
    "alert.user_not_reachable": "User is in no workspace the app was added to",
    "alert.dm_failed": "DM could not be delivered",
    "alert.claimed": "Claimed",
    "alert.resolved_benign": "Resolved as benign",
    "alert.confirmed_compromise": "Compromise confirmed; sessions reset requested",
    "user.sessions_reset": "User's Slack sessions reset",
    "user.sessions_reset_failed": "Sessions *not* reset",
    "alert.user_exempt": "User is exempt: sent straight to the team",
    "alert.reminder_sent": "Reminder DM sent",
    "alert.grouped": "Grouped into an earlier alert's conversation",
    "alert.ungrouped": "Out of its group: the rule or snooze closing the first did not cover it",
    "alert.suppression_matched": "Closed as suppressed by a suppression rule",
    "alert.wrong_person": "User said the alert is about *someone else*",
    "escalation.tier_raised": "Not claimed in time: next tier paged",
    "escalation.fallback_sent": "Escalation also sent to the fallback webhook",
}


def timeline_text(row: AuditLog) -> str:
    dm_change = dm_changes.timeline_entry(row.action, row.details or {})
    if dm_change is not None:  # says what was deleted or edited, and when
        return dm_change
    paged = paging_timeline.timeline_entry(row.action, row.details or {})
    if paged is not None:  # names who acted in the pager, not a Slack user
        return paged
    base = _TIMELINE.get(row.action)
    if base is None:
        return ""
    base = provider_named(base, row.actor, row.details or {})
    if row.actor not in ("system", *PROVIDER_LABELS) and not row.actor.startswith("source:"):
        base += f" by {md.user(row.actor)}"
    if row.action == "user.sessions_reset_failed":
        return base + reset_failure(row.details or {})
    comment = (row.details or {}).get("comment")
    if comment and row.action in (
        "alert.user_confirmed",
        "alert.user_denied",
        "alert.resolved_benign",
        "alert.duo_error",
        "alert.dm_failed",
    ):
        base += f": “{md.inline(comment, 400)}”"  # the user's or a tool's own words
    return base


def reset_failure(details: dict[str, Any]) -> str:
    """Why a session reset failed, for the team: the workspace and the reason when no token
    could do it (slack/session_reset.py), else Slack's error."""
    error = md.code(details.get("error") or "error", 80)
    if not details.get("workspace"):
        return f": Slack answered {error}"
    where = md.inline(details["workspace"], 80)
    why = md.inline(details.get("why") or "", 200)
    return f" for workspace {where}: {error}, {why}. Sign them out there by hand"
