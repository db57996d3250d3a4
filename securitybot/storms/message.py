"""The security channel's message about a storm (pure): what fired, how many people so far, a
sample of them, and the responders' buttons."""

from __future__ import annotations

from typing import Any

from securitybot.i18n import ENGLISH, N_, Translator
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


def _sample(users: list[str], t: Translator) -> str:
    shown = ", ".join(md.user(u) for u in users[:SAMPLE])
    more = len(users) - SAMPLE
    if more <= 0:
        return shown
    return t.ngettext("{shown} and {more} more", "{shown} and {more} more", more).format(
        shown=shown, more=more
    )


# A decided storm's status, in the team's language.
VERBS = {
    "released": N_("released (DMs on their way)"),
    "discarded": N_("discarded"),
    "escalated": N_("escalated as one incident"),
}


def storm_message(
    storm: Storm, users: list[str], mention: str | None = None, t: Translator = ENGLISH
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for ``storm``; ``users``: the people its held alerts name.
    ``t``: the team's language (``i18n.team_locale``)."""
    _ = t.gettext
    total = storm.people + len(users)
    held = t.ngettext("{count} DM held", "{count} DMs held", storm.held).format(count=storm.held)
    head = _(
        ":cyclone: *Storm:* {kind} from {source} was about to DM more than {max} people in "
        "{window}: *{total} people so far*, {dmed} DMed, *{held}* ({people} people).\n"
        "*Held, e.g.:* {sample}"
    ).format(kind=md.code(storm.kind, 66), source=md.code(storm.source, 66),
             max=storm.max_people, window=_window(storm.window), total=total,
             dmed=storm.people, held=held, people=len(users),
             sample=_sample(users, t))  # fmt: skip
    if mention:
        head = f"{mention} {head}"
    blocks: list[dict[str, Any]] = [md.section(head)]
    if storm.status == "open":
        blocks.append(md.context(_(
            "Nobody was asked about the held alerts. Release to DM them all (paced), discard "
            "if the detection misfired, or escalate all as one incident."
        )))  # fmt: skip
        value = button_value(storm)
        confirm = {
            "title": {"type": "plain_text", "text": md.clip_plain(_("Release held DMs?"), 100)},
            "text": {"type": "mrkdwn", "text": md.fallback(
                t.ngettext("This DMs {count} person.", "This DMs {count} people.",
                           len(users)).format(count=len(users)))},
            "confirm": {"type": "plain_text", "text": md.clip_plain(_("DM them"), 30)},
            "deny": {"type": "plain_text", "text": md.clip_plain(_("Cancel"), 30)},
        }  # fmt: skip
        blocks.append({
            "type": "actions", "block_id": f"storm:{storm.id}",
            "elements": [
                md.button(RELEASE_ACTION, _("Release {count}").format(count=storm.held), value,
                          confirm=confirm),
                md.button(DISCARD_ACTION, _("Discard"), value),
                md.button(ESCALATE_ACTION, _("Escalate all"), value, style="danger"),
            ],
        })  # fmt: skip
    else:
        who = md.user(storm.resolved_by)
        when = slack_date(storm.resolved_at, missing="")
        known = VERBS.get(storm.status)
        verb = _(known) if known else storm.status
        if storm.escalated_alert_id:
            status = _("*Status:* *{verb}* (alert #{alert_id}) by {user} {when}").format(
                verb=verb, alert_id=storm.escalated_alert_id, user=who, when=when)  # fmt: skip
        else:
            status = _("*Status:* *{verb}* by {user} {when}").format(verb=verb, user=who,
                                                                      when=when)  # fmt: skip
        blocks.append(md.section(status.strip()))
    blocks.append(md.context(_("Storm #{storm_id} · since {when}").format(
        storm_id=storm.id, when=slack_date(storm.opened_at))))  # fmt: skip
    text = _("Storm: {kind} from {source}: {held} ({status})").format(
        kind=md.inline(storm.kind, 66), source=md.inline(storm.source, 66), held=held,
        status=storm.status)  # fmt: skip
    return md.fallback(text), blocks
