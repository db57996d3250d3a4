"""Rendering one adapter item into an ``AlertIn``, or a reason why it cannot be one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from securitybot.ingest.adapters.base import TEMPLATE_FIELDS, Item
from securitybot.ingest.adapters.templates import TemplateProblem, digest, render
from securitybot.ingest.schema import AlertIn, field_errors

_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_TITLE, MAX_DESCRIPTION, MAX_DEDUP, MAX_USER = 300, 8000, 200, 254


class MappingError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Resolved:
    """A "this is over" notice: recorded against the alert it refers to, if any."""

    dedup_key: str | None


def _kind(value: str) -> str:
    # Tools name things "HighCPU" or "Terminal shell"; kinds are snake_case file names.
    return re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_")


def _dedup(value: str) -> str:
    # A long key stays unique and stable instead of being refused or silently cut.
    return value if len(value) <= MAX_DEDUP else f"{value[:150]}:{digest(value)}"


def render_fields(adapter: str, item: Item, templates: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for field in TEMPLATE_FIELDS:
        try:
            values[field] = render(templates[field], item.context)
        except TemplateProblem as exc:
            raise MappingError(
                f"{field}: the template adapters.{adapter}.{field} failed: {exc}"
            ) from None
    return values


def map_item(adapter: str, item: Item, templates: Mapping[str, str]) -> AlertIn | Resolved:
    if item.error:
        raise MappingError(item.error)
    values = render_fields(adapter, item, templates)
    for field, value in values.items():
        if "\x00" in value:  # PostgreSQL text cannot hold NUL; say so instead of failing later
            raise MappingError(f"{field}: must not contain NUL characters")
    if item.resolved:
        return Resolved(_dedup(values["dedup_key"]) if values["dedup_key"] else None)
    # No user is not a reason to refuse: such an alert goes to the team (``no_user``).
    if not values["title"]:
        raise MappingError(
            f"title: no value in this item for adapters.{adapter}.title ({templates['title']})"
        )
    details: dict[str, Any] = {**item.details, "adapter": adapter}
    kind = _kind(values["kind"]) if values["kind"] else ""
    if values["kind"] and not _KIND_RE.match(kind):
        details["requested_kind"] = values["kind"]
        kind = ""
    data: dict[str, Any] = {
        "user": values["user"][:MAX_USER],
        "title": values["title"][:MAX_TITLE],
        "description": values["description"][:MAX_DESCRIPTION],
        "details": details,
    }
    if kind:
        data["kind"] = kind
    if values["dedup_key"]:
        data["dedup_key"] = _dedup(values["dedup_key"])
    if values["occurred_at"]:
        data["occurred_at"] = values["occurred_at"]
    try:
        return AlertIn.model_validate(data)
    except ValidationError as exc:
        first = field_errors(exc)[0]
        got = data.get(first["field"])
        shown = f" (got {str(got)[:80]!r})" if isinstance(got, str) else ""
        raise MappingError(f"{first['field']}: {first['reason']}{shown}") from None
