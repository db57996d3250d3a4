"""Duo at scale (issue #25.5): every waiting push holds its own long-poll on one pooled
asyncio client, requests are signed exactly as duo_client signs them, connections are reused,
and Duo's 429 is honoured with duo_client's backoff, shared by every request of the process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import duo_client
import pytest

from securitybot.config import DuoConfig
from securitybot.demo import FakeDuo
from securitybot.verify import duo_api
from securitybot.verify.base import PushStatus, StartResult
from securitybot.verify.duo import DuoVerifier

IKEY = "DIXXXXXXXXXXXXXXXXXX"
SKEY = "s" * 40
DATE = "Tue, 21 Aug 2012 17:29:18 -0000"


@pytest.fixture
def fd() -> Iterator[FakeDuo]:
    with FakeDuo(ikey=IKEY, skey=SKEY) as fake:
        yield fake


def _verifier(fd: FakeDuo) -> DuoVerifier:
    return DuoVerifier(DuoConfig.model_validate(
        {"ikey": IKEY, "skey": SKEY, "api_host": fd.api_host, "ca_certs": fd.ca_path,
         "timeout": 5}
    ))  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [("POST", "/auth/v2/preauth", {"username": "alice"}),
     ("POST", "/auth/v2/auth", {"factor": "push", "username": "alice", "device": "auto",
                                "async": "1", "pushinfo": "Alert=flurb+-export&Host=h%C3%A9",
                                "type": "Securitybot"}),
     ("GET", "/auth/v2/auth_status", {"txid": "45f7c92b-f45f-4862-8545-e0f58e78075a"}),
     ("GET", "/auth/v2/check", {})],
)  # fmt: skip
def test_requests_are_signed_and_built_exactly_as_duo_client_builds_them(
    method: str, path: str, params: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: dict[str, Any] = {}

    def capture(self: Any, method: str, uri: str, body: Any, headers: Any) -> tuple[Any, Any]:
        sent.update(uri=uri, body=body, headers=headers)
        return None, None

    monkeypatch.setattr(duo_client.client.email.utils, "formatdate", lambda: DATE)
    monkeypatch.setattr(duo_client.client.Client, "_make_request", capture)
    duo_client.Auth(ikey=IKEY, skey=SKEY, host="api-xxxxxxxx.duosecurity.com").api_call(
        method, path, dict(params)
    )
    uri, headers, body = duo_api.signed_request(
        IKEY, SKEY, "api-xxxxxxxx.duosecurity.com", method, path, params, date=DATE
    )
    theirs = {k.decode(): v.decode() for k, v in sent["headers"].items()}
    theirs.pop("User-Agent", None)
    assert (uri, headers, body) == (sent["uri"], theirs,
                                    sent["body"].encode() if sent["body"] else None)  # fmt: skip


async def test_every_waiting_push_is_held_and_the_last_approval_is_seen_at_once(
    fd: FakeDuo,
) -> None:
    """Far more pushes waiting than the 32 long-poll slots of old: the last one's approval
    comes back at once, not when a slot frees (up to a minute later)."""
    users = [f"user{i}" for i in range(60)]
    for user in users:
        fd.enroll(user)
    verifier = _verifier(fd)
    started = await asyncio.gather(*(verifier.start_push(u, {"Alert": "x"}) for u in users))
    assert all(s.result == StartResult.PUSHED and s.txid for s in started)
    txids = [str(s.txid) for s in started]
    # Each poll reads its push's first status ("pushed", at once), then is held by Duo.
    held = [asyncio.create_task(verifier.poll(t)) for t in txids]
    await asyncio.sleep(0.5)
    assert not any(task.done() for task in held)  # all 60 held in Duo's long-poll
    approved_at = time.monotonic()
    fd.answer_push(txids[-1], "allow")
    last = await asyncio.wait_for(held[-1], timeout=5)
    took = time.monotonic() - approved_at
    verifier.close()
    others = await asyncio.wait_for(asyncio.gather(*held[:-1]), timeout=5)
    # Seen as Duo answers it (bench/duo.py measures the 1 s p99 target; a shared test machine
    # gets some slack here), not when a long-poll slot frees, up to a minute later.
    assert last.status == PushStatus.APPROVED and took < 3.0
    assert {p.status for p in others} == {PushStatus.WAITING}  # released by close()
    # Connections are reused: one per held poll and a few more, not one per call (240).
    assert fd.connections <= 60 + 32


async def test_sequential_calls_reuse_their_connections(fd: FakeDuo) -> None:
    fd.enroll("alice")
    verifier = _verifier(fd)
    for _ in range(5):
        started = await verifier.start_push("alice", {"Alert": "x"})
        assert started.txid
        fd.answer_push(started.txid, "deny")
        assert (await verifier.poll(started.txid)).status == PushStatus.DENIED
    verifier.close()
    # duo_client made a TLS connection per call (15); a push's calls share a pool (its user's
    # for preauth and auth, its txid's for polls), and each pool keeps its connection.
    assert len(fd.requests) == 15 and fd.connections <= 6


async def test_a_429_is_backed_off_by_every_request_and_then_answered(
    fd: FakeDuo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duo_api, "BACKOFF_FIRST", 0.2)
    monkeypatch.setattr(duo_api.random, "uniform", lambda a, b: 0.0)
    fd.enroll("alice")
    fd.enroll("bob")
    verifier = _verifier(fd)
    fd.fail_all(429)
    asyncio.get_running_loop().call_later(0.5, fd.fail_all, None)
    began = time.monotonic()
    alice, bob = await asyncio.gather(verifier.start_push("alice", {}),
                                      verifier.start_push("bob", {}))  # fmt: skip
    verifier.close()
    assert (alice.result, bob.result) == (StartResult.PUSHED, StartResult.PUSHED)
    refused = [r.at - began for r in fd.requests if r.status == 429]
    # 0.2 s, then 0.4 s: the two pushes waited together, not one storm each.
    assert 2 <= len(refused) <= 4
    assert time.monotonic() - began >= 0.5


async def test_a_429_that_lasts_gives_up_as_duo_client_does(
    fd: FakeDuo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duo_api, "BACKOFF_FIRST", 0.01)
    monkeypatch.setattr(duo_api, "BACKOFF_MAX", 0.04)
    fd.enroll("alice")
    verifier = _verifier(fd)
    fd.fail_all(429)
    started = await verifier.start_push("alice", {})
    verifier.close()
    assert started.result == StartResult.ERROR and "429" in started.detail
    assert len(fd.requests) == 4  # 0.01, 0.02, 0.04 s apart, then the 429 stands
