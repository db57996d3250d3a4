"""Text from outside made inert for Slack, and Block Kit pieces that always fit Slack's limits.

Slack reads ``&``, ``<`` and ``>`` as control characters in mrkdwn and in a message's ``text``
(https://api.slack.com/reference/surfaces/formatting#escaping): ``<!channel>`` pings everyone and
``<https://x|Re-verify>`` hides a link behind any label. So every value that came from outside
(alert fields, reply comments, AER fields, Slack profile names) goes through :func:`escape`,
:func:`inline` or :func:`code` before it is put into mrkdwn; the product adds its own mentions and
links around the escaped parts (:func:`user`). Plain-text objects (headers, labels) are not
parsed for markup by Slack, so they are only clipped. Both show bidirectional controls
(U+202E and its kin) instead of obeying them (``untrusted.shown``). Bare words like ``@here``
stay words: we never pass ``link_names`` or ``parse=full``, and our mrkdwn objects are
``verbatim``.

Lengths are counted in code points, as slack_sdk's validators count them.
"""

from __future__ import annotations

from typing import Any

from securitybot import untrusted
from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.slack import limits

ELLIPSIS = "…"
# A code span cannot contain a backtick, so a value's backticks become a look-alike.
_BACKTICK_LOOKALIKE = "ˋ"

Block = dict[str, Any]


def escape(value: object) -> str:
    """Slack's documented escaping: ``&``, ``<`` and ``>`` become HTML entities; and
    bidirectional controls are shown, not obeyed (``untrusted.shown``)."""
    text = untrusted.shown(str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inline(value: object, limit: int = 300) -> str:
    """One line of escaped text that cannot open or close a code span, at most ``limit`` long."""
    flat = " ".join(str(value).splitlines()).replace("`", _BACKTICK_LOOKALIKE)
    return clip(escape(flat), limit)


def code(value: object, limit: int = 200) -> str:
    """``value`` shown as inline code that it cannot break out of."""
    return f"`{inline(value, limit - 2) or ' '}`"


def user(user_id: str | None) -> str:
    """A mention for a Slack user id we can vouch for; anything else is shown, not parsed."""
    if user_id and SLACK_ID_RE.match(user_id):
        return f"<@{user_id}>"
    return code(user_id or "unknown user", 100)


def mention_ref(ref: str) -> str:
    """A configured mention (``escalation.mention``, a tier's): ``here``/``channel``, a user
    group id (S…) or a user id (U…/W…), as Slack's mrkdwn for it."""
    if ref in ("here", "channel"):
        return f"<!{ref}>"
    return f"<!subteam^{ref}>" if ref.startswith("S") else f"<@{ref}>"


def truncated(alert_id: int | None) -> str:
    """What replaces the end of a clipped text: where the full alert can be found."""
    return f"{ELLIPSIS} (truncated; full alert: #{alert_id})" if alert_id else ELLIPSIS


def clip(text: str, limit: int, pointer: str = ELLIPSIS) -> str:
    """Cut already-escaped mrkdwn to ``limit`` without breaking an entity, a link or a span.

    Escaping grows text, so this runs on the escaped form: a cut never leaves half an
    ``&amp;`` (which Slack would show raw) or a product-made ``<…>`` without its end.
    """
    if len(text) <= limit:
        return text
    if limit <= len(pointer):
        return pointer[:limit]
    keep = text[: limit - len(pointer) - 1]  # one spare character to close a code span
    amp = keep.rfind("&")
    if amp != -1 and ";" not in keep[amp:]:
        keep = keep[:amp]
    # Escaped values hold no "<", so any "<" here opened a mention or link the product made.
    opened = keep.rfind("<")
    if opened != -1 and ">" not in keep[opened:]:
        keep = keep[:opened]
    if keep.count("`") % 2:
        keep += "`"
    return keep + pointer


def clip_plain(text: str, limit: int, empty: str = "Alert") -> str:
    """Plain text (not parsed by Slack, bidirectional controls shown) cut to ``limit``; never
    empty, which Slack refuses."""
    text = " ".join(untrusted.shown(text).split()) or empty
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


# -- Block Kit builders that respect Slack's limits ------------------------------------------


def fallback(text: str) -> str:
    """A message's ``text``: shown in notifications and also parsed as mrkdwn by Slack."""
    return clip(text, limits.FALLBACK_TEXT)


def section(text: str, pointer: str = ELLIPSIS) -> Block:
    body = clip(text, limits.SECTION_TEXT, pointer)
    return {"type": "section", "text": {"type": "mrkdwn", "text": body, "verbatim": True}}


def header(text: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": clip_plain(text, limits.HEADER_TEXT)},
    }


def context(*texts: str, pointer: str = ELLIPSIS) -> Block:
    elements = [
        {"type": "mrkdwn", "text": clip(t, limits.CONTEXT_TEXT, pointer), "verbatim": True}
        for t in texts[: limits.CONTEXT_ELEMENTS]
        if t.strip()
    ]
    return {"type": "context", "elements": elements}


def button(action_id: str, label: str, value: str, **extra: Any) -> Block:
    return {
        "type": "button", "action_id": action_id[: limits.ACTION_ID],
        "text": {"type": "plain_text", "text": clip_plain(label, limits.BUTTON_TEXT)},
        "value": value[: limits.BUTTON_VALUE], **extra,
    }  # fmt: skip


def sections(texts: list[str], pointer: str = ELLIPSIS) -> list[Block]:
    """One section per non-empty text (Slack refuses a section with blank text)."""
    return [section(t, pointer) for t in texts if t.strip()]
