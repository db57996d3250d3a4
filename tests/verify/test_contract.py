"""The verifier contract: every second factor (Duo, Okta Verify), driven through its fake over
real HTTPS, gives the same answers to the same stories. Only an approved push is a "yes"; every
other state (denied, timed out, not enrolled, bypass-like, erroring) fails closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from securitybot.config import DuoConfig, OktaConfig
from securitybot.demo import FakeDuo, FakeOkta
from securitybot.verify.base import PushPoll, PushStatus, StartResult, Verifier
from securitybot.verify.duo import DuoVerifier
from securitybot.verify.okta import OktaVerifier

Fake = FakeDuo | FakeOkta


@dataclass
class Provider:
    name: str
    fake: Fake
    verifier: Verifier
    alice: str  # how the verifier names Alice (Duo: email local part; Okta: email)

    def user(self, local: str) -> str:
        return local if self.name == "duo" else f"{local}@example.com"

    async def poll_until_final(self, txid: str, timeout: float = 10.0) -> PushPoll:
        deadline = time.monotonic() + timeout
        while True:
            polled = await self.verifier.poll(txid)
            if polled.status != PushStatus.WAITING or time.monotonic() > deadline:
                return polled
            await asyncio.sleep(0.05)


def _verifier(name: str, fake: Fake, **cfg: object) -> Verifier:
    if isinstance(fake, FakeDuo):
        return DuoVerifier(DuoConfig.model_validate(
            {"ikey": fake.ikey, "skey": fake.skey, "api_host": fake.api_host,
             "ca_certs": fake.ca_path, "timeout": 5, **cfg}
        ))  # fmt: skip
    return OktaVerifier(OktaConfig.model_validate(
        {"org_url": fake.org_url, "api_token": fake.token, "ca_certs": fake.ca_path,
         "timeout": 5, **cfg}
    ))  # fmt: skip


@pytest.fixture(params=["duo", "okta"])
def provider(request: pytest.FixtureRequest) -> Iterator[Provider]:
    fake: Fake = FakeDuo() if request.param == "duo" else FakeOkta()
    with fake:
        if isinstance(fake, FakeDuo):
            fake.status_delay = 0.3  # Duo's long-poll, held briefly for the tests
        p = Provider(request.param, fake, _verifier(request.param, fake), "")
        p.alice = p.user("alice")
        fake.enroll(p.alice)
        yield p


async def _pushed(p: Provider) -> str:
    started = await p.verifier.start_push(p.alice, {"Alert": "flurb -export"})
    assert started.result == StartResult.PUSHED, started
    assert started.txid and started.poll_handle
    return started.poll_handle


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("allow", PushStatus.APPROVED), ("deny", PushStatus.DENIED),
     ("fraud", PushStatus.FRAUD), ("timeout", PushStatus.TIMEOUT)],
)  # fmt: skip
async def test_the_phones_answer_comes_back_the_same_from_every_provider(
    provider: Provider, answer: str, expected: PushStatus
) -> None:
    txid = await _pushed(provider)
    assert (await provider.verifier.poll(txid)).status == PushStatus.WAITING
    provider.fake.answer_push(txid, answer)
    assert (await provider.poll_until_final(txid)).status == expected


async def test_a_push_nobody_answers_times_out(provider: Provider) -> None:
    provider.fake.push_timeout = 0.5
    txid = await _pushed(provider)
    assert (await provider.poll_until_final(txid)).status == PushStatus.TIMEOUT


async def test_an_answer_while_a_poll_is_in_flight_is_seen(provider: Provider) -> None:
    txid = await _pushed(provider)
    await provider.verifier.poll(txid)  # Duo's first status comes at once; later ones are held
    polling = asyncio.create_task(provider.poll_until_final(txid))
    await asyncio.sleep(0.1)
    provider.fake.answer_push(txid, "allow")
    assert (await asyncio.wait_for(polling, 10)).status == PushStatus.APPROVED


async def test_unknown_users_and_users_without_a_push_device_are_not_enrolled(
    provider: Provider,
) -> None:
    unknown = await provider.verifier.start_push(provider.user("nobody"), {})
    provider.fake.enroll(provider.user("smsonly"), ["sms"])
    sms_only = await provider.verifier.start_push(provider.user("smsonly"), {})
    assert (unknown.result, sms_only.result) == (StartResult.NOT_ENROLLED,) * 2
    assert not provider.fake.started_pushes()


async def test_a_user_the_provider_refuses_is_denied_before_any_push(provider: Provider) -> None:
    # Duo: a policy denies the user; Okta: the user is suspended.
    provider.fake.set_preauth(provider.alice, "deny")
    started = await provider.verifier.start_push(provider.alice, {})
    assert started.result == StartResult.DENIED
    assert not provider.fake.started_pushes()


async def test_a_bypass_like_pass_without_the_phone_is_never_a_confirmation(
    provider: Provider,
) -> None:
    provider.fake.set_preauth(provider.alice, "allow")
    started = await provider.verifier.start_push(provider.alice, {})
    assert started.result == StartResult.NOT_ENROLLED
    assert started.txid is None


async def test_provider_errors_are_errors_never_answers(provider: Provider) -> None:
    txid = await _pushed(provider)
    provider.fake.fail_all(503)
    polled = await provider.verifier.poll(txid)
    started = await provider.verifier.start_push(provider.alice, {})
    assert (polled.status, started.result) == (PushStatus.ERROR, StartResult.ERROR)
    provider.fake.fail_all(None)
    provider.fake.answer_push(txid, "allow")
    assert (await provider.poll_until_final(txid)).status == PushStatus.APPROVED


async def test_wrong_credentials_are_an_error_not_a_denial(provider: Provider) -> None:
    wrong = (
        {"skey": "x" * 40} if provider.name == "duo" else {"api_token": "00wrong-token-000000000"}
    )
    verifier = _verifier(provider.name, provider.fake, **wrong)
    started = await verifier.start_push(provider.alice, {})
    assert started.result == StartResult.ERROR
    assert "x" * 40 not in started.detail and "00wrong" not in started.detail


async def test_closing_releases_polls_at_once_and_the_push_survives_for_the_next_process(
    provider: Provider,
) -> None:
    txid = await _pushed(provider)
    await provider.verifier.poll(txid)
    if isinstance(provider.fake, FakeDuo):
        provider.fake.status_delay = 30.0  # a poll held the way Duo holds it
    polling = asyncio.create_task(provider.verifier.poll(txid))
    await asyncio.sleep(0.2)
    provider.verifier.close()
    released = await asyncio.wait_for(polling, 2)
    assert released.status == PushStatus.WAITING
    provider.fake.answer_push(txid, "allow")
    after_restart = Provider(provider.name, provider.fake, _verifier(provider.name,
                             provider.fake), provider.alice)  # fmt: skip
    if isinstance(provider.fake, FakeDuo):
        provider.fake.status_delay = 0.3
    assert (await after_restart.poll_until_final(txid)).status == PushStatus.APPROVED


async def test_the_event_loop_keeps_running_while_the_provider_works(provider: Provider) -> None:
    """A provider call that blocked the loop would stall it for a whole held poll (0.8 s);
    a busy shared machine delays a 10 ms tick by well under the 0.5 s allowed here."""
    if isinstance(provider.fake, FakeDuo):
        provider.fake.status_delay = 0.8  # under QUICK_ANSWER: each poll returns after two
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    txid = await _pushed(provider)
    for _ in range(3):
        await provider.verifier.poll(txid)
    ticker.cancel()
    assert gaps and max(gaps) < 0.5
