from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from securitybot.store.db import Database, migrate
from tests.dbs import database_url

BACKENDS = ["sqlite", "postgres"]


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
