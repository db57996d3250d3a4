"""What every adapter provides: split a native payload into items, plus default templates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

# The alert fields an operator can template, per adapter and per source.
TEMPLATE_FIELDS = ("user", "kind", "title", "description", "dedup_key", "occurred_at")


class PayloadError(Exception):
    """The body as a whole is not what this tool sends (so nothing in it can be mapped)."""


class NothingToDo(Exception):
    """A body the tool really sends that carries no alert (e.g. osquery status logs): a 2xx."""


@dataclass(frozen=True)
class Item:
    """One would-be alert: what the templates see, and what is kept on the alert as details."""

    context: Mapping[str, Any]
    details: Mapping[str, Any] = field(default_factory=dict)
    # The tool says the condition is over: recorded in the audit log, never a new alert.
    resolved: bool = False
    # Set when this element cannot be an alert at all (e.g. not an object); the rest go on.
    error: str | None = None


class Adapter:
    name: ClassVar[str]
    summary: ClassVar[str]
    defaults: ClassVar[Mapping[str, str]]
    # The tool's log files hold one JSON document per line, which forwarders post as they are.
    ndjson: ClassVar[bool] = False

    def items(self, body: Any) -> list[Item]:
        raise NotImplementedError


def require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PayloadError(f"the body must be a JSON object ({what})")
    return body


def not_an_object(index_name: str) -> Item:
    return Item(context={}, error=f"{index_name} is not a JSON object")
