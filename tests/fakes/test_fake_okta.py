"""The fake Okta answers the way Okta documents, to any HTTP client (plain httpx here, not the
verifier): the SSWS token is checked, errors carry Okta's errorCode/errorSummary, and every answer
carries the X-Rate-Limit-* headers. Sources: developer.okta.com Management API ("User",
"UserFactor", "SystemLog") and the error-code reference (E0000011, E0000007, E0000047)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from securitybot.demo import FakeOkta
from securitybot.demo.fake_okta_records import FRAUD_EVENT


@pytest.fixture
def fo() -> Iterator[FakeOkta]:
    with FakeOkta() as fake:
        fake.enroll("alice@example.com")
        yield fake


@pytest.fixture
def okta(fo: FakeOkta) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fo.org_url, verify=ssl.create_default_context(cafile=fo.ca_path),
        headers={"Authorization": f"SSWS {fo.token}", "Accept": "application/json"},
    ) as client:  # fmt: skip
        yield client


def test_a_wrong_or_missing_token_gets_oktas_401(fo: FakeOkta, okta: httpx.Client) -> None:
    for headers in ({"Authorization": "SSWS wrong"}, {"Authorization": f"Bearer {fo.token}"}):
        resp = okta.get("/api/v1/users/alice@example.com", headers=headers)
        assert resp.status_code == 401
        assert resp.json()["errorCode"] == "E0000011"
    assert [r.token_ok for r in fo.requests] == [False, False]


def test_user_factors_verify_and_poll_have_oktas_shapes(fo: FakeOkta, okta: httpx.Client) -> None:
    user = okta.get("/api/v1/users/alice@example.com").json()
    assert user["status"] == "ACTIVE" and user["id"].startswith("00u") and len(user["id"]) == 20
    assert okta.get("/api/v1/users", params={"search": 'profile.email eq "alice@example.com"'}
                    ).json()[0]["id"] == user["id"]  # fmt: skip
    [factor] = okta.get(f"/api/v1/users/{user['id']}/factors").json()
    assert (factor["factorType"], factor["provider"], factor["status"]) == (
        "push",
        "OKTA",
        "ACTIVE",
    )
    verify = okta.post(f"/api/v1/users/{user['id']}/factors/{factor['id']}/verify", json={})
    assert verify.status_code == 201 and verify.json()["factorResult"] == "WAITING"
    poll = verify.json()["_links"]["poll"]["href"]
    assert poll.startswith(
        f"{fo.org_url}/api/v1/users/{user['id']}/factors/{factor['id']}/transactions/"
    )
    assert okta.get(poll).json()["factorResult"] == "WAITING"
    fo.answer_push(poll.rsplit("/", 1)[-1], "fraud")
    assert okta.get(poll).json()["factorResult"] == "REJECTED"
    logs = okta.get("/api/v1/logs", params={
        "since": "2000-01-01T00:00:00.000Z",
        "filter": f'eventType eq "{FRAUD_EVENT}" and actor.id eq "{user["id"]}"',
    }).json()  # fmt: skip
    assert [e["eventType"] for e in logs] == [FRAUD_EVENT]


def test_every_answer_carries_rate_limit_headers_and_429_says_e0000047(
    fo: FakeOkta, okta: httpx.Client
) -> None:
    ok = okta.get("/api/v1/users/alice@example.com")
    assert int(ok.headers["X-Rate-Limit-Remaining"]) < int(ok.headers["X-Rate-Limit-Limit"])
    assert ok.headers["X-Rate-Limit-Reset"].isdigit()
    fo.fail_all(429)
    limited = okta.get("/api/v1/users/alice@example.com")
    assert limited.status_code == 429 and limited.json()["errorCode"] == "E0000047"
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"


def test_unknown_users_factors_and_transactions_are_oktas_404(
    fo: FakeOkta, okta: httpx.Client
) -> None:
    assert okta.get("/api/v1/users/nobody@example.com").json()["errorCode"] == "E0000007"
    user = okta.get("/api/v1/users/alice@example.com").json()
    missing = okta.get(f"/api/v1/users/{user['id']}/factors/opfnope/transactions/v2mnope")
    assert missing.status_code == 404 and missing.json()["errorCode"] == "E0000007"


def test_a_suspended_user_cannot_be_challenged(fo: FakeOkta, okta: httpx.Client) -> None:
    fo.set_status("alice@example.com", "SUSPENDED")
    user = okta.get("/api/v1/users/alice@example.com").json()
    [factor] = okta.get(f"/api/v1/users/{user['id']}/factors").json()
    refused = okta.post(f"/api/v1/users/{user['id']}/factors/{factor['id']}/verify", json={})
    assert refused.status_code == 403 and fo.started_pushes() == []
