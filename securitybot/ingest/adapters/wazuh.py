"""Wazuh alerts: the ``alerts.json`` record ``wazuh-integratord`` hands to an integration.

It arrives as ``integrations/custom-securitybot`` (shipped here) posts it, as a list of them, or
wrapped the way Wazuh's stock ``shuffle`` integration posts it (``{"title", "rule_id", …,
"all_fields": <alert>}``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from securitybot.ingest.adapters.base import Adapter, Item, PayloadError, not_an_object

_DETAIL_KEYS = ("id", "timestamp", "rule", "agent", "manager", "data", "location", "decoder")


def _unwrap(body: Any) -> Any:
    # integrations/shuffle.py sends the alert itself under "all_fields".
    if isinstance(body, dict) and "rule" not in body and isinstance(body.get("all_fields"), dict):
        return body["all_fields"]
    return body


class Wazuh(Adapter):
    name: ClassVar[str] = "wazuh"
    summary: ClassVar[str] = "Wazuh alerts (custom-securitybot or shuffle integration), or a list"
    defaults: ClassVar[dict[str, str]] = {
        "user": (
            "{{ data.dstuser or data.srcuser or get(data, 'win.eventdata.targetUserName') "
            "or get(data, 'audit.login_user') }}"
        ),
        "kind": "{{ data.securitybot_kind }}",
        "title": "{{ rule.description }}{{ ' on ' ~ agent.name if agent.name }}",
        "description": "{{ full_log }}",
        "dedup_key": "{{ id or (doc | digest) }}",
        "occurred_at": "{{ timestamp }}",
    }

    def items(self, body: Any) -> list[Item]:
        alerts = [_unwrap(a) for a in body] if isinstance(body, list) else [_unwrap(body)]
        if not isinstance(body, list | dict) or not alerts:
            raise PayloadError("the body must be a Wazuh alert (object) or a list of them")
        items = []
        for index, alert in enumerate(alerts):
            if not isinstance(alert, dict):
                items.append(not_an_object(f"[{index}]"))
                continue
            if not isinstance(alert.get("rule"), dict):
                items.append(Item(context={}, error="rule: must be an object"))
                continue
            context = {"data": {}, "agent": {}, **alert, "doc": alert}
            details = {k: alert[k] for k in _DETAIL_KEYS if k in alert}
            if alert.get("full_log"):
                details["full_log"] = alert["full_log"]
            items.append(Item(context=context, details=details))
        return items
