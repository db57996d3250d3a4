"""The Okta Verify verifier: Okta's documented answers mapped deliberately, its rate limits and
errors failing closed, and a push reported as "not me" read as fraud from the System Log.

Statuses are Okta's own (developer.okta.com, Management API, UserFactor "Retrieve a factor
transaction status": factorResult WAITING, SUCCESS, REJECTED, TIMEOUT).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from securitybot.config import OktaConfig
from securitybot.demo import FakeOkta
from securitybot.verify.base import PushStatus, StartResult
from securitybot.verify.okta import OktaVerifier, poll_status_from

ALICE = "alice@example.com"
BOB = "bob@example.com"


@pytest.fixture
def fo() -> Iterator[FakeOkta]:
    with FakeOkta() as fake:
        fake.enroll(ALICE)
        yield fake


def _verifier(fo: FakeOkta, **cfg: object) -> OktaVerifier:
    return OktaVerifier(OktaConfig.model_validate(
        {"org_url": fo.org_url, "api_token": fo.token, "ca_certs": fo.ca_path, **cfg}
    ))  # fmt: skip


@pytest.mark.parametrize(
    ("result", "expected"),
    [("WAITING", PushStatus.WAITING), ("SUCCESS", PushStatus.APPROVED),
     ("REJECTED", PushStatus.DENIED), ("TIMEOUT", PushStatus.TIMEOUT)],
)  # fmt: skip
def test_every_documented_factor_result_is_mapped(result: str, expected: PushStatus) -> None:
    assert poll_status_from({"factorResult": result}).status == expected


@pytest.mark.parametrize("result", ["FAILED", "ERROR", "EXPIRED", "CHALLENGE", "success", ""])
def test_other_factor_results_fail_closed_and_say_what_they_were(result: str) -> None:
    polled = poll_status_from({"factorResult": result})
    assert polled.status == PushStatus.ERROR
    assert "undocumented" in polled.detail


async def test_every_call_carries_the_ssws_token_and_nothing_else_does(fo: FakeOkta) -> None:
    started = await _verifier(fo).start_push(ALICE, {})
    assert started.result == StartResult.PUSHED
    paths = [(r.method, r.path.split("/")[-1], r.token_ok) for r in fo.requests]
    assert [p for p in paths if not p[2]] == []
    assert [p[:2] for p in paths] == [("GET", "users"), ("GET", "factors"), ("POST", "verify")]
    assert all(fo.token not in r.path and fo.token not in str(r.params) for r in fo.requests)


async def test_a_rate_limited_call_is_an_error_naming_the_limit_and_its_reset(
    fo: FakeOkta,
) -> None:
    verifier = _verifier(fo)
    txid = (await verifier.start_push(ALICE, {})).poll_handle
    assert txid
    fo.fail_all(429)
    started, polled = await verifier.start_push(ALICE, {}), await verifier.poll(txid)
    assert (started.result, polled.status) == (StartResult.ERROR, PushStatus.ERROR)
    assert "rate limit (600/min)" in started.detail and "resets at" in polled.detail


@pytest.mark.parametrize("status", ["SUSPENDED", "LOCKED_OUT", "PASSWORD_EXPIRED", "STAGED"])
async def test_only_an_active_okta_user_is_pushed(fo: FakeOkta, status: str) -> None:
    fo.set_status(ALICE, status)
    started = await _verifier(fo).start_push(ALICE, {})
    assert (started.result, started.detail) == (StartResult.DENIED, f"Okta user is {status}")
    assert not fo.started_pushes()


async def test_a_push_factor_not_yet_activated_is_not_enrolled(fo: FakeOkta) -> None:
    fo.set_factor_status(ALICE, "PENDING_ACTIVATION")
    started = await _verifier(fo).start_push(ALICE, {})
    assert started.result == StartResult.NOT_ENROLLED


async def test_two_okta_users_with_one_email_fail_closed(fo: FakeOkta) -> None:
    fo.enroll(ALICE, login="alice.admin@example.com")
    started = await _verifier(fo).start_push(ALICE, {})
    assert started.result == StartResult.ERROR
    assert "2 Okta users have this email" in started.detail


async def test_user_field_login_reads_the_user_by_login(fo: FakeOkta) -> None:
    fo.enroll("bob@corp.example.com", login="bob@example.com")
    by_login = await _verifier(fo, user_field="login").start_push("bob@example.com", {})
    by_email = await _verifier(fo).start_push("bob@example.com", {})
    assert (by_login.result, by_email.result) == (StartResult.PUSHED, StartResult.NOT_ENROLLED)


async def test_a_rejection_without_system_log_access_is_still_a_denial(fo: FakeOkta) -> None:
    fo.logs_forbidden = True
    verifier = _verifier(fo)
    txid = (await verifier.start_push(ALICE, {})).poll_handle
    assert txid
    fo.answer_push(txid, "fraud")
    assert (await verifier.poll(txid)).status == PushStatus.DENIED


async def test_a_fraud_report_by_someone_else_does_not_make_alices_rejection_fraud(
    fo: FakeOkta,
) -> None:
    fo.enroll("bob@example.com")
    verifier = _verifier(fo)
    alice, bob = [(await verifier.start_push(u, {})).poll_handle for u in (ALICE, BOB)]
    assert alice and bob
    fo.answer_push(bob, "fraud")
    fo.answer_push(alice, "deny")
    assert (await verifier.poll(alice)).status == PushStatus.DENIED
    assert (await verifier.poll(bob)).status == PushStatus.FRAUD


async def test_a_poll_handle_off_the_org_is_an_error_and_never_requested(fo: FakeOkta) -> None:
    verifier = _verifier(fo)
    tx = "/api/v1/users/00u1/factors/opf1/transactions/v2mst.x"
    for handle in (
        "../../../logs",
        "00u1/opf1/v2m1",
        f"http://localhost:{fo.port}{tx}",
        f"https://evil.example{tx}",
        f"https://u:p@localhost:{fo.port}{tx}",
    ):
        assert (await verifier.poll(handle)).status == PushStatus.ERROR, handle
    assert fo.requests == []


async def test_after_close_nothing_new_reaches_okta(fo: FakeOkta) -> None:
    verifier = _verifier(fo)
    txid = (await verifier.start_push(ALICE, {})).poll_handle
    assert txid
    verifier.close()
    seen = len(fo.requests)
    assert (await verifier.poll(txid)).status == PushStatus.WAITING
    with pytest.raises(RuntimeError):
        await verifier.start_push(ALICE, {})
    assert len(fo.requests) == seen
