"""Held resets as a held group (``held_groups``): deciding on a batch in one transaction, the
refusals it audits, and the Slack buttons (``held_group_buttons``) that release or discard it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from sqlalchemy.orm import Session

from securitybot.aer import budget
from securitybot.aer.held_message import DISCARD_ACTION, RELEASE_ACTION
from securitybot.held_groups import HeldGroup
from securitybot.i18n import ENGLISH, N_, Translator
from securitybot.slack import held_group_buttons
from securitybot.slack.triage import Responders
from securitybot.store.aer_budget_models import AerHeldBatch
from securitybot.store.alerts import audit
from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.outbox import enqueue

SELF_REFUSAL = N_(
    "These held resets include your own account; another responder must decide. This was logged."
)


def audit_refusal(db: Database, batch_id: int, actor: str, reason: str, what: str) -> None:
    with db.write() as session:
        batch = session.get(AerHeldBatch, batch_id)
        audit(
            session, action="triage.refused", actor=actor, org=batch.org if batch else None,
            details={"reason": reason, "action": what, "held_batch": batch_id},
        )  # fmt: skip


def _refresh(db: Database, batch_id: int) -> None:
    """Make sure an update of the message is queued (a click saw an older count)."""
    with db.write() as session:
        batch = session.get(AerHeldBatch, batch_id)
        if batch is not None:
            job = budget.update_job(batch.id, batch.version)
            enqueue(session, effect=job["effect"], payload=job["payload"],
                    idempotency_key=job["idempotency_key"])  # fmt: skip


def decide(
    db: Database, batch_id: int, *, release: bool, actor: str, via: dict[str, Any],
    shown: int | None,
) -> budget.Resolved:  # fmt: skip
    """Release or discard in one transaction (rolled back if :func:`budget.resolve` refuses)."""
    with db.read() as session:
        org = budget.org_of(session, batch_id)
    if org is None:
        raise budget.NotFound(str(batch_id))
    with db.write() as session:
        return budget.resolve(
            session, batch_id, org, release=release, actor=actor, via=via, now=utcnow(),
            shown=shown,
        )  # fmt: skip


def _public(session: Session, batch_id: int) -> dict[str, Any]:
    batch = session.get(AerHeldBatch, batch_id)
    assert batch is not None
    return budget.to_public(batch, budget.held_users(session, batch_id))


def _listing(session: Session, include_all: bool, limit: int) -> list[dict[str, Any]]:
    rows = budget.list_batches(
        session, include_all=include_all, **({"limit": limit} if limit else {})
    )
    return [budget.to_public(b, budget.held_users(session, b.id)) for b in rows]


GROUP = HeldGroup(
    id_param="batch_id",
    noun="held resets",
    counted="resets",
    count_field="resets",
    already="held resets {id} were already {status} by {by}",
    already_here=N_("These held resets were already {status} by {user}."),
    changed_here=N_(
        "{now} resets are held now, not the {shown} this message showed. It is "
        "being updated: look again, then decide."
    ),
    self_refusal=SELF_REFUSAL,
    actions={"release": "release_held_resets", "discard": "discard_held_resets"},
    decide=lambda db, batch_id, action, actor, via, shown: decide(
        db, batch_id, release=action == "release", actor=actor, via=via, shown=shown
    ),
    refresh=_refresh,
    audit_refusal=audit_refusal,
    public=_public,
    listing=_listing,
)


def register(
    app: AsyncApp, db: Database, wake: Callable[[], None], responders: Responders,
    t: Translator = ENGLISH,
) -> None:  # fmt: skip
    buttons = {RELEASE_ACTION: "release", DISCARD_ACTION: "discard"}
    held_group_buttons.register(app, db, wake, responders, GROUP, buttons, t)
