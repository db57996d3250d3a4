from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from securitybot.store.db import Database, migrate
from tests.dbs import database_url

BACKENDS = ["sqlite", "postgres"]

# Many tests start `securitybot serve`, workers and CLI commands as subprocesses, often several
# times each (kill -9 and restart). With PYTHONDONTWRITEBYTECODE set (as in some CI images) every
# one of them compiled all of securitybot's ~270 modules again; without it the first writes the
# bytecode (__pycache__ is git- and docker-ignored) and the others load it.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    with database_url(backend, tmp_path) as url:
        yield url


@pytest.fixture
def empty_db(db_url: str) -> Iterator[Database]:
    db = Database.from_url(db_url)
    yield db
    db.dispose()


@pytest.fixture
def db(empty_db: Database) -> Database:
    migrate(empty_db.engine)
    return empty_db
