"""The security channel's message about a storm (pure): what fired, how many people so far, a
sample of them, and the responders' buttons."""

from __future__ import annotations

from typing import Any

from securitybot.slack import mrkdwn as md
from securitybot.slack.dates import slack_date
from securitybot.store.storm_models import Storm

RELEASE_ACTION = "storm_release"
DISCARD_ACTION = "storm_discard"
ESCALATE_ACTION = "storm_escalate"
ACTIONS = {RELEASE_ACTION: "release", DISCARD_ACTION: "discard", ESCALATE_ACTION: "escalate"}
SAMPLE = 10


def button_value(storm: Storm) -> str:
    """``<storm id>:<alerts held shown>``: a click decides on what the clicker saw, not on more."""
    return f"{storm.id}:{storm.held}"


def _window(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _sample(users: list[str]) -> str:
    shown = ", ".join(md.user(u) for u in users[:SAMPLE])
    more = len(users) - SAMPLE
    return shown + (f" and {more} more" if more > 0 else "")


def storm_message(
    storm: Storm, users: list[str], mention: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for ``storm``; ``users``: the people its held alerts name."""
    total = storm.people + len(users)
    held = f"{storm.held} DM{'s' if storm.held != 1 else ''} held"
    head = (
        f"{mention + ' ' if mention else ''}:cyclone: *Storm:* {md.code(storm.kind, 66)} from "
        f"{md.code(storm.source, 66)} was about to DM more than {storm.max_people} people in "
        f"{_window(storm.window)}: *{total} people so far*, {storm.people} DMed, *{held}* "
        f"({len(users)} people).\n*Held, e.g.:* {_sample(users)}"
    )
    blocks: list[dict[str, Any]] = [md.section(head)]
    if storm.status == "open":
        blocks.append(md.context(
            "Nobody was asked about the held alerts. Release to DM them all (paced), discard "
            "if the detection misfired, or escalate all as one incident."
        ))  # fmt: skip
        value = button_value(storm)
        confirm = {
            "title": {"type": "plain_text", "text": "Release held DMs?"},
            "text": {"type": "mrkdwn", "text": md.fallback(f"This DMs {len(users)} people.")},
            "confirm": {"type": "plain_text", "text": "DM them"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        blocks.append({
            "type": "actions", "block_id": f"storm:{storm.id}",
            "elements": [
                md.button(RELEASE_ACTION, f"Release {storm.held}", value, confirm=confirm),
                md.button(DISCARD_ACTION, "Discard", value),
                md.button(ESCALATE_ACTION, "Escalate all", value, style="danger"),
            ],
        })  # fmt: skip
    else:
        who = md.user(storm.resolved_by)
        when = slack_date(storm.resolved_at, missing="")
        verbs = {"released": "released (DMs on their way)", "discarded": "discarded",
                 "escalated": "escalated as one incident"}  # fmt: skip
        verb = verbs.get(storm.status, storm.status)
        more = f" (alert #{storm.escalated_alert_id})" if storm.escalated_alert_id else ""
        blocks.append(md.section(f"*Status:* *{verb}*{more} by {who} {when}".rstrip()))
    blocks.append(md.context(f"Storm #{storm.id} · since {slack_date(storm.opened_at)}"))
    text = f"Storm: {storm.kind} from {storm.source}: {held} ({storm.status})"
    return md.fallback(text), blocks
