"""How paging's audit rows read in an alert's timeline (the Slack post, the dashboard, notes),
and timeline text as plain text for a pager."""

from __future__ import annotations

import html
import re
from typing import Any

from securitybot.slack import mrkdwn as md

LABELS = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie"}
_MENTION = re.compile(r"<@([A-Z0-9]+)>")


def timeline_entry(action: str, details: dict[str, Any]) -> str | None:
    """The line for a ``paging.*`` audit row, or None for any other action."""
    if action == "paging.triggered":
        return f"On-call paged through {LABELS.get(str(details.get('provider')), 'the pager')}"
    who = md.inline(details.get("pagerduty_user") or "someone", 100)
    if action == "paging.pagerduty_acknowledged":
        line = f"Acknowledged in PagerDuty by {who}"
        claimed = details.get("claimed_for")
        return line + (f": claimed for {md.user(claimed)}" if claimed else "")
    if action == "paging.pagerduty_resolved":
        return (f"Resolved in PagerDuty by {who}. That does not close the alert: "
                "record the outcome here (Resolve as benign or Confirm compromise)")  # fmt: skip
    return None


def plain(text: str) -> str:
    """Slack mrkdwn from the shared timeline phrases as plain text (mentions as their ids)."""
    return html.unescape(_MENTION.sub(r"\1", text).replace("*", ""))
