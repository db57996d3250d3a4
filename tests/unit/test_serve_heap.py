"""`serve` starts with what start-up built frozen out of the garbage collector's walks."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from securitybot.config import Settings
from securitybot.service import run_service
from securitybot.store.db import Database, migrate


@pytest.fixture
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of this test process collects as before


def test_serve_freezes_the_start_up_heap_before_it_takes_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unfrozen_afterwards: None
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrate(Database.from_url(url).engine)
    frozen_at_start: list[int] = []

    def run(server: uvicorn.Server, sockets: object = None) -> None:
        frozen_at_start.append(gc.get_freeze_count())
        server.started = True  # as if it had served, then been stopped

    monkeypatch.setattr(uvicorn.Server, "run", run)
    run_service(Settings.model_validate({"database": {"url": url}, "server": {"port": 0}}))
    # The modules and the wired app alone are well over 50,000 objects.
    assert frozen_at_start and frozen_at_start[0] > 50_000
