"""The fake Slack's Audit Logs API (``/audit/v1/logs``): a user token's pages of the entries
a test put in ``FakeSlack.audit_entries``, filtered by action and time as Slack documents it.

Kept apart from the Web API methods (``fake_slack_methods``): the Audit Logs API answers with
real HTTP status codes and cursors of its own, unlike the Web API.
"""

from __future__ import annotations

import base64
from typing import Any

from securitybot.demo.fake_slack_methods import Json


class SlackAuditLogs:
    """The Audit Logs API, over the state ``FakeSlack.__init__`` sets up."""

    admin_token: str | None
    audit_entries: list[Json]

    def _audit_logs(
        self, token: str | None, params: dict[str, Any]
    ) -> tuple[int, Json, dict[str, str]]:
        # The Audit Logs API uses real HTTP status codes, unlike the Web API.
        if not token:
            return 401, {"ok": False, "error": "not_authed"}, {}
        if token == "xoxb-invalid":
            return 401, {"ok": False, "error": "invalid_auth"}, {}
        if not token.startswith("xoxp-") or (self.admin_token and token != self.admin_token):
            return 403, {"ok": False, "error": "not_allowed_token_type"}, {}
        actions = set(filter(None, str(params.get("action", "")).split(",")))
        try:
            oldest = int(params.get("oldest") or 0)
            latest = int(params.get("latest") or 2**63)
            cursor = params.get("cursor")
            start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
            limit = int(params.get("limit") or 100)
        except (ValueError, IndexError):
            return 400, {"ok": False, "error": "invalid_arguments"}, {}
        entries = [
            e
            for e in self.audit_entries
            if (not actions or e.get("action") in actions)
            and oldest <= e.get("date_create", 0) <= latest
        ]
        page = entries[start : start + limit]
        more = start + limit < len(entries)
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return 200, {"entries": page, "response_metadata": {"next_cursor": cursor}}, {}
