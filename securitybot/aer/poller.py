"""Polls Slack's Audit Logs API for Slack's own ``anomaly`` entries and feeds them to decide().

Position (cursor while paging, then the newest ``date_create`` seen) is stored in SQL in the
same transaction as the decisions of each page, so a restart resumes exactly where it stopped;
an entry seen twice anyway (the boundary second is re-read on purpose) is dropped by its id.
Tier 3 allows about 50 calls a minute: calls are spaced to ``max_calls_per_minute`` and a 429
waits out its Retry-After before trying the same page again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from slack_sdk.audit_logs.async_client import AsyncAuditLogsClient

from securitybot.aer import store
from securitybot.aer.detect import Anomaly
from securitybot.aer.rules import ANOMALY_TYPES
from securitybot.aer.service import AerService
from securitybot.config import AerAuditLogs
from securitybot.store.models import utcnow

logger = logging.getLogger(__name__)

POLLER_NAME = "slack_audit_logs_anomaly"
_MAX_429 = 5


class PollError(RuntimeError):
    """The Audit Logs API refused the poll (bad token, wrong token type, server error)."""


def entry_anomaly(entry: dict[str, Any]) -> Anomaly | None:
    """Map one Slack ``anomaly`` entry; None when it names no org, user or known reason."""
    ctx = entry.get("context") or {}
    org = (ctx.get("location") or {}).get("id")
    user = ((entry.get("entity") or {}).get("user") or {}).get("id") or (
        (entry.get("actor") or {}).get("user") or {}
    ).get("id")
    reasons = [r for r in (entry.get("details") or {}).get("reason") or [] if isinstance(r, str)]
    kind = next((r for r in reasons if r in ANOMALY_TYPES), None)
    if not isinstance(org, str) or not isinstance(user, str) or kind is None:
        return None
    session = ctx.get("session_id")
    return Anomaly(
        org=org, user=user, type=kind, session=None if session is None else str(session),
        ts=datetime.fromtimestamp(int(entry.get("date_create") or 0), UTC),
        rule=f"slack_audit:{kind}", observed=",".join(reasons), threshold=None,
        ip=ctx.get("ip_address"), asn=None, country=None, user_agent=ctx.get("ua"),
        details={"reasons": reasons, "entry_id": entry.get("id"), "source": "slack_audit_logs"},
    )  # fmt: skip


class AuditLogPoller:
    def __init__(
        self, service: AerService, cfg: AerAuditLogs, client: AsyncAuditLogsClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:  # fmt: skip
        assert cfg.token is not None or client is not None
        self.service, self.cfg = service, cfg
        # No built-in retry handlers: 429 and Retry-After are handled here, visibly.
        self.client = client or AsyncAuditLogsClient(
            token=cfg.token.get_secret_value() if cfg.token else "",
            base_url=cfg.api_url, retry_handlers=[],
        )  # fmt: skip
        self._sleep = sleep
        self._gap = 60.0 / cfg.max_calls_per_minute
        self._last_call = -1e9
        self.calls = 0

    async def _call(self, cursor: str | None, oldest: int) -> dict[str, Any]:
        for _ in range(_MAX_429):
            wait = self._last_call + self._gap - time.monotonic()
            if wait > 0:
                await self._sleep(wait)
            self._last_call = time.monotonic()
            self.calls += 1
            resp = await self.client.logs(
                action="anomaly", limit=self.cfg.page_size, oldest=oldest or None,
                cursor=cursor or None,
            )  # fmt: skip
            if resp.status_code == 429:
                retry = float(
                    resp.headers.get("Retry-After") or resp.headers.get("retry-after") or 1
                )
                logger.info("audit logs API rate limited; waiting %.0fs", retry)
                await self._sleep(retry)
                continue
            if resp.status_code != 200 or resp.body is None:
                error = (resp.body or {}).get("error") or f"HTTP {resp.status_code}"
                raise PollError(f"audit logs API: {error}")
            return resp.body
        raise PollError(f"audit logs API: still rate limited after {_MAX_429} tries")

    def _commit(
        self, entries: list[dict[str, Any]], cursor: str | None, oldest: int, high: int
    ) -> int:
        pairs = [(a, str(e.get("id"))) for e in entries if (a := entry_anomaly(e)) is not None]
        with self.service.lock, self.service.db.write() as session:
            counts = self.service.handle(
                session, [a for a, _ in pairs], utcnow(), source="slack_audit",
                refs=[r for _, r in pairs],
            )  # fmt: skip
            store.save_poller_position(session, POLLER_NAME, cursor, oldest, high)
        return sum(counts.values())

    async def poll_once(self) -> int:
        """Read every new page; returns the number of anomalies newly decided on."""
        with self.service.db.read() as session:
            cursor, oldest, high = store.poller_position(session, POLLER_NAME)
        decided = 0
        while True:
            body = await self._call(cursor, oldest)
            entries = [e for e in body.get("entries") or [] if isinstance(e, dict)]
            for e in entries:
                if isinstance(e.get("date_create"), int):
                    high = max(high, e["date_create"])
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
            # Done paging: next time start from the newest second seen (inclusive, deduped).
            new_oldest = oldest if cursor else max(oldest, high)
            decided += await asyncio.to_thread(self._commit, entries, cursor, new_oldest, high)
            if cursor is None:
                break
        if decided:
            self.service.wake()
        return decided
