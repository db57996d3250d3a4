"""The App Home tab as Block Kit: pure functions, data in, a ``home`` view out.

An employee sees their open alerts (with the DM's own answer buttons) and recent history; a
responder also sees the escalation queue (claim), exemptions, snoozes and suppression rules
(revoke). Slack allows 100 blocks in a view, so every list is capped and says so.

The employee's part is in their language (``t``); the security team's part is in the team's
(``i18n.team_locale``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from securitybot.flows import suppressions
from securitybot.i18n import ENGLISH, N_, Translator
from securitybot.slack import messages
from securitybot.slack import mrkdwn as md
from securitybot.slack.dates import slack_date
from securitybot.store.models import Alert, Exemption, Snooze
from securitybot.store.storm_models import Storm
from securitybot.store.suppression_models import SuppressionRule
from securitybot.storms.message import storm_message

REVOKE_ACTION = "home_revoke"  # value: E12, S7 or R3, as in `/securitybot revoke`
MAX_ITEMS = 8  # per list: 6 lists of at most 8 items (some 2 blocks each) stay under 100
MAX_BLOCKS = 100

WAITING = {
    "new": N_("Being looked up"),
    "awaiting_ack": N_("Waiting for your answer"),
    "awaiting_2fa": N_("Waiting for you to approve the push on your phone"),
    "escalated": N_("With the security team"),
    "triaging": N_("Being looked at by the security team"),
    "held": N_("Held by the security team (nothing to answer yet)"),
}
OUTCOMES = {
    "confirmed": N_("✅ confirmed by you with a push on your phone"),
    "suppressed": N_("🔕 suppressed"),
    "benign": N_("✅ closed as benign by the security team"),
    "compromised": N_("🚨 confirmed as a compromise"),
    "storm_discarded": N_("🌀 discarded by the security team (a misfiring detection)"),
}


@dataclass
class TeamView:
    """What only responders see."""

    queue: list[Alert] = field(default_factory=list)
    exemptions: list[Exemption] = field(default_factory=list)
    snoozes: list[Snooze] = field(default_factory=list)
    rules: list[SuppressionRule] = field(default_factory=list)
    storms: list[tuple[Storm, list[str]]] = field(default_factory=list)  # open, held people


def _when(alert: Alert) -> str:
    return slack_date(alert.occurred_at or alert.created_at)


def _revoke(label: str, item: str, t: Translator) -> dict[str, Any]:
    _ = t.gettext
    confirm = {
        "title": {"type": "plain_text",
                  "text": md.clip_plain(_("Revoke {item}?").format(item=item), 100)},
        "text": {"type": "mrkdwn",
                 "text": _("It ends now; the change is logged under your name.")},
        "confirm": {"type": "plain_text", "text": md.clip_plain(_("Revoke"), 30)},
        "deny": {"type": "plain_text", "text": md.clip_plain(_("Cancel"), 30)},
    }  # fmt: skip
    return md.button(REVOKE_ACTION, label, item, style="danger", confirm=confirm)


def _with(block: dict[str, Any], accessory: dict[str, Any]) -> dict[str, Any]:
    return {**block, "accessory": accessory}


def _more(total: int, t: Translator = ENGLISH) -> list[dict[str, Any]]:
    if total <= MAX_ITEMS:
        return []
    more = total - MAX_ITEMS
    return [md.context(t.ngettext("…and {more} more", "…and {more} more", more).format(more=more))]


def _open_alert(alert: Alert, t: Translator = ENGLISH) -> list[dict[str, Any]]:
    waiting = t.gettext(WAITING[alert.status]) if alert.status in WAITING else alert.status
    line = (
        f"*#{alert.id} {md.inline(alert.title, 200)}*\n{waiting}"
        f" · {md.inline(alert.kind, 64)} · {_when(alert)}"
    )
    host = (alert.details or {}).get("host")
    if host:
        line += " · " + t.gettext("host {host}").format(host=md.code(host, 100))
    blocks = [md.section(line)]
    if alert.status == "awaiting_ack" and alert.parent_id is None:
        blocks.append(messages.answer_actions(alert, t))  # the DM's buttons, same handlers
    return blocks


def _history_line(alert: Alert, t: Translator = ENGLISH) -> str:
    key = alert.outcome or ""
    outcome = (
        t.gettext(OUTCOMES[key]) if key in OUTCOMES
        else md.inline(alert.outcome or alert.status, 40)
    )  # fmt: skip
    return f"• #{alert.id} {md.inline(alert.title, 120)} · {outcome} · {_when(alert)}"


def _team(team: TeamView, t: Translator = ENGLISH) -> list[dict[str, Any]]:
    """The responders' part, in the team's language (``i18n.team_locale``)."""
    _ = t.gettext
    blocks: list[dict[str, Any]] = [{"type": "divider"}, md.header(_("Security team"))]
    if team.storms:
        blocks.append(md.section(_("*Storms held* ({count})").format(count=len(team.storms))))
    for storm, users in team.storms[:MAX_ITEMS]:
        # The channel message's own buttons: the same handlers, checks and audit.
        _text, storm_blocks = storm_message(storm, users, t=t)
        blocks += [b for b in storm_blocks if b.get("type") in ("section", "actions")]
    blocks += _more(len(team.storms), t)
    blocks.append(md.section(_("*Escalation queue* ({count})").format(count=len(team.queue))))
    for a in team.queue[:MAX_ITEMS]:
        who = md.user(a.user_id) if a.user_id else md.code(a.user_given, 100)
        state = (
            _("claimed by {user}").format(user=md.user(a.claimed_by))
            if a.claimed_by
            else _("unclaimed")
        )
        text = (
            f"#{a.id} {md.inline(a.title, 150)}\n{who} · "
            f"{md.code(a.escalation_reason or '', 40)} · {state} · {_when(a)}"
        )
        claim = md.button(messages.CLAIM_ACTION, _("Claim"), str(a.id))
        blocks.append(_with(md.section(text), claim))
    blocks += _more(len(team.queue), t) or (
        [] if team.queue else [md.context(_("Nothing waiting."))]
    )

    blocks.append(md.section(_("*Active exemptions* ({count})").format(count=len(team.exemptions))))
    for e in team.exemptions[:MAX_ITEMS]:
        until = (
            _("until {when}").format(when=slack_date(e.expires_at)) if e.expires_at
            else _("no end")
        )  # fmt: skip
        who = md.user(e.user) if e.user.startswith(("U", "W")) else md.code(e.user, 100)
        by = _("by {user}").format(user=md.user(e.created_by))
        text = f"E{e.id} {who} · {until} · {by}\n{md.inline(e.reason, 200)}"
        blocks.append(_with(md.section(text), _revoke(_("Revoke"), f"E{e.id}", t)))
    blocks += _more(len(team.exemptions), t)

    blocks.append(md.section(_("*Active snoozes* ({count})").format(count=len(team.snoozes))))
    for s in team.snoozes[:MAX_ITEMS]:
        scope = ", ".join(f"{k}={v}" for k, v in (s.scope or {}).items())
        until = _("until {when}").format(when=slack_date(s.expires_at))
        text = (
            f"S{s.id} {md.user(s.user_id)} · {md.code(s.kind, 66)} {md.inline(scope, 200)} · "
            f"{until}"
        )
        blocks.append(_with(md.section(text), _revoke(_("Revoke"), f"S{s.id}", t)))
    blocks += _more(len(team.snoozes), t)

    blocks.append(md.section(_("*Suppression rules* ({count})").format(count=len(team.rules))))
    for r in team.rules[:MAX_ITEMS]:
        until = _("until {when}").format(when=slack_date(r.expires_at))
        by = _("by {user}").format(user=md.user(r.created_by))
        text = (
            f"{md.code(suppressions.describe(r), 300)} · {until} · {by}\n{md.inline(r.reason, 200)}"
        )
        blocks.append(_with(md.section(text), _revoke(_("Revoke"), f"R{r.id}", t)))
    blocks += _more(len(team.rules), t)
    blocks.append(md.context(_("Add with `/securitybot exempt` or `/securitybot suppress`.")))
    return blocks


def home_view(
    open_alerts: list[Alert], history: list[Alert], team: TeamView | None,
    t: Translator = ENGLISH, team_t: Translator = ENGLISH,
) -> dict[str, Any]:  # fmt: skip
    """``t``: the reader's own language; ``team_t``: the team's (``i18n.team_locale``)."""
    _ = t.gettext
    blocks: list[dict[str, Any]] = [md.header("Securitybot")]
    blocks.append(md.section(_("*Your open alerts* ({count})").format(count=len(open_alerts))))
    if not open_alerts:
        blocks.append(md.context(_("Nothing needs your answer. 🎉")))
    for alert in open_alerts[:MAX_ITEMS]:
        blocks += _open_alert(alert, t)
    blocks += _more(len(open_alerts), t)
    blocks.append(md.section(_("*Your recent alerts*")))
    lines = [_history_line(a, t) for a in history[:10]]
    blocks.append(md.section("\n".join(lines)) if lines else md.context(_("None yet.")))
    blocks.append(md.context(_("Type `/securitybot help` for commands; `/securitybot test` sends "
                               "you a harmless test alert.")))  # fmt: skip
    if team is not None:
        blocks += _team(team, team_t)
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}
