"""How paging's audit rows read in an alert's timeline (the Slack post, the dashboard, notes),
and timeline text as plain text for a pager."""

from __future__ import annotations

import html
import re
from typing import Any

from securitybot.i18n import ENGLISH, Translator
from securitybot.slack import mrkdwn as md

LABELS = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie"}
_MENTION = re.compile(r"<@([A-Z0-9]+)>")


def timeline_entry(action: str, details: dict[str, Any], t: Translator = ENGLISH) -> str | None:
    """The line for a ``paging.*`` audit row (in ``t``'s language), or None for any other."""
    _ = t.gettext
    if action == "paging.triggered":
        pager = LABELS.get(str(details.get("provider")))
        if pager is None:
            return _("On-call paged through the pager")
        return _("On-call paged through {pager}").format(pager=pager)
    who = md.inline(details.get("pagerduty_user") or _("someone"), 100)
    if action == "paging.pagerduty_acknowledged":
        claimed = details.get("claimed_for")
        if claimed:
            return _("Acknowledged in PagerDuty by {who}: claimed for {user}").format(
                who=who, user=md.user(claimed))  # fmt: skip
        return _("Acknowledged in PagerDuty by {who}").format(who=who)
    if action == "paging.pagerduty_resolved":
        return _(
            "Resolved in PagerDuty by {who}. That does not close the alert: record the "
            "outcome here (Resolve as benign or Confirm compromise)"
        ).format(who=who)
    return None


def plain(text: str) -> str:
    """Slack mrkdwn from the shared timeline phrases as plain text (mentions as their ids)."""
    return html.unescape(_MENTION.sub(r"\1", text).replace("*", ""))
