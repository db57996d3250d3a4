from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from securitybot.store.db import Database, SchemaNotReady, check_schema, head_revision, migrate
from securitybot.store.models import Base
from securitybot.store.slack_installations import METADATA as SLACK_OAUTH


def test_migrations_build_the_whole_schema_from_empty(empty_db: Database) -> None:
    migrate(empty_db.engine)
    tables = set(inspect(empty_db.engine).get_table_names())
    assert {"alerts", "audit_log", "outbox", "alembic_version"} <= tables
    check_schema(empty_db.engine)  # does not raise


def test_models_and_migrations_agree(db: Database) -> None:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        # slack_sdk's installation and state stores' tables are not our models, but our
        # migrations build them: compared like ours, so a slack_sdk upgrade that changes them shows.
        diff = compare_metadata(ctx, [Base.metadata, SLACK_OAUTH])  # type: ignore[arg-type]
    assert diff == []


def test_an_unmigrated_database_is_refused_with_advice(empty_db: Database) -> None:
    with pytest.raises(SchemaNotReady, match="securitybot migrate"):
        check_schema(empty_db.engine)


def test_migrating_twice_is_harmless(db: Database) -> None:
    migrate(db.engine)
    check_schema(db.engine)
    assert head_revision() is not None
