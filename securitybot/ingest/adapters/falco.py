"""Falco runtime security events (``json_output`` over ``http_output``, or falcosidekick's webhook).

Inside containers ``user.name`` is usually ``root``; ``user.loginname`` is the person who logged
in, so it comes first (Falco writes ``<NA>`` for a field it could not resolve). Map either onto
an email with a per-source template, for example::

    {{ output_fields['user.loginname'] ~ '@example.com' if known(output_fields['user.loginname']) }}

What is left (``root``) is no person, and goes to the security team (``no_user``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from securitybot.ingest.adapters.base import Adapter, Item, PayloadError, not_an_object

_DETAIL_KEYS = ("uuid", "rule", "priority", "output", "output_fields", "tags", "hostname", "source")


class Falco(Adapter):
    name: ClassVar[str] = "falco"
    summary: ClassVar[str] = "Falco json_output via http_output, or falcosidekick webhook"
    defaults: ClassVar[dict[str, str]] = {
        # The login name when Falco knows it, else the process user; "<NA>" counts as none.
        # Neither is usually an email: a source maps them (or they go to the team, no_user).
        "user": "{{ known(output_fields['user.loginname'], output_fields['user.name']) }}",
        "kind": "{{ output_fields.securitybot_kind }}",
        "title": "{{ rule }}{{ ' on ' ~ hostname if hostname }}",
        "description": "{{ output }}",
        # Falco itself gives events no id; falcosidekick adds a uuid.
        "dedup_key": "{{ uuid or (rule ~ '@' ~ time ~ '@' ~ (hostname or '')) }}",
        "occurred_at": "{{ time }}",
    }

    def items(self, body: Any) -> list[Item]:
        events = body if isinstance(body, list) else [body]
        if not isinstance(body, list | dict) or not events:
            raise PayloadError("the body must be a Falco event (object) or a list of them")
        items = []
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                items.append(not_an_object(f"[{index}]"))
                continue
            if not event.get("rule") or not event.get("time"):
                items.append(Item(context={}, error="rule and time are required in a Falco event"))
                continue
            context = {"output_fields": {}, **event, "doc": event}
            details = {k: event[k] for k in _DETAIL_KEYS if k in event}
            items.append(Item(context=context, details=details))
        return items
