"""What every command module shares: the --config help, reading the config, failing in one
line. Command modules import this, never ``securitybot.cli`` (which imports them)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from securitybot.config import ConfigError, Settings, load_config

CONFIG_HELP = "Config file (default: $SECURITYBOT_CONFIG, else ./config.yaml)."


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def settings_from(config: str | None) -> Settings:
    try:
        return load_config(config)
    except ConfigError as exc:
        fail(str(exc))
