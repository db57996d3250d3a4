"""Splunk's built-in webhook alert action.

Splunk posts ``{"sid", "search_name", "app", "owner", "results_link", "result": {...}}`` with
the first result row (or one POST per row with "trigger: for each result"). It cannot set
headers, which is why this adapter alone also accepts a ``?token=`` in the URL.
"""

from __future__ import annotations

from typing import Any, ClassVar

from securitybot.ingest.adapters.base import Adapter, Item, PayloadError, require_object


class Splunk(Adapter):
    name: ClassVar[str] = "splunk"
    summary: ClassVar[str] = "Splunk webhook alert action"
    defaults: ClassVar[dict[str, str]] = {
        "user": "{{ result.user or result.src_user or result.email or result.user_email }}",
        "kind": "{{ result.securitybot_kind }}",
        # search_name is null for an ad-hoc search (Splunk's own documented example): fall back
        # to the result's rule name (Enterprise Security) or the search id, never refuse.
        "title": "{{ known(search_name, result.rule_name, result.search_name) "
        "or 'Splunk search ' ~ sid }}",
        "description": (
            "Splunk search {{ known(search_name) or sid }} matched. Results: {{ results_link }}"
        ),
        # sid names the search run; with one POST per result row every row shares the sid, so
        # the row's own content tells them apart (and a retried POST stays the same alert).
        "dedup_key": "{{ sid }}:{{ result | digest }}",
        "occurred_at": "{{ result._time }}",
    }

    def items(self, body: Any) -> list[Item]:
        data = require_object(body, "Splunk's webhook body")
        if not isinstance(data.get("result"), dict):
            raise PayloadError("result: must be an object (Splunk's first result row)")
        if not data.get("sid"):
            raise PayloadError("sid: is required (the Splunk search id)")
        details: dict[str, Any] = {
            k: data[k] for k in ("sid", "search_name", "app", "owner", "results_link") if k in data
        }
        details["result"] = data["result"]
        return [Item(context={**data, "doc": data}, details=details)]
