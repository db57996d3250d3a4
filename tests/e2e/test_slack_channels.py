"""The bot posts only where it was invited, as in real Slack: start-up says where it is missing,
an escalation that gets ``not_in_channel`` goes to the fallback webhook at once, and /healthz
and /metrics show the channel until a post there succeeds."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from securitybot.demo import FakeSlack
from securitybot.slack.messages import DENY_ACTION
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        _Receiver.received.append(json.loads(self.rfile.read(length)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def uninvited(fs: FakeSlack) -> FakeSlack:
    """The security channel exists, but nobody ran /invite @Securitybot in it."""
    fs.remove_from_channel(SECURITY_CHANNEL)
    return fs


def _failed_posts(bot: Bot) -> list[Any]:
    return [
        c
        for c in bot.fs.calls_to("chat.postMessage")
        if c.params.get("channel") == SECURITY_CHANNEL and c.response.get("error")
    ]


def _metric(bot: Bot) -> str:
    text = bot.http.get("/metrics").text
    return "\n".join(
        line for line in text.splitlines() if line.startswith("securitybot_slack_channel_problem{")
    )


def test_start_up_says_in_one_line_that_the_bot_is_not_in_the_security_channel(
    uninvited: FakeSlack, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securitybot")
    bot = make_bot(aer={"defaults": {"notify": {"channel": "CAERNOTES"}}})
    lines = wait_until(
        lambda: [r.getMessage() for r in caplog.records if r.getMessage().startswith("Slack: ")],
        10,
        "the start-up line about Slack",
    )
    assert len(lines) == 1
    assert "bot UBOT in team T1" in lines[0]
    assert f"{SECURITY_CHANNEL} (security channel): not_in_channel" in lines[0]
    assert "CAERNOTES (aer.defaults.notify.channel): channel_not_found" in lines[0]
    assert "/invite @Securitybot" in lines[0]
    health = bot.http.get("/healthz")
    assert health.status_code == 200
    assert health.json()["slack_channels"] == {
        SECURITY_CHANNEL: "not_in_channel",
        "CAERNOTES": "channel_not_found",
    }
    assert f'channel="{SECURITY_CHANNEL}",error="not_in_channel"}} 1.0' in _metric(bot)


def test_start_up_names_the_channels_the_bot_is_in(
    make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securitybot")
    bot = make_bot()
    line = wait_until(
        lambda: [r.getMessage() for r in caplog.records if r.getMessage().startswith("Slack: ")],
        10,
        "the start-up line about Slack",
    )[0]
    assert line == f"Slack: bot UBOT in team T1; member of {SECURITY_CHANNEL} (security channel)"
    assert "slack_channels" not in bot.http.get("/healthz").json()


def test_an_escalation_the_channel_refuses_goes_to_the_fallback_at_once_and_lands_once_invited(
    uninvited: FakeSlack, make_bot: MakeBot, receiver: str
) -> None:
    bot = make_bot(
        # Retries cannot invite the bot: waiting for 5 failures would delay the team by ~30 s.
        escalation={"fallback_webhook": receiver, "fallback_after_failures": 5}
    )
    alert = bot.post_alert()
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.click("UALICE", DENY_ACTION, alert["id"])
    bot.wait_status(alert["id"], "escalated")
    wait_until(lambda: _Receiver.received, 10, "the fallback webhook")
    assert _Receiver.received[0]["alert_id"] == alert["id"]
    assert "not_in_channel" in _Receiver.received[0]["slack_error"]
    assert len(_failed_posts(bot)) == 1  # sent after the first refusal, not the fifth
    assert bot.http.get("/healthz").json()["slack_channels"] == {SECURITY_CHANNEL: "not_in_channel"}
    assert 'error="not_in_channel"} 1.0' in _metric(bot)

    uninvited.invite(SECURITY_CHANNEL)  # someone runs /invite @Securitybot: the job retries
    wait_until(lambda: ok_calls(bot.fs, "chat.postMessage", SECURITY_CHANNEL), 20, "the post")
    assert "slack_channels" not in bot.http.get("/healthz").json()
    assert f'channel="{SECURITY_CHANNEL}"' not in _metric(bot)
    assert len(_Receiver.received) == 1
