"""The Slack fake refuses over-limit or malformed Block Kit the way Slack does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from securitybot.demo import FakeSlack


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com", "alice", "Alice Liddell")
        fake.add_channel("CSEC")
        yield fake


@pytest.fixture
def client(fs: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fs.base_url)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as exc:
        call()
    data: dict[str, Any] = exc.value.response.data  # type: ignore[assignment]
    return data


def test_a_context_element_over_3000_characters_is_invalid_blocks(client: WebClient) -> None:
    blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": "h" * 5000}]}]
    data = refused(lambda: client.chat_postMessage(channel="CSEC", text="x", blocks=blocks))
    assert data["error"] == "invalid_blocks"
    assert "[json-pointer:/blocks/0/elements/0/text]" in data["response_metadata"]["messages"][0]


@pytest.mark.parametrize(
    "blocks",
    [
        [section("s" * 3001)],
        [section("")],
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        [{"type": "header", "text": {"type": "mrkdwn", "text": "bold"}}],
        [section("one")] * 51,
        [{"type": "actions", "elements": [{"type": "button", "action_id": "a", "value": "v" * 2001,
                                           "text": {"type": "plain_text", "text": "ok"}}]}],
        [{"type": "actions", "elements": [{"type": "button", "action_id": "a", "value": "1",
                                           "text": {"type": "plain_text", "text": "b" * 76}}]}],
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        [{"type": "bogus"}],
    ],
)  # fmt: skip
def test_over_limit_blocks_are_refused_everywhere(
    fs: FakeSlack, client: WebClient, blocks: list[dict[str, Any]]
) -> None:
    ts = client.chat_postMessage(channel="CSEC", text="ok")["ts"]
    calls = [
        lambda: client.chat_postMessage(channel="CSEC", text="x", blocks=blocks),
        lambda: client.chat_update(channel="CSEC", ts=ts, text="x", blocks=blocks),
        lambda: client.chat_postEphemeral(channel="CSEC", user="UALICE", text="x",
                                          blocks=blocks),
    ]  # fmt: skip
    for call in calls:
        assert refused(call)["error"] == "invalid_blocks"
    assert [m["text"] for m in fs.messages("CSEC")] == ["ok"]  # nothing posted or changed


def test_limits_are_inclusive(client: WebClient) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("s" * 3000),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3000}] * 10},
    ]
    assert client.chat_postMessage(channel="CSEC", text="x", blocks=blocks)["ok"]


def test_views_refuse_over_limit_views(fs: FakeSlack, client: WebClient) -> None:
    long_title = {"type": "modal", "title": {"type": "plain_text", "text": "t" * 25},
                  "blocks": [section("ok")]}  # fmt: skip
    too_many = {"type": "modal", "title": {"type": "plain_text", "text": "ok"},
                "blocks": [section("b")] * 101}  # fmt: skip
    for view in (long_title, too_many):
        assert refused(lambda v=view: client.views_open(trigger_id="1.2", view=v))["error"] == (
            "invalid_arguments"
        )
        assert refused(lambda v=view: client.views_publish(user_id="UALICE", view=v))["error"] == (
            "invalid_arguments"
        )
    good = {"type": "modal", "title": {"type": "plain_text", "text": "Resolve"},
            "blocks": [section("b")] * 100}  # fmt: skip
    view_id = client.views_open(trigger_id="1.2", view=good)["view"]["id"]
    data = refused(lambda: client.views_update(view_id=view_id, view=long_title))
    assert data["error"] == "invalid_arguments"
    assert "[json-pointer:/view/title/text]" in data["response_metadata"]["messages"][0]
