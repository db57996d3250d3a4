"""At INFO the log says what the service does: no Alembic chatter before `serve`'s first line
(only `migrate` shows its "Running upgrade" lines), and no line per Prometheus scrape or probe."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from securitybot.config import LoggingConfig
from securitybot.logs import configure_logging
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.api.conftest import api_settings

ALEMBIC = logging.getLogger("alembic.runtime.migration")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    names = ["", "alembic"]
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level) for n in names}
    yield
    for n, (handlers, level) in saved.items():
        logging.getLogger(n).handlers[:] = handlers
        logging.getLogger(n).setLevel(level)


def test_alembic_speaks_at_info_only_for_migrate(restore_logging: None) -> None:
    configure_logging(LoggingConfig(level="INFO"))
    assert not ALEMBIC.isEnabledFor(logging.INFO)
    configure_logging(LoggingConfig(level="INFO"), migrations=True)
    assert ALEMBIC.isEnabledFor(logging.INFO)


def test_scrapes_and_probes_log_at_debug_other_requests_at_info(
    db: Database, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="securitybot.access")
    _rt, app = build_service(api_settings(db_url), db)
    with TestClient(app) as client:
        for path in ("/metrics", "/healthz", "/readyz", "/api/v1/alerts"):
            client.get(path)
    levels = {r.getMessage().split()[1]: r.levelno for r in caplog.records
              if r.name == "securitybot.access"}  # fmt: skip
    assert levels["/metrics"] == levels["/healthz"] == levels["/readyz"] == logging.DEBUG
    assert levels["/api/v1/alerts"] == logging.INFO  # a 401, and every API call, is kept
