"""The security channel's message about resets held past an org's reset budget (pure)."""

from __future__ import annotations

from typing import Any

from securitybot.config import AerResetBudget
from securitybot.slack import mrkdwn as md
from securitybot.slack.dates import slack_date
from securitybot.store.aer_budget_models import AerHeldBatch

RELEASE_ACTION = "aer_held_release"
DISCARD_ACTION = "aer_held_discard"
_SHOWN_USERS = 25


def button_value(batch: AerHeldBatch) -> str:
    """``<batch id>:<resets shown>``: a click decides on what the clicker saw, not on more."""
    return f"{batch.id}:{batch.resets}"


def _users(users: list[str]) -> str:
    shown = ", ".join(md.user(u) for u in users[:_SHOWN_USERS])
    more = len(users) - _SHOWN_USERS
    return shown + (f" and {more} more" if more > 0 else "")


def held_message(
    batch: AerHeldBatch, users: list[str], mention: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks): how many resets are held, for whom, and what to do."""
    from securitybot.aer.budget import describe

    budget = describe(AerResetBudget(count=batch.budget_count, per=batch.budget_per))
    n = batch.resets
    resets = f"{n} automatic session reset{'s' if n != 1 else ''}"
    org = md.code(batch.org, 66)
    head = (
        f"{mention + ' ' if mention else ''}:octagonal_sign: *AER reset budget reached* in org "
        f"{org} ({budget}): *{resets} held*"
        + (f" ({batch.anomalies} anomalies)" if batch.anomalies != n else "")
        + f".\n*Held:* {_users(users)}"
    )
    blocks: list[dict[str, Any]] = [md.section(head)]
    if batch.status == "open":
        blocks.append(
            md.context("Nobody was signed out for these. Release to reset their sessions now, "
                       "or discard if this looks like a flood of false or forged events.")
        )  # fmt: skip
        confirm = {
            "title": {"type": "plain_text", "text": "Release held resets?"},
            "text": {"type": "mrkdwn",
                     "text": md.fallback(f"This signs out {resets.replace('automatic ', '')}: "
                                         "all of their Slack sessions are reset.")},
            "confirm": {"type": "plain_text", "text": "Reset sessions"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }  # fmt: skip
        value = button_value(batch)
        blocks.append({
            "type": "actions", "block_id": f"aer_held:{batch.id}",
            "elements": [
                md.button(RELEASE_ACTION, f"Release {n} reset{'s' if n != 1 else ''}", value,
                          style="danger", confirm=confirm),
                md.button(DISCARD_ACTION, "Discard", value),
            ],
        })  # fmt: skip
    else:
        who = md.user(batch.resolved_by)  # a Slack id, else shown as code (dashboard:ada)
        when = slack_date(batch.resolved_at, missing="")
        verb = "released (sessions reset)" if batch.status == "released" else "discarded"
        status = f"*{verb}* by {who} {when}".rstrip()
        blocks.append(md.section(f"*Status:* {status}"))
    blocks.append(md.context(f"Held resets #{batch.id} · since {slack_date(batch.opened_at)}"))
    text = f"AER reset budget reached in org {batch.org}: {resets} held ({batch.status})"
    return md.fallback(text), blocks
