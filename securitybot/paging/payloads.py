"""What an escalation looks like to each pager: PagerDuty's PD-CEF event and Opsgenie's alert
(pure: built from what the handler loaded).

PagerDuty: docs/events-API-v2/02-Trigger-Events.md (summary at most 1024 characters, severity
critical/error/warning/info, component and class, custom_details, links). Opsgenie: its Alert
API's "Create Alert" (message 130 characters, description 15,000, details a map of strings of
8,000 characters in all, tags of 50, priority P1-P5, responders).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from securitybot import untrusted
from securitybot.paging.policy import (
    Vendor,
    fit,
    opsgenie_priority,
    pager_summary,
    pagerduty_severity,
    plain_line,
)

TIMELINE_LINES = 50  # the most recent steps; the dashboard has them all
DETAILS_TOTAL = 8000


@dataclass(frozen=True)
class Escalation:
    """One page's alert (the opener) and what the pager should say about it."""

    alert_id: int
    kind: str
    severity: str  # ours: low, medium, high, critical
    title: str
    description: str
    user: str
    user_id: str | None
    reason: str | None
    source: str
    details: dict[str, Any]
    escalated_at: datetime
    timeline: list[tuple[datetime, str]]  # plain text lines
    alerts: int = 1  # alerts sharing the page (a storm)
    dashboard_url: str | None = None
    slack_url: str | None = None

    @property
    def host(self) -> str:
        host = self.details.get("host") if isinstance(self.details, dict) else None
        return plain_line(str(host)) if host else ""

    def summary(self, vendor: Vendor) -> str:
        return pager_summary(severity=self.severity, title=self.title, user=self.user,
                             reason=self.reason, limit=vendor.summary_limit,
                             alerts=self.alerts)  # fmt: skip

    def timeline_lines(self) -> list[str]:
        return [f"{at:%Y-%m-%d %H:%M:%S}Z {text}" for at, text in self.timeline[-TIMELINE_LINES:]]

    def links(self) -> list[dict[str, str]]:
        found = []
        if self.dashboard_url:
            found.append({"href": self.dashboard_url, "text": "Securitybot dashboard"})
        if self.slack_url:
            found.append({"href": self.slack_url, "text": "Slack escalation post"})
        return found


def pagerduty_trigger(e: Escalation, dedup_key: str) -> dict[str, Any]:
    """The ``trigger`` event (without the routing key, which the client adds)."""
    event: dict[str, Any] = {
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "Securitybot",
        "payload": {
            "summary": e.summary(Vendor.PAGERDUTY),
            "source": fit(e.host or plain_line(e.source) or "securitybot", 255),
            "severity": pagerduty_severity(e.severity),
            "timestamp": e.escalated_at.isoformat(),
            "component": e.kind,
            "group": plain_line(e.source)[:255] or "securitybot",
            "class": e.kind,
            "custom_details": {
                "alert_id": e.alert_id, "alerts": e.alerts, "user": e.user,
                "user_id": e.user_id, "severity": e.severity, "reason": e.reason,
                "title": e.title, "description": e.description, "details": e.details,
                "timeline": e.timeline_lines(),
            },
        },
        "links": e.links(),
    }  # fmt: skip
    if e.dashboard_url:
        event["client_url"] = e.dashboard_url
    return event


def pagerduty_step(action: str, dedup_key: str) -> dict[str, Any]:
    """``acknowledge`` or ``resolve``: only the dedup key says which alert."""
    return {"event_action": action, "dedup_key": dedup_key}


def _string_details(e: Escalation) -> dict[str, str]:
    """Opsgenie's details: a map of strings, within its 8,000 characters in all."""
    out = {"alert_id": str(e.alert_id), "user": e.user, "reason": e.reason or "",
           "kind": e.kind, "severity": e.severity}  # fmt: skip
    if e.alerts > 1:
        out["alerts"] = str(e.alerts)
    for link in e.links():
        out[link["text"]] = link["href"]
    for key, value in (e.details or {}).items():
        name = plain_line(str(key))[:100]
        if name and name not in out:
            out[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    budget, fitted = DETAILS_TOTAL, {}
    for key, value in out.items():
        room = budget - len(key)
        if room <= 0:
            break
        fitted[key] = fit(value, min(room, 1000))
        budget -= len(key) + len(fitted[key])
    return fitted


def opsgenie_create(e: Escalation, alias: str, *, responders: list[dict[str, str]],
                    tags: list[str]) -> dict[str, Any]:  # fmt: skip
    description = "\n".join([
        plain_line(e.title), e.description, "",
        f"Who: {e.user}", f"Why: {e.reason or 'escalated'}", f"Severity: {e.severity}", "",
        "Timeline:", *e.timeline_lines(),
    ])  # fmt: skip
    all_tags = ["securitybot", e.kind, *([e.reason] if e.reason else []), *tags]
    return {
        "message": e.summary(Vendor.OPSGENIE),
        "alias": alias,
        "description": fit(untrusted.shown(description), 15000),
        "responders": responders,
        "tags": [fit(t, 50) for t in dict.fromkeys(all_tags)][:20],
        "details": _string_details(e),
        "entity": fit(e.host or e.kind, 512),
        "source": "Securitybot",
        "priority": opsgenie_priority(e.severity),
    }
