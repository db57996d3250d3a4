"""Alembic environment: used programmatically (securitybot migrate) and by the alembic CLI."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from securitybot.store.db import normalise_url
from securitybot.store.models import Base
from securitybot.store.slack_installations import METADATA as SLACK_OAUTH

config = context.config
# Ours, and slack_sdk's installation and state stores' tables (store/slack_installations.py).
target_metadata = [Base.metadata, SLACK_OAUTH]


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # A caller that already holds a connection (securitybot migrate, tests) passes it in, so we
    # neither open a second one nor call fileConfig (which would disable the app's loggers).
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    section = config.get_section(config.config_ini_section) or {}
    section["sqlalchemy.url"] = normalise_url(section.get("sqlalchemy.url", ""))
    engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
