"""Finding and loading the configuration: one call, one line naming the key when it is wrong."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError

from securitybot.config.base import ConfigError
from securitybot.config.settings import Settings
from securitybot.config.sources import LOADING, LoadContext

DEFAULT_CONFIG_PATH = "config.yaml"


def find_config_path(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """``--config PATH``, else ``$SECURITYBOT_CONFIG``, else ``./config.yaml``."""
    return Path(cli_path or environ.get("SECURITYBOT_CONFIG") or DEFAULT_CONFIG_PATH)


def _first_error_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling against config.yaml)"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"config error: {loc}: {msg}{suffix}"


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    required: bool = False,
) -> Settings:
    """config.yaml (``${VAR:-default}`` substituted), overridden by ``SECURITYBOT_A__B__C``
    variables and their ``_FILE`` forms, validated. Raises :class:`ConfigError` with one line."""
    env = os.environ if environ is None else environ
    cfg_path = find_config_path(str(path) if path else None, env)
    if not cfg_path.exists() and (required or path):
        raise ConfigError(f"config error: {cfg_path}: file not found")
    token = LOADING.set(LoadContext(cfg_path if cfg_path.exists() else None, env))
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_first_error_line(exc)) from None
    except SettingsError as exc:  # a source could not read a value; name what it said
        raise ConfigError(f"config error: {exc}") from None
    finally:
        LOADING.reset(token)
