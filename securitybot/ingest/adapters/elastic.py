"""ElastAlert 2 (``http_post`` alerter: the match document) and Kibana (a webhook connector).

A Kibana webhook connector's body is written by the operator with mustache variables; this
adapter expects the bodies documented in README (``rule``, ``alert``, ``context``, ``date``) and,
for security detection rules, ``alerts`` rendered as ``[{{{context.alerts}}}]``: then each
detection alert document becomes one alert. Kibana renders an array variable as its elements
joined by commas, so without the brackets two alerts are not JSON and one is a bare object.
"""

from __future__ import annotations

from typing import Any, ClassVar

from securitybot.ingest.adapters.base import Adapter, Item, NothingToDo, PayloadError, not_an_object

MATCH_DETAIL_KEYS = ("_id", "_index", "@timestamp", "rule_name", "num_hits", "num_matches")


class ElastAlert(Adapter):
    name: ClassVar[str] = "elastalert"
    summary: ClassVar[str] = "ElastAlert 2 http_post alerter (one match document, or a list)"
    defaults: ClassVar[dict[str, str]] = {
        "user": "{{ get(doc, 'user.email') or get(doc, 'user.name') or doc.username }}",
        "kind": "{{ doc.securitybot_kind }}",
        # http_post sends the match without the rule's name: README shows the static payload
        # that adds it; without one, what happened and where is a better title than nothing.
        "title": (
            "{{ doc.rule_name or doc.alert_subject or (get(doc, 'message') "
            "or get(doc, 'event.action') or 'ElastAlert match') "
            "~ (' in ' ~ doc._index if doc._index else '') }}"
        ),
        "description": "{{ doc.alert_text or get(doc, 'message') }}",
        "dedup_key": "{{ doc._id or (doc | digest) }}",
        "occurred_at": "{{ get(doc, '@timestamp') }}",
    }

    def items(self, body: Any) -> list[Item]:
        docs = body if isinstance(body, list) else [body]
        if not docs or (not isinstance(body, list) and not isinstance(body, dict)):
            raise PayloadError("the body must be a match document (object) or a list of them")
        items = []
        for index, doc in enumerate(docs):
            if not isinstance(doc, dict):
                items.append(not_an_object(f"[{index}]"))
                continue
            items.append(Item(context={**doc, "doc": doc}, details={"match": doc}))
        return items


class Kibana(Adapter):
    name: ClassVar[str] = "kibana"
    summary: ClassVar[str] = "Kibana alerting webhook connector (body in docs)"
    defaults: ClassVar[dict[str, str]] = {
        "user": (
            "{{ get(doc, 'user.email') or get(doc, 'user.name') "
            "or context.user or context.username }}"
        ),
        "kind": "{{ securitybot_kind }}",
        "title": "{{ get(doc, 'kibana.alert.rule.name') or rule.name or 'Kibana alert' }}",
        "description": (
            "{{ get(doc, 'kibana.alert.reason') or context.reason or context.message "
            "or context.conditions or context.title }}"
        ),
        "dedup_key": "{{ get(doc, 'kibana.alert.uuid') or alert.uuid or alert.id }}",
        "occurred_at": "{{ get(doc, '@timestamp') or date }}",
    }

    def items(self, body: Any) -> list[Item]:
        if not isinstance(body, dict):
            raise PayloadError("the body must be a JSON object (the connector's body)")
        if not isinstance(body.get("rule"), dict):
            raise PayloadError('rule: must be an object ({"id": "{{rule.id}}", …})')
        base = {k: v for k, v in body.items() if k != "alerts"}
        docs = body.get("alerts")
        if docs is None:
            return [Item(context={**base, "doc": {}}, details=base)]
        if isinstance(docs, dict):
            # `"alerts": {{{context.alerts}}}` (no brackets) renders one alert as an object.
            docs = [docs]
        if not isinstance(docs, list):
            raise PayloadError(
                'alerts: must be a list (render it as "alerts": [{{{context.alerts}}}])'
            )
        if not docs:
            raise NothingToDo("no detection alerts in the body")
        items = []
        for index, doc in enumerate(docs):
            if not isinstance(doc, dict):
                items.append(not_an_object(f"alerts[{index}]"))
                continue
            items.append(
                Item(context={**base, "doc": doc}, details={**base, "alert_document": doc})
            )
        return items
