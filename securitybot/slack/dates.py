"""Times as Slack shows them: in the reader's own time zone, with a UTC fallback.

Slack's date formatting (docs.slack.dev/messaging/formatting-message-text, "Date formatting")
is ``<!date^{unix}^{tokens}|{fallback}>``; clients that cannot render it show the fallback.
The fallback here is built only from the datetime (digits, ``-``, ``:``, spaces and "UTC"), so
nothing in it can close the token early (``|`` or ``>``) or need escaping.
"""

from __future__ import annotations

from datetime import UTC, datetime

TOKENS = "{date_short_pretty} at {time}"


def fallback(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def slack_date(at: datetime | None, tokens: str = TOKENS, *, missing: str = "unknown time") -> str:
    """``<!date^1700000000^{date_short_pretty} at {time}|2023-11-14 22:13 UTC>``."""
    if at is None:
        return missing
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("slack_date needs a timezone-aware datetime")
    return f"<!date^{int(at.timestamp())}^{tokens}|{fallback(at)}>"
