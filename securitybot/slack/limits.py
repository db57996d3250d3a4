"""Slack's Block Kit limits, and a validator that checks a payload against them.

The numbers are Slack's documented limits (https://api.slack.com/reference/block-kit/blocks,
https://api.slack.com/reference/block-kit/block-elements,
https://api.slack.com/reference/block-kit/composition-objects,
https://api.slack.com/reference/surfaces/views). Slack refuses a payload that breaks one with
``invalid_blocks`` (messages) or ``invalid_arguments`` (views), and a
``response_metadata.messages`` entry per problem in the format used here. The product's builders
(``slack/mrkdwn.py``) keep within them; the fake Slack and the tests use :func:`problems`.
"""

from __future__ import annotations

from typing import Any

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
FIELDS = 10
HEADER_TEXT = 150
CONTEXT_TEXT = 3000
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BLOCK_ID = 255
ACTION_ID = 255
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTON_URL = 3000
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
INPUT_LABEL = 2000
VIEW_TITLE = 24
VIEW_BUTTON = 24
CALLBACK_ID = 255
PRIVATE_METADATA = 3000
# Slack truncates a message's ``text`` past 40,000 characters and refuses long ones on
# chat.update (``msg_too_long``); ours is a notification line, so it stays far shorter.
FALLBACK_TEXT = 1000

_TEXT_TYPES = ("plain_text", "mrkdwn")


class _Check:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def string(self, value: Any, limit: int, pointer: str, *, required: bool = True) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail("must be a non-empty string", pointer)
        elif len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer)

    def text(self, obj: Any, limit: int, pointer: str, *, plain: bool = False) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in _TEXT_TYPES:
            self.fail("must be a text object", pointer)
            return
        if plain and obj["type"] != "plain_text":
            self.fail("must be a plain_text object", pointer + "/type")
        self.string(obj.get("text"), limit, pointer + "/text")

    def items(self, value: Any, most: int, pointer: str) -> list[Any]:
        if not isinstance(value, list) or not value:
            self.fail("must provide an array with at least 1 item", pointer)
            return []
        if len(value) > most:
            self.fail(f"no more than {most} items allowed", pointer)
        return value

    def button(self, el: dict[str, Any], p: str) -> None:
        self.text(el.get("text"), BUTTON_TEXT, p + "/text", plain=True)
        self.string(el.get("value"), BUTTON_VALUE, p + "/value", required=False)
        self.string(el.get("url"), BUTTON_URL, p + "/url", required=False)
        if el.get("style") not in (None, "primary", "danger"):
            self.fail("must be primary or danger", p + "/style")
        confirm = el.get("confirm")
        if confirm is not None:
            self.text(confirm.get("title"), CONFIRM_TITLE, p + "/confirm/title", plain=True)
            self.text(confirm.get("text"), CONFIRM_TEXT, p + "/confirm/text")
            for key in ("confirm", "deny"):
                self.text(confirm.get(key), CONFIRM_BUTTON, f"{p}/confirm/{key}", plain=True)

    def element(self, el: Any, p: str) -> None:
        if not isinstance(el, dict):
            self.fail("must be an object", p)
            return
        self.string(el.get("action_id"), ACTION_ID, p + "/action_id", required=False)
        if el.get("type") == "button":
            self.button(el, p)
        elif el.get("type") not in ("plain_text_input", "static_select", "users_select"):
            self.fail("unsupported element type", p + "/type")

    def block(self, block: Any, p: str) -> None:
        if not isinstance(block, dict):
            self.fail("must be an object", p)
            return
        self.string(block.get("block_id"), BLOCK_ID, p + "/block_id", required=False)
        kind = block.get("type")
        if kind == "header":
            self.text(block.get("text"), HEADER_TEXT, p + "/text", plain=True)
        elif kind == "section":
            if "text" in block or "fields" not in block:
                self.text(block.get("text"), SECTION_TEXT, p + "/text")
            if "fields" in block:
                for i, f in enumerate(self.items(block["fields"], FIELDS, p + "/fields")):
                    self.text(f, FIELD_TEXT, f"{p}/fields/{i}")
        elif kind == "context":
            elements = self.items(block.get("elements"), CONTEXT_ELEMENTS, p + "/elements")
            for i, el in enumerate(elements):
                if not (isinstance(el, dict) and el.get("type") == "image"):
                    self.text(el, CONTEXT_TEXT, f"{p}/elements/{i}")
        elif kind == "actions":
            elements = self.items(block.get("elements"), ACTIONS_ELEMENTS, p + "/elements")
            ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
            if len([i for i in ids if i]) != len({i for i in ids if i}):
                self.fail("action_id must be unique in a block", p + "/elements")
            for i, el in enumerate(elements):
                self.element(el, f"{p}/elements/{i}")
        elif kind == "input":
            self.text(block.get("label"), INPUT_LABEL, p + "/label", plain=True)
            self.element(block.get("element"), p + "/element")
        elif kind != "divider":
            self.fail("unsupported block type", p + "/type")

    def blocks(self, blocks: Any, most: int, p: str) -> None:
        if not isinstance(blocks, list):
            self.fail("must be an array", p)
            return
        if len(blocks) > most:
            self.fail(f"no more than {most} items allowed", p)
        ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
        if len(ids) != len(set(ids)):
            self.fail("block_id must be unique in a message", p)
        for i, block in enumerate(blocks):
            self.block(block, f"{p}/{i}")


def problems(blocks: Any) -> list[str]:
    """What Slack would refuse in a message's ``blocks`` (empty: Slack accepts them)."""
    check = _Check()
    check.blocks(blocks, MESSAGE_BLOCKS, "/blocks")
    return check.errors


def view_problems(view: Any) -> list[str]:
    """What Slack would refuse in a modal or Home tab ``view``."""
    check = _Check()
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        check.fail("must be a modal or home view", "/view")
        return check.errors
    if view["type"] == "modal":
        check.text(view.get("title"), VIEW_TITLE, "/view/title", plain=True)
        for key in ("submit", "close"):
            if key in view:
                check.text(view[key], VIEW_BUTTON, f"/view/{key}", plain=True)
    check.string(view.get("callback_id"), CALLBACK_ID, "/view/callback_id", required=False)
    check.string(view.get("private_metadata"), PRIVATE_METADATA, "/view/private_metadata",
                 required=False)  # fmt: skip
    blocks = view.get("blocks")
    if not blocks:  # Slack documents ``blocks`` as required for every view
        check.fail("must contain between 1 and 100 blocks", "/view/blocks")
    check.blocks(blocks or [], VIEW_BLOCKS, "/view/blocks")
    return check.errors
