"""The Slack fake and the signing helpers, exercised only through the real Slack libraries."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.audit_logs import AuditLogsClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.demo import (
    AUDIT_LOGS,
    RESPONSE_URL,
    Call,
    FakeSlack,
    block_action_body,
    message_event_body,
    sign,
    view_submission_body,
)
from securitybot.demo.slack_event_bodies import message_changed_body, message_deleted_body
from securitybot.demo.slack_signing import retry_headers

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    before = threading.active_count()
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com", "alice", "Alice Liddell", tz="Europe/London")
        fake.add_user("UOWNER", "owner@example.com", is_primary_owner=True)
        fake.add_user("UROBOT", "robot@example.com", is_bot=True)
        fake.add_user("UGONE", "gone@example.com", deleted=True)
        fake.add_channel("CSEC")
        yield fake
    # Every server and handler thread must be gone once the fake is stopped.
    assert threading.active_count() == before


@pytest.fixture
def client(fs: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fs.base_url)


def error_of(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(exc.value.response["error"])


def test_auth_test_and_token_checks(fs: FakeSlack, client: WebClient) -> None:
    assert client.auth_test()["user_id"] == "UBOT"
    with pytest.raises(SlackApiError) as exc:
        WebClient(base_url=fs.base_url).auth_test()
    assert error_of(exc) == "not_authed"
    with pytest.raises(SlackApiError) as exc:
        WebClient(token="xoxb-invalid", base_url=fs.base_url).auth_test()
    assert error_of(exc) == "invalid_auth"
    assert fs.calls_to("auth.test")[0].headers["Authorization"] == "Bearer xoxb-test"


def test_users(client: WebClient) -> None:
    user = client.users_info(user="UALICE")["user"]
    assert user["profile"]["email"] == "alice@example.com"
    assert user["profile"]["first_name"] == "Alice"
    assert user["tz"] == "Europe/London"
    assert client.users_info(user="UGONE")["user"]["deleted"] is True
    assert client.users_lookupByEmail(email="ALICE@example.com")["user"]["id"] == "UALICE"
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="UNOBODY")
    assert error_of(exc) == "user_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.users_lookupByEmail(email="nobody@example.com")
    assert error_of(exc) == "users_not_found"


def test_a_deactivated_person_is_not_found_by_email(client: WebClient) -> None:
    # docs.slack.dev/reference/methods/users.lookupByEmail: deactivated accounts are not
    # returned (users_not_found); users.info still answers them, with deleted: true.
    with pytest.raises(SlackApiError) as exc:
        client.users_lookupByEmail(email="gone@example.com")
    assert error_of(exc) == "users_not_found"
    assert client.users_info(user="UGONE")["user"]["deleted"] is True


def test_channels_exist_only_once_made_and_take_posts_only_from_members(
    fs: FakeSlack, client: WebClient
) -> None:
    with pytest.raises(SlackApiError) as exc:  # never created: Slack does not make it up
        client.chat_postMessage(channel="CNEW", text="hi")
    assert error_of(exc) == "channel_not_found"
    assert "CNEW" not in fs.channels

    fs.add_channel("COUTSIDE", bot_member=False)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="COUTSIDE", text="hi")
    assert error_of(exc) == "not_in_channel"
    info = client.conversations_info(channel="COUTSIDE")["channel"]
    assert info["id"] == "COUTSIDE" and info["is_member"] is False and info["is_channel"]
    fs.invite("COUTSIDE")  # /invite @Securitybot
    assert client.conversations_info(channel="COUTSIDE")["channel"]["is_member"] is True
    assert client.chat_postMessage(channel="COUTSIDE", text="hi")["ok"]
    fs.remove_from_channel("COUTSIDE")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="COUTSIDE", text="again")
    assert error_of(exc) == "not_in_channel"

    # A private channel the bot is not in does not exist for it.
    fs.add_channel("GSECRET", bot_member=False, private=True)
    for call in (
        lambda: client.chat_postMessage(channel="GSECRET", text="hi"),
        lambda: client.conversations_info(channel="GSECRET"),
        lambda: client.conversations_history(channel="GSECRET"),
    ):
        with pytest.raises(SlackApiError) as exc:
            call()
        assert error_of(exc) == "channel_not_found"
    fs.invite("GSECRET")
    assert client.conversations_info(channel="GSECRET")["channel"]["is_private"] is True


def test_dm_post_update_delete(fs: FakeSlack, client: WebClient) -> None:
    opened = client.conversations_open(users="UALICE")
    assert opened["channel"]["id"] == "DUALICE"
    assert client.conversations_open(users=["UALICE"])["already_open"] is True
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Was this you?"}}]
    first = client.chat_postMessage(channel="DUALICE", text="Was this you?", blocks=blocks)
    second = client.chat_postMessage(channel="UALICE", text="second")
    assert second["channel"] == "DUALICE"
    assert float(second["ts"]) > float(first["ts"])
    assert [m["text"] for m in fs.messages("DUALICE")] == ["Was this you?", "second"]
    assert fs.messages("DUALICE")[0]["blocks"] == blocks

    client.chat_update(channel="DUALICE", ts=first["ts"], text="Thanks", blocks=[])
    assert fs.messages("DUALICE")[0]["text"] == "Thanks"
    assert "edited" in fs.messages("DUALICE")[0]
    client.chat_delete(channel="DUALICE", ts=second["ts"])
    assert len(fs.messages("DUALICE")) == 1
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="DUALICE", ts="1.000000", text="x")
    assert error_of(exc) == "message_not_found"

    eph = client.chat_postEphemeral(channel="CSEC", user="UALICE", text="psst")
    assert eph["message_ts"]
    assert fs.ephemeral[0]["text"] == "psst"
    with pytest.raises(SlackApiError) as exc:
        client.conversations_open(users="UGONE")
    assert error_of(exc) == "user_disabled"


def test_history_is_newest_first_paged_and_shows_metadata_only_when_asked(
    client: WebClient,
) -> None:
    tag = {"event_type": "securitybot_delivery", "event_payload": {"alert_id": 7, "kind": "dm"}}
    first = client.chat_postMessage(channel="CSEC", text="one", metadata=tag)
    client.chat_postMessage(channel="CSEC", text="two")
    client.chat_postMessage(channel="CSEC", text="three")

    page = client.conversations_history(channel="CSEC", limit=2)
    assert [m["text"] for m in page["messages"]] == ["three", "two"]
    assert page["has_more"] is True
    rest = client.conversations_history(
        channel="CSEC", limit=2, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in rest["messages"]] == ["one"] and rest["has_more"] is False
    assert "metadata" not in rest["messages"][0]

    tagged = client.conversations_history(channel="CSEC", include_all_metadata=True)
    assert tagged["messages"][-1]["metadata"] == tag
    # oldest is exclusive unless inclusive=true
    after = client.conversations_history(channel="CSEC", oldest=first["ts"])
    assert [m["text"] for m in after["messages"]] == ["three", "two"]
    since = client.conversations_history(channel="CSEC", oldest=first["ts"], inclusive=True)
    assert len(since["messages"]) == 3
    with pytest.raises(SlackApiError) as exc:
        client.conversations_history(channel="nowhere")
    assert error_of(exc) == "channel_not_found"


def test_form_encoded_json_fields_are_decoded(fs: FakeSlack, client: WebClient) -> None:
    blocks = [{"type": "divider"}]
    client.api_call(
        "chat.postMessage", data={"channel": "CSEC", "text": "t", "blocks": json.dumps(blocks)}
    )
    assert fs.calls_to("chat.postMessage")[0].params["blocks"] == blocks
    assert fs.messages("CSEC")[0]["blocks"] == blocks


def test_views_usergroups_unknown(fs: FakeSlack, client: WebClient) -> None:
    why = {"type": "section", "text": {"type": "mrkdwn", "text": "Why?"}}
    view = {"type": "modal", "callback_id": "why", "title": {"type": "plain_text", "text": "x"},
            "blocks": [why]}  # fmt: skip
    opened = client.views_open(trigger_id="1.2.3", view=view)["view"]
    updated = client.views_update(view_id=opened["id"], view=dict(view, callback_id="why2"))
    assert updated["view"]["callback_id"] == "why2"
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id="V_NOPE", view=view)
    assert error_of(exc) == "not_found"

    fs.add_usergroup("SSEC", ["UALICE", "UOWNER"])
    assert client.usergroups_users_list(usergroup="SSEC")["users"] == ["UALICE", "UOWNER"]
    with pytest.raises(SlackApiError) as exc:
        client.usergroups_users_list(usergroup="SNOPE")
    assert error_of(exc) == "no_such_subteam"
    with pytest.raises(SlackApiError) as exc:
        client.api_call("nope.nothing")
    assert error_of(exc) == "unknown_method"


def test_admin_session_reset(fs: FakeSlack, client: WebClient) -> None:
    fs.admin_token = "xoxp-admin"
    admin = WebClient(token="xoxp-admin", base_url=fs.base_url)
    for token_client in (client, WebClient(token="xoxp-other", base_url=fs.base_url)):
        with pytest.raises(SlackApiError) as exc:
            token_client.admin_users_session_reset(user_id="UALICE")
        assert error_of(exc) == "not_allowed_token_type"
    assert admin.admin_users_session_reset(user_id="UALICE")["ok"]
    for user_id, error in [
        ("UOWNER", "cannot_reset_primary_owner"),
        ("UROBOT", "cannot_reset_bot"),
        ("UNOBODY", "user_not_found"),
    ]:
        with pytest.raises(SlackApiError) as exc:
            admin.admin_users_session_reset(user_id=user_id)
        assert error_of(exc) == error
    assert fs.session_resets == ["UALICE"]


def test_rate_limit_server_error_and_injected_error(fs: FakeSlack, client: WebClient) -> None:
    fs.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="CSEC", text="x")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "7"
    assert error_of(exc) == "ratelimited"

    fs.fail_next("chat.postMessage", status=500, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="CSEC", text="x")
        assert exc.value.response.status_code == 500

    fs.fail_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="CSEC", text="x")
    assert error_of(exc) == "channel_not_found"
    assert client.chat_postMessage(channel="CSEC", text="x")["ok"]
    assert [c.status for c in fs.calls_to("chat.postMessage")] == [429, 500, 500, 200, 200]
    assert len(fs.messages("CSEC")) == 1


def test_wait_for_and_on_call(fs: FakeSlack, client: WebClient) -> None:
    seen: list[Call] = []
    fs.on_call(seen.append)
    timer = threading.Timer(0.1, lambda: client.chat_postMessage(channel="CSEC", text="late"))
    timer.start()
    calls = fs.wait_for("chat.postMessage", timeout=5)
    timer.join()
    assert calls[0].params["text"] == "late"
    assert [c.method for c in seen] == ["chat.postMessage"]
    with pytest.raises(TimeoutError):
        fs.wait_for("chat.postMessage", count=2, timeout=0.1)


def test_audit_logs_pagination_filter_and_auth(fs: FakeSlack) -> None:
    fs.audit_entries = [
        {"id": str(i), "date_create": 1700000000 + i, "action": action}
        for i, action in enumerate(["user_login", "user_logout"] * 3)
    ]
    audit = AuditLogsClient(token="xoxp-admin", base_url=fs.audit_base_url)
    first = audit.logs(action="user_login", limit=2)
    assert first.status_code == 200 and first.body is not None
    assert [e["id"] for e in first.body["entries"]] == ["0", "2"]
    cursor = first.body["response_metadata"]["next_cursor"]
    rest = audit.logs(action="user_login", limit=2, cursor=cursor).body
    assert rest is not None
    assert [e["id"] for e in rest["entries"]] == ["4"]
    assert rest["response_metadata"]["next_cursor"] == ""

    bot = AuditLogsClient(token="xoxb-test", base_url=fs.audit_base_url)
    assert bot.logs().status_code == 403
    fs.fail_next(AUDIT_LOGS, status=429, retry_after=3)
    limited = audit.logs()
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"


def test_response_url_is_recorded(fs: FakeSlack) -> None:
    request = urllib.request.Request(
        fs.response_url(),
        data=json.dumps({"text": "done", "replace_original": True}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert json.loads(resp.read())["ok"] is True
    assert fs.calls_to(RESPONSE_URL)[0].params["text"] == "done"


async def test_async_client_inside_running_loop(fs: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fs.base_url)
    response = await client.chat_postMessage(channel="UALICE", text="from asyncio")
    assert response["channel"] == "DUALICE"
    assert len(await fs.wait_for_async("chat.postMessage")) == 1
    fs.fail_next("users.info", status=429, retry_after=2)
    with pytest.raises(SlackApiError) as exc:
        await client.users_info(user="UALICE")
    assert exc.value.response.headers["Retry-After"] == "2"


# ---- signing helpers ------------------------------------------------------------------------


def test_signatures_verify_with_slack_sdk() -> None:
    verifier = SignatureVerifier(SECRET)
    body = message_event_body("UALICE", "yes", "DUALICE")
    headers = sign(SECRET, body)
    assert headers["Content-Type"] == "application/json"
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body.replace("yes", "no!"), headers)
    stale = sign(SECRET, body, timestamp=int(time.time()) - 10 * 60)
    assert not verifier.is_valid_request(body, stale)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)

    form = block_action_body("UALICE", "approve", "yes", "DUALICE", "1700000000.000100")
    assert sign(SECRET, form)["Content-Type"] == "application/x-www-form-urlencoded"
    assert verifier.is_valid_request(form, sign(SECRET, form))


def test_body_shapes() -> None:
    event = json.loads(message_event_body("UALICE", "yes", "DUALICE", event_id="Ev1"))
    assert event["type"] == "event_callback" and event["event_id"] == "Ev1"
    assert event["event"]["channel_type"] == "im" and event["event"]["user"] == "UALICE"
    form = block_action_body("UALICE", "approve", "yes", "DUALICE", "1.000100")
    action = json.loads(parse_qs(form)["payload"][0])
    assert action["type"] == "block_actions"
    assert action["actions"][0]["action_id"] == "approve"
    assert action["container"]["message_ts"] == "1.000100"
    values = {"b": {"a": {"type": "plain_text_input", "value": "vpn"}}}
    view = json.loads(parse_qs(view_submission_body("UALICE", "why", "42", values))["payload"][0])
    assert view["view"]["private_metadata"] == "42" and view["view"]["state"]["values"] == values


def test_deleted_and_edited_dm_messages_and_retries_look_like_slacks() -> None:
    # Slack's references for the message_deleted and message_changed subtypes.
    deleted = json.loads(message_deleted_body("DUALICE", "1.000100", event_id="Ev2"))
    assert deleted["event_id"] == "Ev2"
    e = deleted["event"]
    assert (e["type"], e["subtype"], e["hidden"]) == ("message", "message_deleted", True)
    assert e["deleted_ts"] == "1.000100" and "user" not in e
    changed = json.loads(message_changed_body("UALICE", "DUALICE", "1.000200", "yes", "no"))
    e = changed["event"]
    assert e["subtype"] == "message_changed" and e["message"]["ts"] == "1.000200"
    assert (e["message"]["text"], e["previous_message"]["text"]) == ("yes", "no")
    assert e["message"]["edited"]["user"] == "UALICE"
    assert retry_headers(2) == {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}
    # Each interaction has its own trigger_id, as in Slack.
    clicks = [json.loads(parse_qs(block_action_body("UALICE", "a", "1", "DUALICE", "1.0"))
                         ["payload"][0]) for _ in range(2)]  # fmt: skip
    assert clicks[0]["trigger_id"] != clicks[1]["trigger_id"]


def bolt_request(body: str, headers: dict[str, str]) -> BoltRequest:
    widened: dict[str, str | Sequence[str]] = dict(headers)
    return BoltRequest(body=body, headers=widened)


def test_signed_requests_drive_a_real_bolt_app(fs: FakeSlack) -> None:
    app = App(
        signing_secret=SECRET,
        client=WebClient(token="xoxb-test", base_url=fs.base_url),
        process_before_response=True,
    )
    got: dict[str, Any] = {}

    @app.message("")
    def on_message(message: dict[str, Any], say: Any) -> None:
        say(f"echo {message['text']}")

    @app.action("approve")
    def on_action(ack: Any, body: dict[str, Any]) -> None:
        ack()
        got["action"] = body["actions"][0]["value"]

    @app.view("why")
    def on_view(ack: Any, view: dict[str, Any]) -> None:
        ack()
        got["view"] = view["private_metadata"]

    bodies = [
        message_event_body("UALICE", "yes", "DUALICE"),
        block_action_body("UALICE", "approve", "yes", "DUALICE", "1.000100"),
        view_submission_body("UALICE", "why", "meta", {}),
    ]
    for body in bodies:
        response = app.dispatch(bolt_request(body, sign(SECRET, body)))
        assert response.status == 200, response.body
    assert fs.messages("DUALICE")[0]["text"] == "echo yes"
    assert got == {"action": "yes", "view": "meta"}

    tampered = bodies[0].replace("yes", "no")
    response = app.dispatch(bolt_request(tampered, sign(SECRET, bodies[0])))
    assert response.status == 401
