"""What operators and other tools see of a full lifecycle: webhooks, metrics, logs."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from securitybot.logs import JsonFormatter
from securitybot.request_ids import RequestIdFilter
from securitybot.slack.messages import CONFIRM_ACTION, DENY_ACTION
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import TOKEN, wait_until

SECRET = "outbound-secret-0123456789"


class _Hook(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        _Hook.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    _Hook.got = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/soar"
    server.shutdown()
    server.server_close()


def test_outbound_webhooks_are_signed_and_follow_the_alert(make_bot: MakeBot, hook: str) -> None:
    bot = make_bot(webhooks={"outbound": [{"url": hook, "secret": SECRET}]})
    ok = bot.post_alert(dedup_key="w1")
    bot.wait_status(ok["id"], "awaiting_ack")
    bot.click("UALICE", CONFIRM_ACTION, ok["id"])
    bot.fd.answer_push(bot.fd.wait_for_push(timeout=10).txid, "allow")
    bot.wait_status(ok["id"], "resolved")
    bad = bot.post_alert(dedup_key="w2", details={"host": "other"})
    bot.wait_status(bad["id"], "awaiting_ack")
    bot.click("UALICE", DENY_ACTION, bad["id"])
    wait_until(lambda: len(_Hook.got) >= 2, 10, "two webhook deliveries")
    events = {(json.loads(b)["alert"]["id"], h["x-securitybot-event"]) for h, b in _Hook.got}
    assert events == {(ok["id"], "resolved"), (bad["id"], "escalated")}
    for headers, body in _Hook.got:
        ts = headers["x-securitybot-timestamp"]
        mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        assert headers["x-securitybot-signature"] == f"v1={mac}"


def test_metrics_show_a_full_lifecycle(make_bot: MakeBot) -> None:
    bot = make_bot()
    alert = bot.post_alert(dedup_key="m1")
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.click("UALICE", DENY_ACTION, alert["id"])
    bot.wait_status(alert["id"], "escalated")
    text = bot.http.get("/metrics").text
    for name in (
        'securitybot_alerts_ingested_total{kind="sensitive_command",source="e2e"}',
        'securitybot_escalations_total{reason="not_me"}',
        "securitybot_time_to_first_dm_seconds_count",
        "securitybot_time_to_answer_seconds_count",
        "securitybot_outbox_depth",
        "securitybot_outbox_oldest_age_seconds",
        "securitybot_sweep_duration_seconds_count",
    ):
        assert name in text, name


def test_logs_are_json_with_alert_and_request_ids_and_never_secrets(
    make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="securitybot")  # other tests may have quieted it
    resp = bot.http.post(
        "/api/v1/alerts",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "req-abc123"},
        json={"user": "alice@example.com", "title": "t", "dedup_key": "l1"},
    )
    assert resp.headers["x-request-id"] == "req-abc123"
    bot.wait_status(resp.json()["id"], "awaiting_ack")
    formatter, rid = JsonFormatter(), RequestIdFilter()
    lines = []
    for record in caplog.records:
        rid.filter(record)
        lines.append(json.loads(formatter.format(record)))
    access = [line for line in lines if line["logger"] == "securitybot.access"]
    assert any(line["request_id"] == "req-abc123" for line in access)
    changes = [line for line in lines if line.get("alert_id") == resp.json()["id"]]
    assert {c["to_status"] for c in changes} >= {"awaiting_ack"}
    assert all(c["correlation_id"] == f"alert-{resp.json()['id']}" for c in changes)
    dump = json.dumps(lines)
    assert TOKEN not in dump and "xoxb-e2e" not in dump and "alice@example.com" not in dump
