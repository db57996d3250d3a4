"""osquery result logs in event format (differential ``added``/``removed`` rows, or snapshots).

Accepts what the TLS logger plugin posts (``{"node_key", "log_type": "result", "data": [...]}``),
a list of events, or one event. A ``removed`` row means the thing the query found is gone: it is
recorded, like a resolved alert, and never becomes a new alert.
"""

from __future__ import annotations

from typing import Any, ClassVar

from securitybot.ingest.adapters.base import Adapter, Item, PayloadError, not_an_object

_DETAIL_KEYS = ("name", "hostIdentifier", "calendarTime", "unixTime", "action", "decorations")


def _events(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and "data" in body and "name" not in body:
        if body.get("log_type", "result") != "result":
            raise PayloadError(f"log_type: only 'result' logs are alerts, not {body['log_type']!r}")
        if not isinstance(body["data"], list):
            raise PayloadError("data: must be a list of result events")
        return list(body["data"])
    if isinstance(body, dict):
        return [body]
    raise PayloadError("the body must be an osquery result event, a list, or a TLS logger body")


class Osquery(Adapter):
    name: ClassVar[str] = "osquery"
    summary: ClassVar[str] = "osquery result logs, event format (TLS logger body, list or one)"
    defaults: ClassVar[dict[str, str]] = {
        "user": "{{ columns.username or columns.user or decorations.username }}",
        "kind": "{{ decorations.securitybot_kind }}",
        "title": "{{ name }} on {{ hostIdentifier }}",
        "description": "osquery {{ name }} {{ action }} on {{ hostIdentifier }}: {{ columns }}",
        # osquery gives result rows no id; host, query, time and the row itself identify one.
        "dedup_key": "{{ hostIdentifier }}:{{ name }}:{{ unixTime }}:{{ columns | digest }}",
        "occurred_at": "{{ unixTime }}",
    }

    def items(self, body: Any) -> list[Item]:
        events = _events(body)
        if not events:
            raise PayloadError("no result events in the body")
        items = []
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                items.append(not_an_object(f"[{index}]"))
                continue
            rows = event.get("snapshot") if event.get("action") == "snapshot" else None
            if rows is None:
                rows = [event.get("columns")]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                items.append(Item(context={}, error="columns: must be an object of column values"))
                continue
            for row in rows:
                context = {"decorations": {}, **event, "columns": row, "doc": event}
                details = {k: event[k] for k in _DETAIL_KEYS if k in event}
                details["columns"] = row
                resolved = event.get("action") == "removed"
                items.append(Item(context=context, details=details, resolved=resolved))
        return items
