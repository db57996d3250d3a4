"""slack_sdk decides whether to build its debug lines from its *own* logger's level
(``logger.level <= DEBUG``), not the effective one. Left at NOTSET (0), every Web API call
formatted the whole request (blocks included) and response into strings nobody logged: about
4% of the service's CPU at 200 DMs a second (issue #15's profile). configure_logging gives those
loggers the level that is really in force."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.config import LoggingConfig
from securitybot.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    client_logger = AsyncWebClient().logger
    names = ["", "slack_sdk", client_logger.name]
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level) for n in names}
    yield
    for n, (handlers, level) in saved.items():
        logging.getLogger(n).handlers[:] = handlers
        logging.getLogger(n).setLevel(level)


def test_the_slack_client_does_not_format_debug_lines_at_info(restore_logging: None) -> None:
    configure_logging(LoggingConfig(level="INFO"))
    logger = AsyncWebClient().logger
    assert not logger.isEnabledFor(logging.DEBUG)
    assert logger.level > logging.DEBUG  # the check slack_sdk makes before formatting


def test_the_slack_clients_level_is_the_one_set_for_slack_sdk(restore_logging: None) -> None:
    configure_logging(LoggingConfig(level="ERROR"))
    logger = AsyncWebClient().logger
    assert logger.level == logging.getLogger("slack_sdk").level == logging.ERROR
