"""Issue 24 item 4, in process: what a database outage does to the log and to an answer."""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
import uuid
from typing import Any

import pytest
from slack_bolt import BoltResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.requests import Request

from securitybot.app import _database_error
from securitybot.masking import Scrubber, ScrubbingFormatter
from securitybot.store.outage import Outage, OutageLogFilter, is_unavailable


def refused() -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))


def logger_with(outage: Outage) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(OutageLogFilter(outage))
    handler.setFormatter(ScrubbingFormatter(logging.Formatter("%(message)s"), Scrubber()))
    log = logging.getLogger(f"test.outage.{uuid.uuid4().hex}")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    return log, out


def test_a_thousand_failures_make_one_line_without_a_traceback_then_one_when_back() -> None:
    outage = Outage(interval=60)
    log, out = logger_with(outage)
    for i in range(1000):
        try:
            raise RuntimeError("claim failed") from refused()
        except RuntimeError:
            log.exception("outbox claim %d failed", i)
    log.warning("an unrelated warning")  # never held back
    outage.worked()
    lines = out.getvalue().splitlines()
    assert "Traceback" not in out.getvalue()
    assert lines[0].startswith("database unavailable: OperationalError: database is locked")
    assert "outbox claim 0 failed" in lines[0]
    assert lines[1] == "an unrelated warning"
    assert len(lines) == 2  # the "back" line goes to its own logger, tested below


def test_the_next_interval_says_how_many_lines_were_held_back() -> None:
    outage = Outage(interval=0.0)
    log, out = logger_with(outage)
    outage.interval = 3600
    for _ in range(5):
        log.error("sweep failed", exc_info=refused())
    outage.interval = 0.0
    log.error("sweep failed", exc_info=refused())
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "4 similar lines held back" in lines[1], lines


def test_recovery_is_logged_once_and_only_after_a_reported_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage(interval=60)
    outage.failed(refused())
    outage.worked()  # never reported: nothing to say
    assert not [r for r in caplog.records if "reachable again" in r.getMessage()]
    log, _ = logger_with(outage)
    log.error("x", exc_info=refused())
    outage.refuse(refused())
    assert outage.status() is not None and "locked" in outage.status()["reason"]  # type: ignore[index]
    outage.worked()
    outage.worked()
    back = [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(back) == 1 and "1 requests answered 503" in back[0]
    assert outage.status() is None


def test_only_outages_count_not_bugs_or_constraint_violations() -> None:
    assert is_unavailable(refused())
    assert is_unavailable(RuntimeError("wrapped").with_traceback(None)) is False
    assert not is_unavailable(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE")))
    assert not is_unavailable(ValueError("bug"))


def _request(path: str) -> Request:
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": path, "headers": [], "query_string": b"",
        "server": ("t", 80), "scheme": "http",
    }  # fmt: skip
    return Request(scope)


def test_the_api_answers_json_and_the_dashboard_a_page_both_503_with_retry_after() -> None:
    api = asyncio.run(_database_error(_request("/api/v1/alerts"), refused()))
    assert api.status_code == 503 and api.headers["retry-after"] == "5"
    assert b'"error":"database_unavailable"' in bytes(api.body)
    page = asyncio.run(_database_error(_request("/dashboard/alerts"), refused()))
    assert page.status_code == 503 and page.headers["retry-after"] == "5"
    assert page.media_type == "text/html" and b"database is unavailable" in bytes(page.body)
    bug = asyncio.run(
        _database_error(_request("/api/v1/alerts"), IntegrityError("x", {}, Exception("y")))
    )
    assert bug.status_code == 500


def test_a_slack_request_failing_on_the_database_is_a_503_slack_retries() -> None:
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from securitybot.slack import listeners

    app = AsyncApp(client=AsyncWebClient(token="xoxb-x"), signing_secret="s")
    listeners.register(app, None, lambda *_: None, "Duo")  # type: ignore[arg-type]
    response = BoltResponse(status=500, body="")
    handler = app._async_middleware_error_handler
    asyncio.run(handler.handle(error=refused(), request=_bolt_request(), response=response))
    assert response.status == 503 and response.headers["retry-after"] == ["5"]


def _bolt_request() -> Any:
    from slack_bolt.request.async_request import AsyncBoltRequest

    return AsyncBoltRequest(body='{"type":"event_callback"}', headers={})
