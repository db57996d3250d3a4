"""Wazuh alerts, as the manager's integration block (``alert_format json``) posts them."""

from __future__ import annotations

from typing import Any, ClassVar

from securitybot.ingest.adapters.base import Adapter, Item, PayloadError, not_an_object

_DETAIL_KEYS = ("id", "timestamp", "rule", "agent", "manager", "data", "location", "decoder")


class Wazuh(Adapter):
    name: ClassVar[str] = "wazuh"
    summary: ClassVar[str] = "Wazuh manager integration (alert JSON), one alert or a list"
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
        alerts = body if isinstance(body, list) else [body]
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
