"""Falco's own ``http_output`` (like Splunk's webhook action) cannot send headers, so its token
travels in the URL: ``?token=``. That token must reach no log line, uvicorn's request lines
(``logging.access_log``) included."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from securitybot.logs import configure_logging
from securitybot.service import build_service, uvicorn_config
from securitybot.store.db import Database
from tests.adapters.conftest import FALCO_TOKEN, adapter_settings, sample
from tests.e2e.harness import free_port
from tests.uvicorn_thread import serving


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide loggers; put them back for the other tests."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level,
                 logging.getLogger(n).propagate) for n in names}  # fmt: skip
    yield
    for n, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(n)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def test_a_falco_url_token_authenticates_and_is_never_logged(
    db: Database, db_url: str, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = adapter_settings(db_url, logging={"level": "DEBUG", "access_log": True})
    configure_logging(settings.logging)
    _runtime, app = build_service(settings, db)
    config = uvicorn_config(app, settings, host="127.0.0.1", port=free_port())
    with (
        serving(config) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.config.port}") as http,
    ):
        ok = http.post(f"/api/v1/alerts/falco?token={FALCO_TOKEN}",
                       json=sample("falco_http_output"))  # fmt: skip
        wrong = http.post("/api/v1/alerts/falco?token=not-the-token-but-secret-too",
                          json=sample("falco_http_output"))  # fmt: skip

    assert ok.status_code == 201, ok.text
    assert ok.json()["source"] == "falco-k8s"
    assert wrong.status_code == 401
    logged = capsys.readouterr().err
    assert "/api/v1/alerts/falco?token=[redacted]" in logged  # uvicorn's request line, redacted
    assert FALCO_TOKEN not in logged and "not-the-token-but-secret-too" not in logged
