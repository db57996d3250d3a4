"""What every command module shares: the --config help, reading the config, failing in one
line. Command modules import this, never ``securitybot.cli`` (which imports them)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import click

from securitybot.config import ConfigError, Settings, load_config

if TYPE_CHECKING:
    from securitybot.store.db import Database

CONFIG_HELP = "Config file (default: $SECURITYBOT_CONFIG, else ./config.yaml)."


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def settings_from(config: str | None) -> Settings:
    try:
        return load_config(config)
    except ConfigError as exc:
        fail(str(exc))


@contextmanager
def checked_db(settings: Settings) -> Iterator[Database]:
    """The configured database for a command that needs its schema as the code expects:
    "not migrated" ends the command in one line (exit 1); disposed when the command is done.
    (Imported here, not at the top: ``--help`` stays fast.)"""
    from securitybot.store.db import Database, SchemaNotReady, check_schema

    db = Database.from_url(settings.database.url)
    try:
        try:
            check_schema(db.engine)
        except SchemaNotReady as exc:
            fail(str(exc), 1)
        yield db
    finally:
        db.dispose()
