"""How each audit action reads in an alert's timeline (the escalation post, the dashboard), in
the team's language (``i18n.team_locale``; English by default)."""

from __future__ import annotations

from typing import Any

from securitybot.flows import dm_changes
from securitybot.i18n import ENGLISH, N_, Translator
from securitybot.paging import timeline as paging_timeline
from securitybot.slack import mrkdwn as md
from securitybot.slack.session_reset import why_text
from securitybot.store.models import AuditLog
from securitybot.verify.base import PROVIDER_LABELS, provider_named

_TIMELINE = {
    "alert.ingested": N_("Alert ingested"),
    "alert.dm_sent": N_("DM sent to the user"),
    "alert.user_confirmed": N_("User said it was them; push requested"),
    "alert.user_denied": N_("User said it was *not* them"),
    "duo.push_sent": N_("Duo push sent"),
    "alert.duo_approved": N_("Duo push *approved*"),
    "alert.duo_denied": N_("Duo push *denied*"),
    "alert.duo_timeout": N_("Duo push not answered"),
    "alert.duo_fraud": N_("Duo push reported as *fraud* by the user"),
    "alert.duo_error": N_("Duo error"),
    "alert.duo_not_enrolled": N_("No usable Duo device"),
    "alert.deadline_passed": N_("Deadline passed without an answer"),
    "alert.user_unknown": N_("User not found in Slack"),
    "alert.user_not_reachable": N_("User is in no workspace the app was added to"),
    "alert.dm_failed": N_("DM could not be delivered"),
    "alert.claimed": N_("Claimed"),
    "alert.resolved_benign": N_("Resolved as benign"),
    "alert.confirmed_compromise": N_("Compromise confirmed; sessions reset requested"),
    "user.sessions_reset": N_("User's Slack sessions reset"),
    "user.sessions_reset_failed": N_("Sessions *not* reset"),
    "alert.user_exempt": N_("User is exempt: sent straight to the team"),
    "alert.reminder_sent": N_("Reminder DM sent"),
    "alert.grouped": N_("Grouped into an earlier alert's conversation"),
    "alert.ungrouped": N_(
        "Out of its group: the rule or snooze closing the first did not cover it"
    ),
    "alert.suppression_matched": N_("Closed as suppressed by a suppression rule"),
    "alert.wrong_person": N_("User said the alert is about *someone else*"),
    "escalation.tier_raised": N_("Not claimed in time: next tier paged"),
    "escalation.fallback_sent": N_("Escalation also sent to the fallback webhook"),
}


def timeline_text(row: AuditLog, t: Translator = ENGLISH) -> str:
    dm_change = dm_changes.timeline_entry(row.action, row.details or {}, t)
    if dm_change is not None:  # says what was deleted or edited, and when
        return dm_change
    paged = paging_timeline.timeline_entry(row.action, row.details or {}, t)
    if paged is not None:  # names who acted in the pager, not a Slack user
        return paged
    label = _TIMELINE.get(row.action)
    if label is None:
        return ""
    # Translations keep "Duo" as the provider's name, so the real one replaces it here.
    base = provider_named(t.gettext(label), row.actor, row.details or {})
    if row.actor not in ("system", *PROVIDER_LABELS) and not row.actor.startswith("source:"):
        base = t.gettext("{event} by {user}").format(event=base, user=md.user(row.actor))
    if row.action == "user.sessions_reset_failed":
        return base + reset_failure(row.details or {}, t)
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


def reset_failure(details: dict[str, Any], t: Translator = ENGLISH) -> str:
    """Why a session reset failed, for the team: the workspace and the reason when no token
    could do it (slack/session_reset.py), else Slack's error."""
    error = md.code(details.get("error") or "error", 80)
    if not details.get("workspace"):
        return t.gettext(": Slack answered {error}").format(error=error)
    where = md.inline(details["workspace"], 80)
    why = why_text(details, t)  # the reason's phrase in the team's language, by its code
    return t.gettext(
        " for workspace {workspace}: {error}, {why}. Sign them out there by hand"
    ).format(workspace=where, error=error, why=why)
