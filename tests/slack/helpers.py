"""Alerts built in memory and a way to read every piece of mrkdwn a message would send."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from securitybot.store.models import Alert

VECTORS = [
    "<!channel>",
    "<!here>",
    "<!subteam^S1>",
    "<@U123>",
    "<https://evil.example/sso|Re-verify your account>",
    "&lt;!channel&gt;",
    "ends` <!channel> `code",
]
_ENTITY = re.compile(r"&(?:amp|lt|gt);")
# The product's own dates (slack/dates.py): a Unix time, Slack's tokens, a UTC fallback; no
# text from an alert can take this shape, as every < and > in it is escaped.
_SLACK_DATE = re.compile(r"<!date\^\d+\^[{}a-z_ ]+\|\d{4}-\d\d-\d\d \d\d:\d\d UTC>")


def make_alert(**fields: Any) -> Alert:
    values: dict[str, Any] = {
        "id": 42, "kind": "sensitive_command", "severity": "high", "source": "e2e",
        "user_given": "alice@example.com", "user_id": "UALICE", "title": "t", "description": "",
        "details": {}, "status": "escalated", "policy": {}, "escalation_reason": "not_me",
        "created_at": datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "escalation_tier": 0,
    }  # fmt: skip
    return Alert(**(values | fields))


def mrkdwn_of(text: str, blocks: list[dict[str, Any]] | None = None) -> list[str]:
    """The message's ``text`` (Slack parses it as mrkdwn too) and every mrkdwn text object."""
    found = [text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks or [])
    return found


def assert_inert(texts: list[str], allowed: tuple[str, ...] = ()) -> None:
    """Only the product's own mentions and links may be markup; no stray ``&`` either."""
    for text in texts:
        for token in allowed:
            text = text.replace(token, "")
        text = _SLACK_DATE.sub("", text)
        assert "<" not in text and ">" not in text, text
        assert "&" not in _ENTITY.sub("", text), text
