"""The DM path for a batch of new alerts: the same outcomes as one by one, in a few transactions.

These run the batch handlers (what the dispatcher's lanes call) against the real store and the
fake Slack: a burst for one person, a batch joining an older conversation, a batch mixing
every way a new alert can end, and a burst for many people, counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from securitybot.config import Settings
from securitybot.demo import FakeSlack
from securitybot.flows import conversation_batch
from securitybot.flows.conversation import ConversationHandlers
from securitybot.flows.conversation_batch import BatchConversation
from securitybot.kinds import load_kinds
from securitybot.outbox.dispatcher import Job, Outcome, Recorded, RetryAt
from securitybot.slack.gateway import SlackGateway
from securitybot.slack.tiers import Limits
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Exemption, Outbox, utcnow
from securitybot.store.suppression_models import SuppressionRule
from securitybot.verify.duo import UnconfiguredVerifier
from tests.flows.stored import new_alert, pending_jobs, stored_alert
from tests.perf.counting import counted

PEOPLE = 40


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com", first_name="Alice")
        fake.add_user("UBOB", "bob@example.com", first_name="Bob")
        for i in range(PEOPLE):
            fake.add_user(f"U{i:03d}", f"person{i:03d}@example.com")
        yield fake


def _batch(db: Database, fs: FakeSlack) -> BatchConversation:
    settings = Settings()
    # Slack's tiers scaled far up: these tests count database work, not Slack's pacing
    # (tests/slack/test_rate_tiers.py and tests/flows/test_storm_pacing.py do that).
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=Limits(scale=1000.0))  # fmt: skip
    kinds = load_kinds(settings.alerts.dir)
    handlers = ConversationHandlers(db=db, settings=settings, kinds=kinds, slack=gateway,
                                    verifier=UnconfiguredVerifier(),
                                    wake=lambda *_: None)  # fmt: skip
    return BatchConversation(handlers)


def _alerts(db: Database, ids: list[int]) -> list[Alert]:
    with db.read() as session:
        return list(session.scalars(select(Alert).where(Alert.id.in_(ids)).order_by(Alert.id)))


def _actions(db: Database, alert_id: int) -> list[str]:
    with db.read() as session:
        return list(session.scalars(
            select(AuditLog.action).where(AuditLog.alert_id == alert_id).order_by(AuditLog.id)
        ))  # fmt: skip


def _dms_to(fs: FakeSlack, channel: str) -> list[Any]:
    """Posts to the DM ``channel`` (D + user id in the fake), by its id or the user's (a
    first DM is posted to the user id; Slack opens the DM)."""
    targets = {channel, channel[1:]} if channel.startswith("D") else {channel}
    return [c for c in fs.calls_to("chat.postMessage") if c.params["channel"] in targets]


async def _run(batch: BatchConversation, db: Database) -> None:
    jobs = pending_jobs(db, "start_conversation")
    assert await batch.start_conversations(jobs) == [Recorded()] * len(jobs)
    jobs = pending_jobs(db, "send_dm")
    assert await batch.send_dms(jobs) == [Recorded()] * len(jobs)
    # Recorded with the work: nothing is left pending.
    assert pending_jobs(db, "start_conversation") == pending_jobs(db, "send_dm") == []


async def test_a_burst_for_one_person_in_one_batch_is_one_dm_that_lists_the_rest(
    db: Database, fs: FakeSlack
) -> None:
    ids = [new_alert(db, "alice@example.com", f"burst-{i}") for i in range(4)]
    await _run(_batch(db, fs), db)

    first, *rest = _alerts(db, ids)
    assert (first.status, first.user_id, first.parent_id) == ("awaiting_ack", "UALICE", None)
    assert [(a.parent_id, a.status, a.dm_ts) for a in rest] == [
        (first.id, "awaiting_ack", first.dm_ts)
    ] * 3
    assert len(_dms_to(fs, "DUALICE")) == 1
    assert _actions(db, first.id) == ["alert.user_resolved", "alert.dm_sent"]
    assert _actions(db, rest[0].id) == ["alert.grouped", "alert.dm_sent"]


async def test_a_new_alert_joins_an_open_conversation_older_than_its_batch(
    db: Database, fs: FakeSlack
) -> None:
    older = stored_alert(db, status="awaiting_ack", dm_channel="DUALICE", dm_ts="111.222",
                         respond_by=utcnow() + timedelta(minutes=10))  # fmt: skip
    joining = new_alert(db, "alice@example.com", "joining")
    bob = new_alert(db, "bob@example.com", "bob")
    await _run(_batch(db, fs), db)

    joined, dm_to_bob = _alerts(db, [joining, bob])
    assert (joined.parent_id, joined.status, joined.dm_ts) == (older, "awaiting_ack", "111.222")
    assert dm_to_bob.status == "awaiting_ack"
    assert _dms_to(fs, "DUALICE") == []  # the open DM is re-rendered, not sent again
    assert [j.alert_id for j in pending_jobs(db, "refresh_dm")] == [older]


async def test_a_mixed_batch_ends_each_alert_as_it_would_alone(db: Database, fs: FakeSlack) -> None:
    fs.add_user("UGONE", "gone@example.com", deleted=True)
    with db.write() as session:
        session.add(Exemption(user="bob@example.com", reason="service account",
                              created_by="USEC"))  # fmt: skip
    asked = new_alert(db, "alice@example.com", "asked")
    exempt = new_alert(db, "bob@example.com", "exempt")
    unknown = new_alert(db, "stranger@example.com", "unknown")
    gone = new_alert(db, "gone@example.com", "gone")
    nobody = new_alert(db, "root", "nobody")
    await _run(_batch(db, fs), db)

    got = {a.id: (a.status, a.escalation_reason) for a in _alerts(db, [asked, exempt, unknown,
                                                                        gone, nobody])}  # fmt: skip
    assert got == {
        asked: ("awaiting_ack", None),
        exempt: ("escalated", "user_exempt"),
        unknown: ("escalated", "unknown_user"),
        gone: ("escalated", "unknown_user"),
        nobody: ("escalated", "no_user"),
    }
    assert len(fs.calls_to("chat.postMessage")) == 1
    escalations = sorted(j.alert_id or 0 for j in pending_jobs(db, "post_escalation"))
    assert escalations == sorted([exempt, unknown, gone, nobody])


async def test_a_burst_for_many_people_costs_a_few_transactions_not_a_few_per_alert(
    db: Database, fs: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answers of one burst's lookups counted together however far apart a loaded
    # machine spreads them (LINGER, as in the test below).
    monkeypatch.setattr(conversation_batch, "LINGER", 2.0)
    ids = [new_alert(db, f"person{i:03d}@example.com", f"many-{i}") for i in range(PEOPLE)]
    batch = _batch(db, fs)
    starts = pending_jobs(db, "start_conversation")
    with counted(db) as seen:
        await batch.start_conversations(starts)
    sends = pending_jobs(db, "send_dm")
    with counted(db) as more:
        await batch.send_dms(sends)
    seen = {k: seen[k] + more[k] for k in seen}

    assert {a.status for a in _alerts(db, ids)} == {"awaiting_ack"}
    assert len(fs.calls_to("chat.postMessage")) == PEOPLE
    # One by one this took 4 transactions per alert (160) and 2 more per alert to record the
    # jobs' outcomes; now: read the alerts, settle them with their jobs recorded (2), then the
    # DM contexts with their marks, and the DMs sent with their jobs recorded (2), whatever the
    # batch size. Two more are allowed for the write-behind Slack people cache.
    assert seen["transactions"] <= 6, seen
    assert seen["statements"] <= 30, seen


class _Handover:
    """What the dispatcher does for jobs a handler claims itself, recorded for the test."""

    lease = timedelta(seconds=10)

    def __init__(self) -> None:
        self.adopted: list[int] = []
        self.released: list[tuple[int, Outcome]] = []

    def adopt(self, jobs: list[Job]) -> None:
        self.adopted.extend(job.id for job in jobs)

    async def release(self, jobs: list[Job], outcomes: list[Outcome]) -> None:
        self.released.extend((job.id, o) for job, o in zip(jobs, outcomes, strict=True))


async def test_the_start_of_a_burst_sends_its_dms_itself_in_three_transactions(
    db: Database, fs: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lookups answered close together are settled in one transaction (conversation_batch
    # LINGER); on a loaded machine the fake's answers can be further apart than the 50 ms
    # the service waits, which would count a transaction per answer: what is counted here is
    # the transactions of answers that come together.
    monkeypatch.setattr(conversation_batch, "LINGER", 2.0)
    ids = [new_alert(db, f"person{i:03d}@example.com", f"many-{i}") for i in range(PEOPLE)]
    batch = _batch(db, fs)
    batch.handover = handover = _Handover()
    starts = pending_jobs(db, "start_conversation")
    with counted(db) as seen:
        assert await batch.start_conversations(starts) == [Recorded()] * PEOPLE

    assert {a.status for a in _alerts(db, ids)} == {"awaiting_ack"}
    assert len(fs.calls_to("chat.postMessage")) == PEOPLE
    with db.read() as session:
        dm_jobs = session.scalars(select(Outbox).where(Outbox.effect == "send_dm")).all()
    # Each DM job was claimed once, by the batch that queued it, and recorded with the DM.
    assert {(j.status, j.claims) for j in dm_jobs} == {("done", 1)}
    assert sorted(handover.adopted) == sorted(j.id for j in dm_jobs)
    assert {type(o) for _, o in handover.released} == {Recorded}
    # Read the alerts; settle them and take their DM jobs; record the DMs sent.
    assert seen["transactions"] <= 5, seen  # two for the write-behind Slack people cache


async def test_a_dm_the_batch_took_that_slack_refuses_for_now_is_retried_by_the_lane(
    db: Database, fs: FakeSlack
) -> None:
    fs.fail_next("chat.postMessage", status=429, retry_after=5)
    alert_id = new_alert(db, "alice@example.com", "limited")
    batch = _batch(db, fs)
    batch.handover = handover = _Handover()
    await batch.start_conversations(pending_jobs(db, "start_conversation"))

    [(job_id, outcome)] = handover.released
    assert job_id == handover.adopted[0]
    assert isinstance(outcome, RetryAt)  # recorded by the dispatcher: attempts, backoff
    assert _alerts(db, [alert_id])[0].status == "new"


async def test_an_alert_grouped_under_one_a_rule_closes_gets_its_own_conversation(
    db: Database, fs: FakeSlack
) -> None:
    """Alice's build-host alert matches a maintenance rule; her other alert, which joined it
    while both were being settled, does not, and must still reach her."""
    with db.write() as session:
        session.add(SuppressionRule(kind="sensitive_command", matchers={"host": "build-*"},
                                    reason="CI image rebuild", created_by="ULEAD",
                                    expires_at=utcnow() + timedelta(hours=4)))  # fmt: skip
    hit = new_alert(db, "alice@example.com", "hit", details={"host": "build-07"})
    miss = new_alert(db, "alice@example.com", "miss", details={"host": "accountingserver01"})
    batch = _batch(db, fs)
    first, second = pending_jobs(db, "start_conversation")
    await batch.start_conversations([second])  # settled first: it joins the open first alert
    assert _alerts(db, [miss])[0].parent_id == hit
    await batch.start_conversations([first])  # the rule closes the first alert
    await _run(batch, db)  # the released alert starts its own conversation

    closed, asked = _alerts(db, [hit, miss])
    assert (closed.status, closed.outcome) == ("closed", "suppressed")
    assert (asked.status, asked.parent_id, asked.outcome) == ("awaiting_ack", None, None)
    assert "alert.ungrouped" in _actions(db, miss)
    assert len(_dms_to(fs, "DUALICE")) == 1


async def test_a_lookup_that_fails_unexpectedly_escalates_its_alert_and_the_batch_finishes(
    db: Database, fs: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """One person's lookup raises what no Slack error is (a bug in reading Slack's answer):
    the batch must not wait for it forever; the others are DMed, that alert escalates."""
    ids = [new_alert(db, f"person{i:03d}@example.com", f"odd-{i}") for i in range(3)]
    batch = _batch(db, fs)
    assert batch.h.slack is not None
    real = batch.h.slack.lookup_user

    async def lookup_user(user: str) -> Any:
        if user == "person001@example.com":
            raise KeyError("user")  # as _look_up does when a 200's body has no "user"
        return await real(user)

    batch.h.slack.lookup_user = lookup_user  # type: ignore[method-assign]
    jobs = pending_jobs(db, "start_conversation")
    outcomes = await asyncio.wait_for(batch.start_conversations(jobs), timeout=10)
    assert outcomes == [Recorded()] * 3
    await batch.send_dms(pending_jobs(db, "send_dm"))

    ok0, bad, ok2 = _alerts(db, ids)
    assert (ok0.status, ok2.status) == ("awaiting_ack", "awaiting_ack")
    assert (bad.status, bad.escalation_reason) == ("escalated", "dm_failed")
    assert [j.alert_id for j in pending_jobs(db, "post_escalation")] == [bad.id]
    assert len(fs.calls_to("chat.postMessage")) == 2
    assert "KeyError" in caplog.text  # logged with its traceback


async def test_a_lookup_that_ends_without_an_answer_escalates_instead_of_waiting(
    db: Database, fs: FakeSlack
) -> None:
    """A lookup killed by what no ``except Exception`` catches (its task cancelled) never
    answers: the batch stops waiting for it once every lookup has ended."""
    ids = [new_alert(db, f"person{i:03d}@example.com", f"cut-{i}") for i in range(3)]
    batch = _batch(db, fs)
    assert batch.h.slack is not None
    real = batch.h.slack.lookup_user

    async def lookup_user(user: str) -> Any:
        if user == "person002@example.com":
            raise asyncio.CancelledError
        return await real(user)

    batch.h.slack.lookup_user = lookup_user  # type: ignore[method-assign]
    jobs = pending_jobs(db, "start_conversation")
    assert await asyncio.wait_for(batch.start_conversations(jobs), timeout=10) == [Recorded()] * 3
    await batch.send_dms(pending_jobs(db, "send_dm"))

    ok0, ok1, cut = _alerts(db, ids)
    assert (ok0.status, ok1.status) == ("awaiting_ack", "awaiting_ack")
    assert (cut.status, cut.escalation_reason) == ("escalated", "dm_failed")
    assert len(fs.calls_to("chat.postMessage")) == 2
