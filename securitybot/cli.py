"""Command line: serve | migrate | check-config | send-alert | demo | hash-password |
purge | erase-person | export."""

from __future__ import annotations

import logging
import sys

import click

from securitybot.cli_support import CONFIG_HELP, fail, settings_from
from securitybot.config import ConfigError
from securitybot.logs import configure_logging
from securitybot.masking import mask_url, scrub
from securitybot.store.db import Database, SchemaNotReady, migrate, normalise_url

_fail = fail
_settings = settings_from


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="securitybot", prog_name="securitybot")
def main() -> None:
    """Securitybot: ask the person who did it, verify with Duo, escalate the rest."""


@main.command("migrate")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def migrate_cmd(config: str | None, revision: str) -> None:
    """Create or upgrade the database schema (safe to run from several replicas)."""
    settings = _settings(config)
    configure_logging(settings.logging, settings, migrations=True)
    url = settings.database.url
    db = Database.from_url(url)
    try:
        migrate(db.engine, revision)
    except Exception as exc:  # surface driver errors as one line, not a traceback
        line = f"migrate failed: {type(exc).__name__}: {exc}".splitlines()[0]
        _fail(scrub(line, url, normalise_url(url)), 1)
    finally:
        db.dispose()
    click.echo(f"database at {mask_url(normalise_url(url))} is up to date")


@main.command("serve")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--host", default=None, help="Override server.host.")
@click.option("--port", type=int, default=None, help="Override server.port.")
@click.option("--socket-mode", is_flag=True, help="Also receive Slack events over Socket Mode.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Service processes sharing the port (PostgreSQL only).")  # fmt: skip
def serve(
    config: str | None, host: str | None, port: int | None, socket_mode: bool, workers: int
) -> None:
    """Run the HTTP API, the Slack app and the background workers."""
    settings = _settings(config)
    configure_logging(settings.logging, settings)
    from securitybot.service import ServiceError, run_service
    from securitybot.workers import WorkersError, check_workers, run_workers

    try:
        check_workers(settings, workers, socket_mode)
        if workers > 1:
            sys.exit(run_workers(
                settings, workers, host or settings.server.host, port or settings.server.port
            ))  # fmt: skip
        run_service(settings, host=host, port=port, socket_mode=socket_mode)
    except (ConfigError, SchemaNotReady, ServiceError, WorkersError) as exc:
        _fail(str(exc), 1)


@main.command("hash-password")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The password (asked for when not given; avoid passing it on a shared shell).",
)
def hash_password_cmd(password: str) -> None:
    """Print an argon2 hash for dashboard.users[].password_hash."""
    if len(password) < 12:
        _fail("hash-password: use at least 12 characters")
    from securitybot.dashboard.auth import hash_password

    click.echo(hash_password(password))


logging.captureWarnings(True)

# Each command beside what it does, added to the main group here.
from securitybot.aer.cli import aer  # noqa: E402
from securitybot.cli_check_config import check_config  # noqa: E402
from securitybot.cli_demo import demo  # noqa: E402
from securitybot.cli_send_alert import send_alert  # noqa: E402

for _command in (aer, check_config, demo, send_alert):
    main.add_command(_command)

# `securitybot purge | erase-person | export` (the data lifecycle) live in securitybot.privacy.
from securitybot.privacy.cli import COMMANDS as PRIVACY_COMMANDS  # noqa: E402

for _command in PRIVACY_COMMANDS:
    main.add_command(_command)
