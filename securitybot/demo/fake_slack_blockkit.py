"""The fake Slack's refusal of blocks and views it would not render: checked twice, against our
limits table (``securitybot.slack.limits``) and by slack_sdk's own Block Kit models, so a wrong
limit here cannot make the fake agree with it."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from securitybot.slack.limits import problems, view_problems

Json = dict[str, Any]


def _refused_blocks(params: dict[str, Any]) -> Json | None:
    """Slack's answer to blocks it will not render (None: acceptable or absent)."""
    blocks = params.get("blocks")
    if blocks is None or blocks == []:
        return None
    if isinstance(blocks, str):
        return {"ok": False, "error": "invalid_blocks_format"}
    errors = problems(blocks) or _sdk_problems(
        lambda: [Block.parse(b).validate_json() for b in blocks]  # type: ignore[union-attr]
    )
    if not errors:
        return None
    return {"ok": False, "error": "invalid_blocks", "response_metadata": {"messages": errors}}


def _sdk_problems(validate: Any) -> list[str]:
    """A second opinion from slack_sdk's Block Kit models, written apart from our limits table
    (``securitybot.slack.limits``), so a wrong limit there cannot make the fake agree with it."""
    try:
        validate()
    except (SlackObjectFormationError, KeyError, TypeError, AttributeError) as exc:
        return [f"[ERROR] {exc}"]
    return []


def _refused_view(view: Any) -> Json | None:
    # Slack answers an over-limit view with invalid_arguments and the same kind of messages.
    errors = view_problems(view) or _sdk_problems(lambda: View(**view).validate_json())
    if not errors:
        return None
    return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": errors}}
