"""Contract tests: the Okta verifier against Okta's own documented answers, replayed verbatim
(``securitybot.demo.okta_examples`` names each source: the Factors API page's "Issue a Push
Factor challenge" and "Poll for verify transaction completion" examples, okta-sdk-dotnet's
dotted-id fixture, okta-auth-js's 429 E0000047 fixture, the Rate Limits page's headers).

Each test answers the verifier's requests from those texts only, on Okta's documented host
placeholder filled with the configured org, and checks what the verifier asked and made of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from securitybot.config import OktaConfig
from securitybot.demo import okta_examples as documented
from securitybot.verify.base import PushStatus, StartResult
from securitybot.verify.okta import OktaVerifier

ORG = "https://example.okta.com"
HOST = "example.okta.com"
ALICE = "alice@example.com"
USER = {"id": documented.USER_ID, "status": "ACTIVE", "profile": {"email": ALICE}}
FACTOR = {"id": documented.FACTOR_ID, "factorType": "push", "provider": "OKTA",
          "status": "ACTIVE"}  # fmt: skip
Reply = tuple[int, str, dict[str, str]]


def _example(text: str, **ids: str) -> str:
    return json.dumps(documented.render(text, HOST, **ids))


class Replay:
    """Answers the verifier from a script of (method, url) -> documented answer."""

    def __init__(self, verify: Reply, polls: dict[str, list[Reply]]) -> None:
        self.verify = verify
        self.polls = polls
        self.seen: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.seen.append((request.method, url))
        assert request.headers["Authorization"] == "SSWS 00documented-token"
        path = request.url.path
        if request.method == "GET" and path == "/api/v1/users":
            return httpx.Response(200, json=[USER])
        if request.method == "GET" and path.endswith("/factors"):
            return httpx.Response(200, json=[FACTOR])
        if request.method == "POST" and path.endswith("/verify"):
            status, body, headers = self.verify
            return httpx.Response(status, text=body, headers=headers)
        if request.method == "GET" and url in self.polls and self.polls[url]:
            status, body, headers = self.polls[url].pop(0)
            return httpx.Response(status, text=body, headers=headers)
        if request.method == "GET" and path == "/api/v1/logs":
            return httpx.Response(200, json=[])
        return httpx.Response(404, text="{}")

    def verifies(self) -> int:
        return sum(1 for method, url in self.seen if method == "POST" and url.endswith("/verify"))


def _verifier(replay: Callable[[httpx.Request], httpx.Response]) -> OktaVerifier:
    verifier = OktaVerifier(
        OktaConfig.model_validate({"org_url": ORG, "api_token": "00documented-token"})
    )
    # The verifier's own client, on a transport that replays the documented answers.
    verifier._client = httpx.AsyncClient(base_url=ORG, transport=httpx.MockTransport(replay))
    return verifier


def _poll_link(transaction_id: str) -> str:
    return (f"{ORG}/api/v1/users/{documented.USER_ID}/factors/{documented.FACTOR_ID}"
            f"/transactions/{transaction_id}")  # fmt: skip


@pytest.mark.parametrize(
    ("verify_example", "transaction_id"),
    [
        # The Factors API page's example as it stands (poll and cancel: mst1eiHghhPxf0yhp0g).
        (documented.VERIFY_PUSH_WAITING, None),
        # The .NET SDK fixture as it stands: poll link ".../verificationTransactionId".
        (documented.SDK_VERIFY_PUSH_WAITING, None),
        # Real orgs' ids: the page's example naming the SDK fixture's dotted transaction.
        (documented.VERIFY_PUSH_WAITING, documented.DOTTED_TRANSACTION_ID),
        # Dotted, with "-" as base64url has it (a captured oktapreview id).
        (documented.VERIFY_PUSH_WAITING, "v2mst.WmiSGGkvQc6P-QUQ5Qy0jg"),
    ],
)
@pytest.mark.parametrize(
    ("poll_example", "expected"),
    [(documented.POLL_SUCCESS, PushStatus.APPROVED),
     (documented.POLL_REJECTED, PushStatus.DENIED),
     (documented.POLL_TIMEOUT, PushStatus.TIMEOUT)],
)  # fmt: skip
async def test_the_documented_push_is_polled_on_its_own_poll_link_to_its_own_outcome(
    verify_example: str, transaction_id: str | None, poll_example: str, expected: PushStatus
) -> None:
    verify_body = _example(verify_example, **({"transaction_id": transaction_id}
                                              if transaction_id else {}))  # fmt: skip
    link = json.loads(verify_body)["_links"]["poll"]["href"]
    waiting = (200, _example(documented.POLL_WAITING, transaction_id=link.rsplit("/", 1)[1]), {})
    replay = Replay((200, verify_body, {}), {link: [waiting, (200, _example(poll_example), {})]})
    verifier = _verifier(replay)

    started = await verifier.start_push(ALICE, {})
    assert (started.result, started.handle) == (StartResult.PUSHED, link), started.detail
    assert started.txid == link.rsplit("/", 1)[1]  # the id as Okta wrote it, dots and all
    assert (await verifier.poll(started.poll_handle or "")).status == PushStatus.WAITING
    assert (await verifier.poll(started.poll_handle or "")).status == expected
    polled = [url for method, url in replay.seen if method == "GET" and "/transactions/" in url]
    assert polled == [link, link]  # exactly the link Okta gave, never one we built
    assert replay.verifies() == 1


async def test_the_documented_rate_limit_answer_is_an_error_naming_the_limit_and_reset() -> None:
    headers = {**documented.RATE_LIMIT_HEADERS, "X-Rate-Limit-Remaining": "0"}
    link = _poll_link(documented.DOTTED_TRANSACTION_ID)
    verify = (200, _example(documented.VERIFY_PUSH_WAITING,
                            transaction_id=documented.DOTTED_TRANSACTION_ID), {})  # fmt: skip
    replay = Replay(verify, {link: [(429, documented.RATE_LIMITED, headers)]})
    verifier = _verifier(replay)
    started = await verifier.start_push(ALICE, {})
    polled = await verifier.poll(started.poll_handle or "")
    assert polled.status == PushStatus.ERROR
    assert polled.detail == "poll: Okta rate limit (10000/min) reached, resets at 20:33:16Z"


async def test_a_rate_limited_verify_is_one_push_attempt_and_never_retried_into_another() -> None:
    replay = Replay((429, documented.RATE_LIMITED, documented.RATE_LIMIT_HEADERS), {})
    started = await _verifier(replay).start_push(ALICE, {})
    assert (started.result, started.sent) == (StartResult.ERROR, True)
    assert "Okta rate limit (10000/min)" in started.detail
    assert replay.verifies() == 1


@pytest.mark.parametrize(
    ("org", "reason"),
    [("http://example.okta.com", "not https"),
     ("https://evil.example", "not on okta.org_url"),
     ("https://example.okta.com:8443", "not on okta.org_url"),
     ("https://user:pw@example.okta.com", "not on okta.org_url")],
)  # fmt: skip
async def test_a_poll_link_off_the_configured_org_is_refused_and_the_token_stays_home(
    org: str, reason: str
) -> None:
    body = _example(documented.VERIFY_PUSH_WAITING).replace(ORG, org)
    replay = Replay((200, body, {}), {})
    started = await _verifier(replay).start_push(ALICE, {})
    assert (started.result, started.detail) == (StartResult.ERROR, f"verify: poll link {reason}")
    assert started.sent  # Okta did push: the caller must not push again
    assert not any(org in url for _, url in replay.seen)


async def test_the_documented_error_object_is_read_for_its_code_and_summary() -> None:
    replay = Replay((403, documented.INVALID_PASSCODE, {}), {})
    started = await _verifier(replay).start_push(ALICE, {})
    assert started.detail == "verify: Okta HTTP 403: E0000068 Invalid Passcode/Answer"
