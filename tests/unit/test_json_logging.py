"""With ``logging.json`` on, every line on stderr is one JSON object, uvicorn's included."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from securitybot.config import Settings
from securitybot.logs import configure_logging
from securitybot.service import uvicorn_config
from tests.uvicorn_thread import serving


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide loggers; put them back for the other tests."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level,
            logging.getLogger(n).propagate)
        for n in names
    }  # fmt: skip
    yield
    for n, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(n)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("a bug\nwith a second line")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_uvicorn_tracebacks_and_access_lines_are_json(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.model_validate({"logging": {"json": True, "access_log": True}})
    configure_logging(settings.logging)
    app = Starlette(routes=[Route("/ok", ok), Route("/boom", boom)])
    with (
        serving(uvicorn_config(app, settings, port=free_port())) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.config.port}") as http,
    ):
        assert http.get("/ok").status_code == 200
        assert http.get("/boom").status_code == 500

    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # each line is JSON, or this raises
    assert any("Traceback" in r.get("exc_info", "") for r in records), lines
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("/ok" in r["message"] and "200" in r["message"] for r in access), lines
    assert any("/boom" in r["message"] and "500" in r["message"] for r in access), lines


def test_access_lines_are_off_by_default(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Request lines carry query strings, which can name people (?user=alice@...).
    settings = Settings.model_validate({"logging": {"json": True}})
    config = uvicorn_config(Starlette(), settings, port=free_port())
    assert config.access_log is False
