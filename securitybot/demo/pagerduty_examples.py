"""PagerDuty's own example payloads, kept verbatim so the fake PagerDuty and the contract tests
answer exactly what PagerDuty documents; each source is named beside its text.

Kept apart from the fake (``fake_pagerduty``), as ``slack_examples`` and ``okta_examples`` are:
the documented text reads on its own, and the fake's logic without a page of data in it.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

# docs/webhooks/01-Overview.md, "Webhook Payload": the example event, verbatim.
DOCUMENTED_WEBHOOK: Json = {
    "event": {
        "id": "5ac64822-4adc-4fda-ade0-410becf0de4f",
        "event_type": "incident.priority_updated",
        "resource_type": "incident",
        "occurred_at": "2020-10-02T18:45:22.169Z",
        "agent": {
            "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
            "id": "PLH1HKV",
            "self": "https://api.pagerduty.com/users/PLH1HKV",
            "summary": "Tenex Engineer",
            "type": "user_reference",
        },
        "client": {"name": "PagerDuty"},
        "data": {
            "id": "PGR0VU2",
            "type": "incident",
            "self": "https://api.pagerduty.com/incidents/PGR0VU2",
            "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "number": 2,
            "status": "triggered",
            "incident_key": "d3640fbd41094207a1c11e58e46b1662",
            "created_at": "2020-04-09T15:16:27Z",
            "title": "A little bump in the road",
            "service": {
                "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
                "id": "PF9KMXH",
                "self": "https://api.pagerduty.com/services/PF9KMXH",
                "summary": "API Service",
                "type": "service_reference",
            },
            "assignees": [
                {
                    "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
                    "id": "PTUXL6G",
                    "self": "https://api.pagerduty.com/users/PTUXL6G",
                    "summary": "User 123",
                    "type": "user_reference",
                }
            ],
            "escalation_policy": {
                "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
                "id": "PUS0KTE",
                "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
                "summary": "Default",
                "type": "escalation_policy_reference",
            },
            "teams": [
                {
                    "html_url": "https://acme.pagerduty.com/teams/PFCVPS0",
                    "id": "PFCVPS0",
                    "self": "https://api.pagerduty.com/teams/PFCVPS0",
                    "summary": "Engineering",
                    "type": "team_reference",
                }
            ],
            "priority": {
                "html_url": "https://acme.pagerduty.com/account/incident_priorities",
                "id": "PSO75BM",
                "self": "https://api.pagerduty.com/priorities/PSO75BM",
                "summary": "P1",
                "type": "priority_reference",
            },
            "urgency": "high",
            "conference_bridge": {
                "conference_number": "+1 1234123412,,987654321#",
                "conference_url": "https://example.com",
            },
            "resolve_reason": None,
        },
    }
}

# api-schema reference/REST/openapiv3.json, GET /users/{id}, "Response Example".
DOCUMENTED_USER: Json = {
    "user": {
        "id": "PXPGF42",
        "type": "user",
        "summary": "Earline Greenholt",
        "self": "https://api.pagerduty.com/users/PXPGF42",
        "html_url": "https://subdomain.pagerduty.com/users/PXPGF42",
        "name": "Earline Greenholt",
        "email": "125.greenholt.earline@graham.name",
        "time_zone": "America/Lima",
        "color": "green",
        "role": "admin",
        "avatar_url": "https://pd-static-assets.pagerduty.com/users/blank-avatar.png",
        "description": "I'm the boss",
        "invitation_sent": False,
        "created_via_sso": True,
        "contact_methods": [
            {
                "id": "PTDVERC",
                "type": "email_contact_method_reference",
                "summary": "Default",
                "self": "https://api.pagerduty.com/users/PXPGF42/contact_methods/PTDVERC",
            }
        ],
        "notification_rules": [
            {
                "id": "P8GRWKK",
                "type": "assignment_notification_rule_reference",
                "summary": "Default",
                "self": "https://api.pagerduty.com/users/PXPGF42/notification_rules/P8GRWKK",
                "html_url": None,
            }
        ],
        "job_title": "Director of Engineering",
        "teams": [
            {
                "id": "PQ9K7I8",
                "type": "team_reference",
                "summary": "Engineering",
                "self": "https://api.pagerduty.com/teams/PQ9K7I8",
                "html_url": "https://subdomain.pagerduty.com/teams/PQ9K7I8",
            }
        ],
        "http_cal_url": "https://webcal.pagerduty.com/private/ABCDEFGHIJKLMNOP/feed",
        "web_cal_url": "webcal://webcal.pagerduty.com/private/ABCDEFGHIJKLMNOP/feed",
    }
}
