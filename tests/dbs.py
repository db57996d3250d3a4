"""Test databases: a fresh SQLite file or a fresh PostgreSQL schema per test.

PostgreSQL is the production store, so it is never skipped silently: with CI=true an
unreachable server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("SECURITYBOT_TEST_POSTGRES_URL", DEFAULT_PG)


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


_pg_state: dict[str, str | None] = {}


def postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per run)."""
    if "problem" not in _pg_state:
        try:
            eng = sa.create_engine(_psycopg(postgres_base_url()))
            with eng.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            eng.dispose()
            _pg_state["problem"] = None
        except Exception as exc:  # any failure to connect counts
            _pg_state["problem"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return _pg_state["problem"]


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    msg = f"PostgreSQL at {postgres_base_url()} is unreachable ({problem})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg + " and CI=true: PostgreSQL tests must run", pytrace=False)
    pytest.skip(msg + " (set CI=true to make this a failure)")


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a brand-new schema, dropped afterwards."""
    require_postgres()
    schema = "t_" + uuid.uuid4().hex[:12]
    base = _psycopg(postgres_base_url())
    eng = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with eng.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        eng.dispose()


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "postgres":
        with postgres_schema_url() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'securitybot.db'}"
