"""The reset budget: at most ``aer.reset_budget.count`` automatic session resets per org in any
``per`` (a sliding window), and the resets held past it.

The count lives in SQL, not in a process: every transaction that may reset for an org first
locks that org's ``aer_reset_budgets`` row (an upsert, so on SQLite it is also the write that
takes the database's write lock), then counts the grants of the window. Replicas on the
in-process path and stream workers therefore spend one org's budget one after another, and no
request, however many users it names, can grant more than the budget.

Past the budget a reset is *held*: the user joins the org's open batch for the window (one
escalation in the security channel, updated in place as more are held) until a responder
releases the batch (every held user is reset, once) or discards it (nobody is).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session

from securitybot import held_groups
from securitybot.aer import reason as r
from securitybot.aer import store
from securitybot.aer.reason import Reason
from securitybot.aer.respond import RESET_EFFECT
from securitybot.config import AerResetBudget
from securitybot.store.aer_budget_models import (
    AerHeldBatch,
    AerHeldReset,
    AerResetGrant,
)
from securitybot.store.aer_budget_models import AerResetBudget as BudgetRow
from securitybot.store.alerts import audit
from securitybot.store.once import dialect_insert
from securitybot.store.outbox import enqueue

BUDGETS = cast(Table, BudgetRow.__table__)
GRANTS = cast(Table, AerResetGrant.__table__)
HELD = cast(Table, AerHeldReset.__table__)
BATCHES = cast(Table, AerHeldBatch.__table__)
HELD_POST_EFFECT = "aer_held_post"
HELD_UPDATE_EFFECT = "aer_held_update"
RELEASED = "aer.held_resets_released"
DISCARDED = "aer.held_resets_discarded"
OPEN = "open"


def describe_reason(cfg: AerResetBudget) -> Reason:
    """The budget as people read it, as a message: ``"3 per 1 h"`` in English (``.english()``),
    the span in unit symbols (``1 h``) in every language."""
    per = cfg.per
    if per % 86400 == 0:
        span = f"{per / 86400:g} d"
    elif per % 3600 == 0:
        span = f"{per / 3600:g} h"
    elif per % 60 == 0:
        span = f"{per / 60:g} min"
    else:
        span = f"{per:g} s"
    return Reason(r.BUDGET, {"count": cfg.count, "span": span})


class Ledger:
    """One transaction's spending of the reset budget.

    :meth:`lock` the orgs first, all at once and sorted, so two transactions over the same
    orgs cannot deadlock; :meth:`take` then counts each org's window once and spends from it.
    """

    def __init__(self, session: Session, cfg: AerResetBudget, now: datetime) -> None:
        self.session, self.cfg, self.now = session, cfg, now
        self._locked: set[str] = set()
        self._used: dict[str, int] = {}

    def lock(self, orgs: Iterable[str]) -> None:
        todo = sorted(set(orgs) - self._locked)
        if not todo:
            return
        stmt = dialect_insert(self.session, BUDGETS)
        stmt = stmt.on_conflict_do_update(
            index_elements=["org"], set_={"updated_at": stmt.excluded.updated_at}
        )
        conn = self.session.connection()
        for org in todo:  # one statement each: a multi-row upsert locks in no set order
            conn.execute(stmt, {"org": org, "updated_at": self.now})
        self._locked.update(todo)

    def take(self, org: str) -> bool:
        """Reserve one reset of ``org``'s budget; False when it is spent. Then either
        :meth:`grant` it to the recorded decision or :meth:`give_back` it."""
        if org not in self._used:
            self.lock([org])
            since = self.now - timedelta(seconds=self.cfg.per)
            self.session.execute(
                delete(AerResetGrant).where(
                    AerResetGrant.org == org, AerResetGrant.granted_at <= since
                )
            )
            used = self.session.scalar(
                select(func.count()).where(
                    AerResetGrant.org == org, AerResetGrant.granted_at > since
                )
            )
            self._used[org] = int(used or 0)
        if self._used[org] >= self.cfg.count:
            return False
        self._used[org] += 1
        return True

    def grant(self, org: str, anomaly_id: int) -> None:
        self.session.connection().execute(
            GRANTS.insert(), {"org": org, "anomaly_id": anomaly_id, "granted_at": self.now}
        )

    def give_back(self, org: str) -> None:
        """The decision was not recorded after all (an audit-log entry polled twice)."""
        self._used[org] -= 1


@dataclass
class _Holding:
    """An org's held batch as this transaction changes it (written once, in ``finish``)."""

    batch_id: int
    new: bool
    resets: int = 0
    anomalies: int = 0


class HeldResets:
    """One transaction's held resets: each joins its org's open batch for the window (or
    opens one). The caller holds the org's budget lock (:class:`Ledger`), so finding or
    opening that batch cannot race another transaction.
    """

    def __init__(self, session: Session, cfg: AerResetBudget, now: datetime) -> None:
        self.session, self.cfg, self.now = session, cfg, now
        self._orgs: dict[str, _Holding] = {}

    def _holding(self, org: str) -> _Holding:
        found = self._orgs.get(org)
        if found is not None:
            return found
        since = self.now - timedelta(seconds=self.cfg.per)
        row = self.session.execute(
            select(AerHeldBatch.id)
            .where(
                AerHeldBatch.org == org, AerHeldBatch.status == OPEN, AerHeldBatch.opened_at > since
            )
            .order_by(AerHeldBatch.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            found = _Holding(int(row[0]), False)
        else:
            values = {"org": org, "status": OPEN, "resets": 0, "anomalies": 0,
                      "budget_count": self.cfg.count, "budget_per": self.cfg.per, "version": 0,
                      "shown_version": 0, "opened_at": self.now, "last_at": self.now}  # fmt: skip
            stmt = BATCHES.insert().returning(BATCHES.c.id)
            found = _Holding(
                int(self.session.connection().execute(stmt, values).scalar_one()), True
            )
        self._orgs[org] = found
        return found

    def hold(self, payload: dict[str, Any]) -> None:
        """Hold the reset in ``payload`` (what the reset job would have carried)."""
        holding = self._holding(payload["org"])
        stmt = dialect_insert(self.session, HELD).on_conflict_do_nothing().returning(HELD.c.id)
        row = {"batch_id": holding.batch_id, "org": payload["org"], "user_id": payload["user"],
               "anomaly_id": payload["anomaly_id"], "payload": payload, "status": "held",
               "created_at": self.now}  # fmt: skip
        added = self.session.connection().execute(stmt, row).first() is not None
        holding.anomalies += 1
        holding.resets += int(added)  # a user held twice in one window is one reset

    def finish(self) -> list[dict[str, Any]]:
        """Write the batches' new counts; the outbox rows that show them (one per batch)."""
        jobs = []
        for h in self._orgs.values():
            version = self.session.connection().execute(
                update(BATCHES).where(BATCHES.c.id == h.batch_id).values(
                    resets=BATCHES.c.resets + h.resets,
                    anomalies=BATCHES.c.anomalies + h.anomalies,
                    version=BATCHES.c.version + 1, last_at=self.now,
                ).returning(BATCHES.c.version)
            ).scalar_one()  # fmt: skip
            if h.new:
                jobs.append({"effect": HELD_POST_EFFECT, "payload": {"batch_id": h.batch_id},
                             "idempotency_key": f"aer-held-post:{h.batch_id}"})  # fmt: skip
            else:
                jobs.append(update_job(h.batch_id, version))
        return jobs


def update_job(batch_id: int, version: int) -> dict[str, Any]:
    return {"effect": HELD_UPDATE_EFFECT, "payload": {"batch_id": batch_id},
            "idempotency_key": f"aer-held-update:{batch_id}:{version}"}  # fmt: skip


# --- a responder's decision ----------------------------------------------------------------


class NotFound(held_groups.NotFound):
    pass


class AlreadyResolved(held_groups.AlreadyResolved):
    def __init__(self, batch: AerHeldBatch) -> None:
        super().__init__(batch.id, batch.status, batch.resolved_by,
                         f"held resets {batch.id} were already {batch.status}")  # fmt: skip
        self.batch_id = batch.id


class Changed(held_groups.Changed):
    """More resets were held since the caller looked: it must look again before deciding."""

    def __init__(self, shown: int, now: int) -> None:
        super().__init__(shown, now, "resets")


class SelfInvolved(held_groups.SelfInvolved):
    """A responder may not decide on a batch that holds their own reset."""


@dataclass(frozen=True)
class Resolved:
    batch_id: int
    org: str
    status: str
    users: list[str]


def org_of(session: Session, batch_id: int) -> str | None:
    """The batch's org (it never changes): read before :func:`resolve`'s transaction."""
    return session.scalar(select(AerHeldBatch.org).where(AerHeldBatch.id == batch_id))


def resolve(
    session: Session, batch_id: int, org: str, *, release: bool, actor: str,
    via: dict[str, Any], now: datetime, shown: int | None = None,
) -> Resolved:  # fmt: skip
    """Release (reset every held user, each once) or discard an open batch, audited.

    The status moves with a guarded UPDATE first, so a second click, or the same click on
    another replica, finds it resolved and changes nothing. Raises :class:`NotFound`,
    :class:`AlreadyResolved`, :class:`Changed` (``shown`` is not the held count) or
    :class:`SelfInvolved`; the caller's transaction must then be rolled back.
    """
    status = "released" if release else "discarded"
    # The org's budget lock first, as holding takes it: no reset joins the batch meanwhile.
    # It is also a write, so on SQLite the transaction holds the write lock from its start.
    Ledger(session, AerResetBudget(), now).lock([org])
    guard = [BATCHES.c.id == batch_id, BATCHES.c.org == org, BATCHES.c.status == OPEN]
    if shown is not None:
        guard.append(BATCHES.c.resets == shown)
    values = {"status": status, "resolved_by": actor[:64], "resolved_at": now,
              "version": BATCHES.c.version + 1}  # fmt: skip
    moved = session.connection().execute(update(BATCHES).where(*guard).values(values)).rowcount
    batch = session.get(AerHeldBatch, batch_id, populate_existing=True)
    if batch is None:
        raise NotFound(str(batch_id))
    if not moved:
        if batch.status != OPEN:
            raise AlreadyResolved(batch)
        raise Changed(shown or 0, batch.resets)
    held = list(
        session.scalars(
            select(AerHeldReset)
            .where(AerHeldReset.batch_id == batch_id, AerHeldReset.status == "held")
            .order_by(AerHeldReset.id)
        )
    )
    users = [h.user_id for h in held]
    if actor in users:
        raise SelfInvolved(actor)
    for h in held:
        h.status = status
        store.set_response(session, h.anomaly_id, status)
        if release:
            p = released(h.payload, actor)
            store.record_reset(session, h.org, h.user_id, now, p.get("sessions") or [])
            enqueue(session, effect=RESET_EFFECT, payload=p,
                    idempotency_key=f"aer-reset:{h.anomaly_id}")  # fmt: skip
    audit(
        session, action=RELEASED if release else DISCARDED, actor=actor, org=batch.org,
        details={"held_batch": batch.id, "resets": len(users), "users": users,
                 "anomalies": batch.anomalies, **via},
        at=now,
    )  # fmt: skip
    job = update_job(batch.id, batch.version)
    enqueue(session, effect=job["effect"], payload=job["payload"],
            idempotency_key=job["idempotency_key"])  # fmt: skip
    return Resolved(batch.id, batch.org, status, users)


def released(payload: dict[str, Any], actor: str) -> dict[str, Any]:
    """A held reset's payload once ``actor`` released it: its reason says so (in English, and
    as a message where the held payload had one)."""
    out = {**payload, "reason": f"{payload['reason']}; released by {actor}"}
    why = Reason.from_json(payload.get("reason_i18n"))
    if why is not None:
        out["reason_i18n"] = Reason(r.RELEASED, {"reason": why, "actor": actor}).to_json()
    else:
        out.pop("reason_i18n", None)
    return out


def held_users(session: Session, batch_id: int) -> list[str]:
    q = select(AerHeldReset.user_id).where(AerHeldReset.batch_id == batch_id)
    return list(session.scalars(q.order_by(AerHeldReset.id)))


def list_batches(session: Session, *, include_all: bool = False, limit: int = 100) -> list[
    AerHeldBatch
]:  # fmt: skip
    q = select(AerHeldBatch).order_by(AerHeldBatch.id.desc()).limit(limit)
    if not include_all:
        q = q.where(AerHeldBatch.status == OPEN)
    return list(session.scalars(q))


def to_public(batch: AerHeldBatch, users: list[str]) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return None if v is None else v.isoformat()

    return {
        "id": batch.id, "org": batch.org, "status": batch.status, "resets": batch.resets,
        "anomalies": batch.anomalies, "users": users,
        "budget": {"count": batch.budget_count, "per_seconds": batch.budget_per},
        "opened_at": iso(batch.opened_at), "last_at": iso(batch.last_at),
        "resolved_by": batch.resolved_by, "resolved_at": iso(batch.resolved_at),
    }  # fmt: skip
