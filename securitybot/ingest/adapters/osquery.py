"""osquery result logs, in every shape osqueryd writes them.

* event format (the default): one row per line, ``action`` ``added``/``removed``, ``columns``;
* batch format (``--logger_event_type=false``): ``diffResults`` with ``added``/``removed`` lists;
* snapshot queries: ``action: snapshot`` with a ``snapshot`` list of rows.

Each may arrive as the filesystem logger writes it (one JSON object per line: a forwarder posts
the lines, one object, or a JSON list of them) or as the TLS logger wraps it
(``{"node_key", "log_type": "result", "data": [...]}``). ``log_type: status`` bodies are osquery's
own health logs: acknowledged, never alerts.

A ``removed`` row means what the query found is gone: it is recorded against the alert its
``added`` row created (the dedup key identifies the row, not the time it was seen) and never
becomes a new alert.
"""

from __future__ import annotations

from typing import Any, ClassVar

from securitybot.ingest.adapters.base import (
    Adapter,
    Item,
    NothingToDo,
    PayloadError,
    not_an_object,
)

_DETAIL_KEYS = (
    "name", "hostIdentifier", "hostname", "calendarTime", "unixTime", "epoch", "counter",
    "action", "decorations",
)  # fmt: skip


def _events(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and "log_type" in body:
        if body["log_type"] == "status":
            raise NothingToDo("osquery status logs are not alerts")
        if body["log_type"] != "result":
            raise PayloadError(f"log_type: must be 'result' or 'status', not {body['log_type']!r}")
        if not isinstance(body.get("data"), list):
            raise PayloadError("data: must be a list of result events")
        return list(body["data"])
    if isinstance(body, dict):
        return [body]
    raise PayloadError("the body must be an osquery result event, a list, or a TLS logger body")


def _rows(event: dict[str, Any]) -> list[tuple[str, Any]] | str:
    """``(action, row)`` pairs of one log line, or why it has none."""
    diff = event.get("diffResults")
    if diff is not None:
        if not isinstance(diff, dict):
            return "diffResults: must be an object with 'added' and 'removed' lists"
        pairs = []
        for action in ("added", "removed"):
            rows = diff.get(action) or []
            if not isinstance(rows, list):
                return f"diffResults.{action}: must be a list of rows"
            pairs += [(action, row) for row in rows]
        return pairs
    if event.get("action") == "snapshot":
        rows = event.get("snapshot")
        if not isinstance(rows, list):
            return "snapshot: must be a list of rows"
        return [("snapshot", row) for row in rows]
    return [(str(event.get("action") or "added"), event.get("columns"))]


class Osquery(Adapter):
    name: ClassVar[str] = "osquery"
    summary: ClassVar[str] = (
        "osquery result logs: event, batch or snapshot format (lines, list, or TLS logger body)"
    )
    ndjson: ClassVar[bool] = True
    defaults: ClassVar[dict[str, str]] = {
        "user": "{{ columns.username or columns.user or decorations.username }}",
        "kind": "{{ decorations.securitybot_kind }}",
        "title": "{{ name }} on {{ hostIdentifier or hostname }}",
        "description": (
            "osquery {{ name }} {{ action }} on {{ hostIdentifier or hostname }}: {{ columns }}"
        ),
        # Host, query and the row itself identify a finding (osquery gives rows no id); the time
        # is left out so that the row's "removed" line finds the alert its "added" line made.
        "dedup_key": "{{ hostIdentifier or hostname }}:{{ name }}:{{ columns | digest }}",
        "occurred_at": "{{ unixTime }}",
    }

    def items(self, body: Any) -> list[Item]:
        events = _events(body)
        if not events:
            raise NothingToDo("no result events in the body")
        items = []
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                items.append(not_an_object(f"[{index}]"))
                continue
            rows = _rows(event)
            if isinstance(rows, str):
                items.append(Item(context={}, error=rows))
                continue
            for action, row in rows:
                if not isinstance(row, dict):
                    items.append(Item(context={}, error="columns: must be an object of values"))
                    continue
                line = {k: v for k, v in event.items() if k not in ("diffResults", "snapshot")}
                context = {"decorations": {}, **line, "action": action, "columns": row}
                context["doc"] = dict(context)
                details = {k: context[k] for k in _DETAIL_KEYS if k in context}
                details["columns"] = row
                items.append(Item(context=context, details=details, resolved=action == "removed"))
        return items
