"""The security channel's message about resets held past an org's reset budget (pure)."""

from __future__ import annotations

from typing import Any

from securitybot.config import AerResetBudget
from securitybot.i18n import ENGLISH, Translator
from securitybot.slack import mrkdwn as md
from securitybot.slack.dates import slack_date
from securitybot.store.aer_budget_models import AerHeldBatch

RELEASE_ACTION = "aer_held_release"
DISCARD_ACTION = "aer_held_discard"
_SHOWN_USERS = 25


def button_value(batch: AerHeldBatch) -> str:
    """``<batch id>:<resets shown>``: a click decides on what the clicker saw, not on more."""
    return f"{batch.id}:{batch.resets}"


def _users(users: list[str], t: Translator) -> str:
    shown = ", ".join(md.user(u) for u in users[:_SHOWN_USERS])
    more = len(users) - _SHOWN_USERS
    if more <= 0:
        return shown
    return t.ngettext("{shown} and {more} more", "{shown} and {more} more", more).format(
        shown=shown, more=more
    )


def held_message(
    batch: AerHeldBatch, users: list[str], mention: str | None = None, t: Translator = ENGLISH
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks): how many resets are held, for whom, and what to do; in the
    team's language (``t``: ``i18n.team_locale``)."""
    from securitybot.aer.budget import describe_reason

    _ = t.gettext
    budget = describe_reason(AerResetBudget(count=batch.budget_count, per=batch.budget_per)).text(t)
    n = batch.resets
    resets = t.ngettext("{count} automatic session reset", "{count} automatic session resets",
                        n).format(count=n)  # fmt: skip
    org = md.code(batch.org, 66)
    if batch.anomalies != n:
        head = _(":octagonal_sign: *AER reset budget reached* in org {org} ({budget}): "
                 "*{resets} held* ({anomalies} anomalies).\n*Held:* {users}")  # fmt: skip
    else:
        head = _(":octagonal_sign: *AER reset budget reached* in org {org} ({budget}): "
                 "*{resets} held*.\n*Held:* {users}")  # fmt: skip
    head = head.format(org=org, budget=budget, resets=resets, anomalies=batch.anomalies,
                       users=_users(users, t))  # fmt: skip
    if mention:
        head = f"{mention} {head}"
    blocks: list[dict[str, Any]] = [md.section(head)]
    if batch.status == "open":
        blocks.append(
            md.context(_("Nobody was signed out for these. Release to reset their sessions "
                         "now, or discard if this looks like a flood of false or forged "
                         "events."))
        )  # fmt: skip
        signs_out = t.ngettext(
            "This signs out {count} person: all of their Slack sessions are reset.",
            "This signs out {count} people: all of their Slack sessions are reset.", n,
        ).format(count=n)  # fmt: skip
        confirm = {
            "title": {"type": "plain_text",
                      "text": md.clip_plain(_("Release held resets?"), 100)},
            "text": {"type": "mrkdwn", "text": md.fallback(signs_out)},
            "confirm": {"type": "plain_text", "text": md.clip_plain(_("Reset sessions"), 30)},
            "deny": {"type": "plain_text", "text": md.clip_plain(_("Cancel"), 30)},
        }  # fmt: skip
        value = button_value(batch)
        release = t.ngettext("Release {count} reset", "Release {count} resets", n)
        blocks.append({
            "type": "actions", "block_id": f"aer_held:{batch.id}",
            "elements": [
                md.button(RELEASE_ACTION, release.format(count=n), value,
                          style="danger", confirm=confirm),
                md.button(DISCARD_ACTION, _("Discard"), value),
            ],
        })  # fmt: skip
    else:
        who = md.user(batch.resolved_by)  # a Slack id, else shown as code (dashboard:ada)
        when = slack_date(batch.resolved_at, missing="")
        verb = _("released (sessions reset)") if batch.status == "released" else _("discarded")
        status = _("*Status:* *{verb}* by {user} {when}").format(verb=verb, user=who, when=when)
        blocks.append(md.section(status.strip()))
    blocks.append(md.context(_("Held resets #{batch_id} · since {when}").format(
        batch_id=batch.id, when=slack_date(batch.opened_at))))  # fmt: skip
    text = _("AER reset budget reached in org {org}: {resets} held ({status})").format(
        org=md.inline(batch.org, 66), resets=resets, status=batch.status)  # fmt: skip
    return md.fallback(text), blocks
