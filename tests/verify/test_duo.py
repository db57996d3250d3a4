"""The Duo verifier: Duo's documented answers mapped deliberately, and its long-poll survived.

The status table is Duo's own (https://duo.com/docs/authapi, "/auth_status"): ``result`` is
the decision, ``status`` the reason. Only an approved push counts as proof.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from securitybot.config import DuoConfig
from securitybot.demo import FakeDuo
from securitybot.verify.base import PushStatus, StartResult
from securitybot.verify.duo import DUO_PUSH_HOLD, DuoVerifier, push_poll_from

IKEY = "DIXXXXXXXXXXXXXXXXXX"
SKEY = "s" * 40

DOCUMENTED = [
    # (result, status) -> what we make of it
    ("waiting", "pushed", PushStatus.WAITING),
    ("waiting", "push_failed", PushStatus.WAITING),  # the user can still open Duo Mobile
    ("waiting", "calling", PushStatus.WAITING),
    ("waiting", "answered", PushStatus.WAITING),
    ("allow", "allow", PushStatus.APPROVED),
    ("allow", "bypass", PushStatus.BYPASS),
    ("deny", "deny", PushStatus.DENIED),
    ("deny", "fraud", PushStatus.FRAUD),
    ("deny", "locked_out", PushStatus.DENIED),
    ("deny", "sent", PushStatus.DENIED),
    ("deny", "timeout", PushStatus.TIMEOUT),
    ("waiting", "timeout", PushStatus.TIMEOUT),  # some references list timeout under waiting
]


@pytest.mark.parametrize(("result", "status", "expected"), DOCUMENTED)
def test_every_documented_auth_status_answer_is_mapped(
    result: str, status: str, expected: PushStatus
) -> None:
    polled = push_poll_from({"result": result, "status": status, "status_msg": "from Duo"})
    assert polled.status == expected


def test_only_allow_allow_is_an_approval() -> None:
    approvals = [
        (r, s)
        for r in ("allow", "deny", "waiting", "", "ALLOW")
        for s in ("allow", "bypass", "deny", "fraud", "pushed", "timeout", "", "approved")
        if push_poll_from({"result": r, "status": s}).status == PushStatus.APPROVED
    ]
    assert approvals == [("allow", "allow")]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"result": "allow", "status": "trusted_device"}, PushStatus.ERROR),
        ({"result": "waiting", "status": "pushed_to_watch"}, PushStatus.ERROR),
        ({"result": "deny", "status": "blocked_by_policy"}, PushStatus.DENIED),
        ({"result": "maybe", "status": "allow"}, PushStatus.ERROR),
        ({}, PushStatus.ERROR),
    ],
    ids=["allow-unknown-status", "waiting-unknown-status", "deny-unknown-status",
         "unknown-result", "empty"],
)  # fmt: skip
def test_undocumented_answers_fail_closed_and_say_what_they_were(
    reply: dict[str, str], expected: PushStatus
) -> None:
    polled = push_poll_from(reply)
    assert polled.status == expected
    assert "undocumented" in polled.detail


def test_details_carry_duos_reason_for_the_timeline() -> None:
    locked = push_poll_from(
        {"result": "deny", "status": "locked_out", "status_msg": "Your account is disabled"}
    )
    assert locked.detail == "locked_out: Your account is disabled"
    assert "fraud" in push_poll_from({"result": "deny", "status": "fraud"}).detail


# -- against the fake Duo, through duo_client and TLS ------------------------------------------


@pytest.fixture
def fd() -> Iterator[FakeDuo]:
    with FakeDuo(ikey=IKEY, skey=SKEY) as fake:
        fake.enroll("alice")
        yield fake


def verifier(fd: FakeDuo, timeout: float = 0.3, **kw: int) -> DuoVerifier:
    cfg = DuoConfig.model_validate(
        {"ikey": IKEY, "skey": SKEY, "api_host": fd.api_host, "ca_certs": fd.ca_path,
         "timeout": timeout}
    )  # fmt: skip
    return DuoVerifier(cfg, **kw)


def test_the_long_poll_gets_its_own_timeout_beyond_duos_hold(fd: FakeDuo) -> None:
    v = verifier(fd, timeout=10)
    assert v.poll_timeout > DUO_PUSH_HOLD >= 60
    v.close()


def test_a_push_approved_after_the_request_timeout_is_an_approval(fd: FakeDuo) -> None:
    fd.status_delay = 5.0  # Duo holds auth_status until the phone answers

    async def scenario() -> tuple[PushStatus, float, list[str]]:
        v = verifier(fd, timeout=0.3)
        started = await v.start_push("alice", {"Alert": "test"})
        assert started.result == StartResult.PUSHED and started.txid
        threading.Timer(1.0, fd.answer_push, (started.txid, "allow")).start()
        held_from = time.monotonic()
        # The push's first status comes back at once; the poll asks again at once, and that
        # call is held past the 0.3 s request timeout until the phone answers.
        polled = await v.poll(started.txid)
        v.close()
        calls = [r.path for r in fd.requests if r.path.endswith("auth_status")]
        return polled.status, time.monotonic() - held_from, calls

    status, held, calls = asyncio.run(scenario())
    assert status == PushStatus.APPROVED
    assert held >= 0.9  # it really was held across the answer, not re-polled
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("fraud", PushStatus.FRAUD), ("bypass", PushStatus.BYPASS),
     ("locked_out", PushStatus.DENIED), ("deny", PushStatus.DENIED)],
)  # fmt: skip
def test_final_answers_from_the_fake_are_mapped(
    fd: FakeDuo, answer: str, expected: PushStatus
) -> None:
    async def scenario() -> PushStatus:
        v = verifier(fd)
        started = await v.start_push("alice", {"Alert": "test"})
        assert started.txid
        fd.answer_push(started.txid, answer)
        polled = await v.poll(started.txid)
        v.close()
        return polled.status

    assert asyncio.run(scenario()) == expected


def test_long_polls_beyond_the_limit_say_waiting_without_queueing(fd: FakeDuo) -> None:
    fd.status_delay = 30.0

    async def scenario() -> tuple[str, list[PushStatus]]:
        v = verifier(fd, max_polls=2)
        txids = []
        for _ in range(3):
            started = await v.start_push("alice", {"Alert": "test"})
            assert started.txid
            txids.append(started.txid)
        held = [asyncio.create_task(v.poll(t)) for t in txids[:2]]
        await asyncio.sleep(0.3)
        extra = await asyncio.wait_for(v.poll(txids[2]), timeout=5)
        v.close()  # releases the two held polls at once
        done = await asyncio.wait_for(asyncio.gather(*held), timeout=5)
        return extra.detail, [p.status for p in done]

    detail, released = asyncio.run(scenario())
    assert "busy" in detail
    assert released == [PushStatus.WAITING, PushStatus.WAITING]


def test_duo_error_responses_are_errors_not_denials(fd: FakeDuo) -> None:
    async def scenario() -> tuple[str, str]:
        v = verifier(fd)
        started = await v.start_push("alice", {"Alert": "test"})
        assert started.txid
        fd.fail_all(503)
        outage = await v.poll(started.txid)
        fd.fail_all(None)
        unknown = await v.poll("no-such-txid")
        v.close()
        assert outage.status == unknown.status == PushStatus.ERROR
        return outage.detail, unknown.detail

    outage, unknown = asyncio.run(scenario())
    assert "503" in outage
    assert "400" in unknown and "txid" in unknown
