"""Storms as a held group (``held_groups``): deciding on a storm in one transaction, the
refusals it audits, and the Slack buttons (``held_group_buttons``) that release, discard or
escalate it all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from sqlalchemy.orm import Session

from securitybot.held_groups import HeldGroup
from securitybot.i18n import ENGLISH, N_, Translator
from securitybot.slack import held_group_buttons
from securitybot.slack.triage import Responders
from securitybot.store.alerts import audit
from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.storm_models import Storm
from securitybot.storms import decide as storms
from securitybot.storms.guard import held_users, queue_update
from securitybot.storms.message import ACTIONS

SELF_REFUSAL = N_(
    "This storm holds an alert about you; another responder must decide. This was logged."
)


def audit_refusal(db: Database, storm_id: int, actor: str, reason: str, what: str) -> None:
    with db.write() as session:
        audit(session, action="triage.refused", actor=actor,
              details={"reason": reason, "action": what, "storm": storm_id})  # fmt: skip


def refresh(db: Database, storm_id: int) -> None:
    """Make sure an update of the message is queued (a click saw an older count)."""
    with db.write() as session:
        storm = session.get(Storm, storm_id)
        if storm is not None:
            queue_update(session, storm.id, storm.version)


def decide(
    db: Database, storm_id: int, *, action: str, actor: str, via: dict[str, Any],
    shown: int | None,
) -> storms.Resolved:  # fmt: skip
    """Decide in one transaction (rolled back if :func:`storms.resolve` refuses)."""
    with db.read() as session:
        key = storms.key_of(session, storm_id)
    if key is None:
        raise storms.NotFound(str(storm_id))
    with db.write() as session:
        return storms.resolve(session, storm_id, key, action=action, actor=actor, via=via,
                              now=utcnow(), shown=shown)  # fmt: skip


def _public(session: Session, storm_id: int) -> dict[str, Any]:
    storm = session.get(Storm, storm_id)
    assert storm is not None
    return storms.to_public(storm, held_users(session, storm_id), utcnow())


def _listing(session: Session, include_all: bool, limit: int) -> list[dict[str, Any]]:
    rows = storms.list_storms(
        session, include_all=include_all, **({"limit": limit} if limit else {})
    )
    now = utcnow()
    return [storms.to_public(s, held_users(session, s.id), now) for s in rows]


GROUP = HeldGroup(
    id_param="storm_id",
    noun="storm",
    counted="alerts",
    count_field="held",
    already="storm {id} was already {status} by {by}",
    already_here=N_("This storm was already {status} by {user}."),
    changed_here=N_(
        "{now} alerts are held now, not the {shown} this message showed. It is "
        "being updated: look again, then decide."
    ),
    self_refusal=SELF_REFUSAL,
    actions={action: f"{action}_storm" for action in storms.ACTIONS},
    decide=lambda db, storm_id, action, actor, via, shown: decide(
        db, storm_id, action=action, actor=actor, via=via, shown=shown
    ),
    refresh=refresh,
    audit_refusal=audit_refusal,
    public=_public,
    listing=_listing,
)


def register(
    app: AsyncApp, db: Database, wake: Callable[[], None], responders: Responders,
    t: Translator = ENGLISH,
) -> None:  # fmt: skip
    held_group_buttons.register(app, db, wake, responders, GROUP, ACTIONS, t)
