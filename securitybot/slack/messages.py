"""Block Kit for the DM and the escalation post. Pure functions: data in, blocks out.

Everything from the alert is untrusted: it is escaped (or put in an unbreakable code span) by
``slack/mrkdwn.py`` and every block is built there, so each message fits Slack's limits.

What the implicated person reads is in their language: each function takes ``t`` (a catalog
from ``securitybot.i18n``, English by default). A translated template is trusted text; only the
values substituted into it are escaped.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from securitybot.i18n import ENGLISH, N_, Translator
from securitybot.kinds import AlertKind, escalation_severity, render
from securitybot.slack import mrkdwn as md
from securitybot.slack.dates import slack_date
from securitybot.store.models import Alert

CONFIRM_ACTION = "alert_confirm"
DENY_ACTION = "alert_deny"
WRONG_PERSON_ACTION = "alert_wrong_person"
CLAIM_ACTION = "triage_claim"
BENIGN_ACTION = "triage_benign"
COMPROMISE_ACTION = "triage_compromise"
BENIGN_MODAL = "triage_benign_modal"
SNOOZE_HOUR_ACTION = "snooze_1h"
SNOOZE_DAY_ACTION = "snooze_1d"

HELP_TEXT = N_(
    "I understand: `ack`, `acknowledge`, `yes` or `y` (it was me, then I send a push to "
    "your phone), `no`, `n` or `not me` (it wasn't you; I ask you to `confirm`, then the "
    "security team takes over), `wrong person` (the alert is about someone else). "
    "Add a reason after your answer if you like, e.g. `ack running the quarterly export`."
)
# Under the DM's buttons: the typed answers (each catalog names its own language's words).
DM_HINT = N_(
    "You can also reply `ack`, `no` or `wrong person` (with a reason if you like). Saying yes "
    "sends a push to your phone to confirm it's really you."
)
CONFIRM_DENIAL_TEXT = N_(
    "Are you sure it wasn't you? This alerts the security team. Reply `confirm` (or `no` "
    "again) to tell them, or `yes` if it was you after all."
)


# Slack shows this dialog before sending the click (Block Kit confirmation dialog object), so a
# mis-click on "No" does not page the team.
def deny_confirm(t: Translator = ENGLISH) -> dict[str, Any]:
    _ = t.gettext
    return {
        "title": {"type": "plain_text", "text": _("It wasn't you?")},
        "text": {"type": "mrkdwn",
                 "text": _("The security team will be alerted and will look into it.")},
        "confirm": {"type": "plain_text", "text": _("Yes, alert the team")},
        "deny": {"type": "plain_text", "text": _("Cancel")},
    }  # fmt: skip


DENY_CONFIRM = deny_confirm()

# Why an alert reached the team, in the team's language (``i18n.team_locale``).
REASON_TEXT = {
    "not_me": N_("the user said it was not them"),
    "duo_denied": N_("the Duo push was denied"),
    "duo_timeout": N_("the Duo push was not answered in time"),
    "duo_not_enrolled": N_("the user has no usable Duo push device"),
    "duo_error": N_("Duo could not be reached"),
    "no_response": N_("the user did not answer in time"),
    "unknown_user": N_("the user could not be found in Slack"),
    "not_reachable": N_(
        "the user is in no workspace the app was added to, so nobody could ask them"
    ),
    "no_user": N_("the alert names no Slack user (no email address or Slack id)"),
    "always_escalate": N_("this kind of alert always goes to the team"),
    "user_exempt": N_("the user is exempt from DMs"),
    "dm_failed": N_("the DM could not be delivered"),
    "duo_fraud": N_(
        "the user reported the Duo push as *fraud*: someone else may hold their password"
    ),
    "dm_deleted": N_("the question or the user's answer was deleted from the DM"),
    "wrong_person": N_("the user says the alert is about *someone else*: check the user mapping"),
}


def _when(value: datetime | None) -> str:
    return slack_date(value)  # in the reader's time zone, UTC when it can't be shown


def _fields(alert: Alert) -> dict[str, Any]:
    details = alert.details or {}
    return {**{k: v for k, v in details.items() if isinstance(k, str)}, "title": alert.title,
            "description": alert.description, "user": alert.user_given}  # fmt: skip


def _quote(value: Any) -> str:
    # A value substituted into a kind's template: inert, one line, and short enough that one
    # huge field cannot crowd out the question.
    return md.inline(value, 300)


def kind_text(template: str, t: Translator) -> str:
    """A kind's title or question in the reader's language: the catalog holds the shipped
    kinds' templates (stripped, as extracted); a kind the catalog lacks stays as written."""
    key = template.strip()
    said = t.gettext(key)
    return template if said == key else said


def _titles(alert: Alert, kind: AlertKind, t: Translator = ENGLISH) -> tuple[str, str]:
    """(plain headline for the header block, escaped headline for mrkdwn and ``text``)."""
    values = _fields(alert)
    title = kind_text(kind.title, t)
    return render(title, values), render(title, values, _quote)


def _what_happened(alert: Alert) -> list[dict[str, Any]]:
    """The alert's description and details, as both the DM and the escalation show them."""
    more = md.truncated(alert.id)
    return md.sections([md.escape(alert.description or ""), _details_text(alert)], more)


def _details_text(alert: Alert) -> str:
    details = alert.details or {}
    if not details:
        return ""
    lines = []
    for key, value in list(details.items())[:12]:
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"• *{md.inline(key, 100)}*: {md.code(shown, 200)}")
    return "\n".join(lines)


def _group_text(alert: Alert, grouped: list[Alert], t: Translator = ENGLISH) -> str:
    lines = [f"• #{a.id} {md.inline(a.title, 150)}" for a in [alert, *grouped][:10]]
    more = len(grouped) + 1 - len(lines)
    if more <= 0:
        return "\n".join(lines)
    return "\n".join(lines) + "\n" + t.ngettext("…and {more} more", "…and {more} more",
                                               more).format(more=more)  # fmt: skip


def dm_message(
    alert: Alert, kind: AlertKind, *, first_name: str, greet: bool,
    grouped: list[Alert] | None = None, t: Translator = ENGLISH,
) -> tuple[str, list[dict[str, Any]]]:  # fmt: skip
    _ = t.gettext
    headline, headline_md = _titles(alert, kind, t)
    if grouped:
        n = len(grouped) + 1
        several = t.ngettext("{count} alert: {headline}", "{count} alerts: {headline}", n)
        headline = several.format(count=n, headline=headline)
        headline_md = several.format(count=n, headline=headline_md)
    question = render(kind_text(kind.message, t), _fields(alert), _quote).strip()
    name = md.inline(first_name, 60)  # a Slack profile name is the user's own text
    intro = (
        _("Hi {name}! I'm Securitybot. When monitoring sees something unusual on your "
          "account, I ask you first, because you know best whether it was you.").format(name=name)
        + "\n\n"
        if greet
        else _("Hi {name}, ").format(name=name)
    )  # fmt: skip
    more = md.truncated(alert.id)
    number = _("Alert #{alert_id}").format(alert_id=alert.id)
    context = (
        f"{number} · {md.inline(alert.kind, 64)} · {_when(alert.occurred_at or alert.created_at)}"
    )
    host = (alert.details or {}).get("host")
    if host:
        context += " · " + _("host {host}").format(host=md.code(host, 200))
    blocks: list[dict[str, Any]] = [md.header(headline), md.section(f"{intro}{question}", more)]
    blocks += _what_happened(alert)
    if grouped:
        blocks.append(
            md.section(
                _("One answer covers all of these:") + "\n" + _group_text(alert, grouped, t), more
            )
        )
    blocks += [
        md.context(context),
        answer_actions(alert, t),
        md.context(_(DM_HINT)),
    ]
    return md.fallback(f"{headline_md}: {question}"), blocks


def answer_actions(alert: Alert, t: Translator = ENGLISH) -> dict[str, Any]:
    """The answer buttons, the same in the DM and in App Home."""
    _ = t.gettext
    value = str(alert.id)
    return {
        "type": "actions", "block_id": f"answer:{alert.id}",
        "elements": [
            md.button(CONFIRM_ACTION, _("Yes, this was me"), value, style="primary"),
            md.button(DENY_ACTION, _("No, this wasn't me"), value, style="danger",
                      confirm=deny_confirm(t)),
            md.button(WRONG_PERSON_ACTION, _("Wrong person"), value),
        ],
    }  # fmt: skip


def reminder_text(
    alert: Alert, minutes: int | None, t: Translator = ENGLISH, kind: AlertKind | None = None
) -> str:
    """``kind``: the alert's, so the reminder names it as the DM's headline did, in the
    reader's language; without it, the alert's own title."""
    title = _titles(alert, kind, t)[1] if kind is not None else md.inline(alert.title, 200)
    if minutes:
        said = t.ngettext(
            "Reminder: please answer about alert #{alert_id} ({title}) within about {minutes} "
            "minute, or the security team will be asked to look into it.",
            "Reminder: please answer about alert #{alert_id} ({title}) within about {minutes} "
            "minutes, or the security team will be asked to look into it.",
            minutes,
        )
    else:
        said = t.gettext(
            "Reminder: please answer about alert #{alert_id} ({title}), or the security team "
            "will be asked to look into it."
        )
    return md.fallback(said.format(alert_id=alert.id, title=title, minutes=minutes))


def answered_message(
    alert: Alert, kind: AlertKind, outcome_text: str, *, offer_snooze: bool = False,
    t: Translator = ENGLISH,
) -> tuple[str, list[dict[str, Any]]]:  # fmt: skip
    """The DM after an answer: what it was about, the outcome, and no answer buttons.
    ``outcome_text`` is product text already in the reader's language."""
    _ = t.gettext
    headline, headline_md = _titles(alert, kind, t)
    blocks: list[dict[str, Any]] = [
        md.header(headline),
        md.section(outcome_text, md.truncated(alert.id)),
        md.context(
            _("Alert #{alert_id}").format(alert_id=alert.id) + " · " + md.inline(alert.kind, 64)
        ),
    ]
    if offer_snooze:
        blocks.append({
            "type": "actions", "block_id": f"snooze:{alert.id}",
            "elements": [
                md.button(SNOOZE_HOUR_ACTION, _("Snooze similar alerts for 1 hour"),
                          str(alert.id)),
                md.button(SNOOZE_DAY_ACTION, _("Snooze for 1 day"), str(alert.id)),
            ],
        })  # fmt: skip
    return md.fallback(f"{headline_md}: {outcome_text}"), blocks


def _who(alert: Alert, t: Translator = ENGLISH) -> str:
    if alert.user_id:
        return md.user(alert.user_id)
    # What the tool said (maybe a login such as "root"), shown as inert code; or plainly none.
    return md.code(alert.user_given, 200) if alert.user_given else t.gettext("_no user named_")


def _status_line(alert: Alert, t: Translator) -> str:
    _ = t.gettext
    claimer = md.user(alert.claimed_by)
    if alert.status == "escalated":
        return _("Needs a responder")
    if alert.status == "triaging":
        if alert.claimed_by:
            return _("Being triaged by {user}").format(user=claimer)
        return _("Triaging")
    if alert.status == "closed":
        outcome = md.inline(alert.outcome or "", 64)
        if alert.claimed_by:
            return _("Closed: *{outcome}* by {user}").format(outcome=outcome, user=claimer)
        return _("Closed: *{outcome}*").format(outcome=outcome)
    return md.inline(alert.status, 64)


def triage_actions(alert: Alert, t: Translator = ENGLISH) -> dict[str, Any]:
    """The responders' buttons under an open escalation, in the team's language."""
    _ = t.gettext
    confirm = {"title": {"type": "plain_text", "text": _("Confirm compromise?")},
               "text": {"type": "mrkdwn",
                        "text": _("This resets all of the user's Slack sessions.")},
               "confirm": {"type": "plain_text", "text": _("Reset sessions")},
               "deny": {"type": "plain_text", "text": _("Cancel")}}  # fmt: skip
    value = str(alert.id)
    return {
        "type": "actions", "block_id": f"triage:{alert.id}",
        "elements": [
            md.button(CLAIM_ACTION, _("Claim"), value),
            md.button(BENIGN_ACTION, _("Resolve as benign"), value, style="primary"),
            md.button(COMPROMISE_ACTION, _("Confirm compromise"), value, style="danger",
                      confirm=confirm),
        ],
    }  # fmt: skip


def escalation_message(
    alert: Alert,
    kind: AlertKind,
    timeline: list[tuple[datetime, str]],
    *,
    mention: str | None = None,
    grouped: list[Alert] | None = None,
    provider: str = "Duo",
    t: Translator = ENGLISH,
) -> tuple[str, list[dict[str, Any]]]:
    """The security channel's post, in the team's language (``t``: ``i18n.team_locale``; the
    alert's own text stays as the tool wrote it). ``mention`` is product-made markup (from
    config); the timeline lines are mrkdwn whose outside parts are already escaped
    (``timeline_text``, in the same language). ``provider`` names the second factor in the
    reason ("the Okta Verify push was denied")."""
    _ = t.gettext
    reason = alert.escalation_reason or "unknown"
    severity = escalation_severity(kind, alert.escalation_reason)
    sev = severity.value.upper()
    known = REASON_TEXT.get(reason)
    reason_text = md.escape((_(known) if known else reason).replace("Duo", provider))
    summary = _(
        "*Escalated:* {reason} ({code})\n*Who:* {who}\n*Kind:* {kind} · *Severity:* "
        "{severity}\n*Status:* {status}"
    ).format(reason=reason_text, code=md.code(reason, 66), who=_who(alert, t),
             kind=md.code(alert.kind, 66), severity=severity.value,
             status=_status_line(alert, t))  # fmt: skip
    if mention:
        summary = f"{mention} {summary}"
    more = md.truncated(alert.id)
    blocks: list[dict[str, Any]] = [
        md.header(f"{sev} · {alert.title}"),
        md.section(summary, more),
    ]
    blocks += _what_happened(alert)
    if grouped:
        n = len(grouped) + 1
        burst = t.ngettext("*{count} alert in this burst*", "*{count} alerts in this burst*", n)
        blocks.append(
            md.section(burst.format(count=n) + "\n" + _group_text(alert, grouped, t), more)
        )
    if timeline:
        lines = [f"{slack_date(at, '{time_secs}')} {what}" for at, what in timeline[-15:]]
        blocks.append(md.section("*" + _("Timeline") + "*\n" + "\n".join(lines), more))
    if alert.status in ("escalated", "triaging"):
        blocks.append(triage_actions(alert, t))
    blocks.append(md.context(_("Alert #{alert_id} · source {source}").format(
        alert_id=alert.id, source=md.code(alert.source, 100))))  # fmt: skip
    text = _("[{severity}] Escalated alert #{alert_id}: {title} ({reason})").format(
        severity=sev, alert_id=alert.id, title=md.inline(alert.title, 300),
        reason=md.escape(reason),
    )  # fmt: skip
    return md.fallback(text), blocks
