"""Prometheus Alertmanager (webhook v4) and Grafana unified alerting (the same shape, extended).

Both send a group: ``alerts[]`` each with ``labels``, ``annotations``, ``startsAt`` and a
``fingerprint``. Alertmanager re-sends a firing alert every ``repeat_interval`` with the same
fingerprint and ``startsAt``, so those two together are the dedup key: a repeat is the same alert
(no second DM), while the same rule firing again later (new ``startsAt``) is a new one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from securitybot.ingest.adapters.base import Adapter, Item, PayloadError, not_an_object

_COMMON_DEFAULTS = {
    "user": "{{ labels.user or labels.username or labels.email or annotations.user }}",
    "kind": "{{ labels.securitybot_kind }}",
    "title": "{{ annotations.summary or labels.alertname }}",
    "description": "{{ annotations.description or annotations.message }}",
    "dedup_key": "{{ fingerprint }}@{{ startsAt }}",
    "occurred_at": "{{ startsAt }}",
}
_ITEM_DETAIL_KEYS = ("labels", "annotations", "startsAt", "fingerprint", "generatorURL")


def _split(
    body: Any, extra_item_keys: tuple[str, ...], extra_group_keys: tuple[str, ...]
) -> list[Item]:
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise PayloadError("alerts: must be a list (send the webhook body unchanged)")
    group = {k: v for k, v in body.items() if k != "alerts"}
    items = []
    for index, alert in enumerate(body["alerts"]):
        if not isinstance(alert, dict):
            items.append(not_an_object(f"alerts[{index}]"))
            continue
        details: dict[str, Any] = {
            k: alert[k] for k in (*_ITEM_DETAIL_KEYS, *extra_item_keys) if k in alert
        }
        details.update(
            {k: body[k] for k in ("receiver", "externalURL", *extra_group_keys) if k in body}
        )
        context = {**{k: group[k] for k in extra_group_keys if k in group}, **alert}
        items.append(
            Item(
                context={**context, "alert": alert, "doc": alert, "group": group},
                details=details,
                resolved=alert.get("status", body.get("status")) == "resolved",
            )
        )
    return items


class Alertmanager(Adapter):
    name: ClassVar[str] = "alertmanager"
    summary: ClassVar[str] = "Prometheus Alertmanager webhook_config (payload version 4)"
    defaults: ClassVar[dict[str, str]] = _COMMON_DEFAULTS

    def items(self, body: Any) -> list[Item]:
        return _split(body, (), ())


class Grafana(Adapter):
    name: ClassVar[str] = "grafana"
    summary: ClassVar[str] = "Grafana unified alerting webhook contact point"
    defaults: ClassVar[dict[str, str]] = {
        **_COMMON_DEFAULTS,
        "title": "{{ annotations.summary or labels.alertname or title }}",
        "dedup_key": "{{ orgId }}:{{ fingerprint }}@{{ startsAt }}",
    }

    def items(self, body: Any) -> list[Item]:
        return _split(
            body,
            ("values", "valueString", "dashboardURL", "panelURL", "silenceURL"),
            ("orgId", "title", "state"),
        )
