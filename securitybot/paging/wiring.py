"""What paging adds to the service when a pager is configured: its outbox handlers and, with a
PagerDuty webhook secret, the route PagerDuty's webhooks come back to."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from securitybot.paging import webhook
from securitybot.paging.handlers import PagingHandlers
from securitybot.runtime import Runtime


def wire_paging(runtime: Runtime, routes: list[BaseRoute], gateway: Any) -> PagingHandlers | None:
    s = runtime.settings
    if not s.paging.enabled:
        return None
    handlers = PagingHandlers(
        runtime.db, s, runtime.kinds, runtime.notify_new_work, slack=gateway,
        responders=runtime.responders,
    )  # fmt: skip
    runtime.handlers.update(handlers.handlers())
    if s.paging.pagerduty.enabled and s.paging.pagerduty.webhook_secret is not None:
        routes.append(webhook.route(runtime.db, s.paging.pagerduty, runtime.notify_new_work))
    return handlers
