"""Where settings come from, lowest to highest: config.yaml (its ``${VAR:-default}`` references
substituted), then ``SECURITYBOT_<SECTION>__<KEY>...`` environment variables and their ``_FILE``
forms (a mounted secret), at any depth. pydantic-settings merges them and finds each key's field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, YamlConfigSettingsSource

from securitybot.config.base import ConfigError

ENV_PREFIX = "SECURITYBOT_"
ENV_DELIMITER = "__"
FILE_SUFFIX = "_FILE"

_ENV_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class LoadContext:
    """What one :func:`~securitybot.config.load_config` call reads: the file (None: no file)
    and the environment (the process's, or a test's mapping)."""

    path: Path | None
    environ: Mapping[str, str]


# Set only while load_config builds a Settings: elsewhere Settings(...) takes its arguments only.
LOADING: ContextVar[LoadContext | None] = ContextVar("securitybot_config_loading", default=None)


def _substitute(value: Any, environ: Mapping[str, str], where: str) -> Any:
    """``${VAR}`` and ``${VAR:-default}`` in every string of the YAML tree."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"config error: {where}: environment variable ${{{name}}} is not set")

        return _ENV_REF_RE.sub(repl, value)
    if isinstance(value, dict):
        return {
            k: _substitute(v, environ, f"{where}.{k}" if where else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class ConfigFileSource(YamlConfigSettingsSource):
    """config.yaml, with one-line errors and its ``${...}`` references substituted."""

    def __init__(self, settings_cls: type[BaseSettings], context: LoadContext) -> None:
        self._environ = context.environ
        super().__init__(settings_cls, yaml_file=context.path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            loaded = yaml.safe_load(file_path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"config error: {file_path}{where}: not valid YAML") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config error: {file_path}: the top level must be a mapping")
        substituted: dict[str, Any] = _substitute(loaded, self._environ, "")
        return substituted


def _section_variables(settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> list[str]:
    """The names that set a key: ``SECURITYBOT_<SECTION>__...``. Others with the prefix
    (SECURITYBOT_CONFIG, SECURITYBOT_TOKEN, ${SECURITYBOT_INGEST_TOKEN} in config.yaml) are not
    configuration. A section that does not exist is refused, as a typo in the file is."""
    found = []
    for name in environ:
        if not name.startswith(ENV_PREFIX) or ENV_DELIMITER not in name[len(ENV_PREFIX) :]:
            continue
        key = name[len(ENV_PREFIX) :]
        if key.upper().endswith(FILE_SUFFIX):
            key = key[: -len(FILE_SUFFIX)]
        path = key.lower().split(ENV_DELIMITER)
        if not all(path):
            continue
        if path[0] not in settings_cls.model_fields:
            raise ConfigError(
                f"config error: {path[0]}: unknown key (check the spelling against config.yaml)"
            )
        found.append(name)
    return found


class SectionEnvSource(EnvSettingsSource):
    """``SECURITYBOT_<SECTION>__<KEY>[__<KEY>...]=value``. Lists and mappings are YAML (JSON is
    YAML); scalars stay the text typed and the field coerces them ("8080", "10m")."""

    def __init__(self, settings_cls: type[BaseSettings], context: LoadContext) -> None:
        self._environ = context.environ
        super().__init__(
            settings_cls,
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=ENV_DELIMITER,
            env_ignore_empty=False,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {
            name.lower(): self._environ[name]
            for name in _section_variables(self.settings_cls, self._environ)
            if not name.upper().endswith(FILE_SUFFIX)
        }

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            return value  # the field's own validation names the key
        return parsed if isinstance(parsed, dict | list) else value


class SecretFileEnvSource(SectionEnvSource):
    """``SECURITYBOT_<SECTION>__..._<KEY>_FILE=/path``: the key's value is the file's content
    (a Docker or Kubernetes secret), trailing whitespace removed."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        upper = {name.upper() for name in self._environ}
        values: dict[str, str | None] = {}
        for name in _section_variables(self.settings_cls, self._environ):
            if not name.upper().endswith(FILE_SUFFIX):
                continue
            plain = name[: -len(FILE_SUFFIX)]
            if plain.upper() in upper:
                raise ConfigError(f"config error: {plain} and {name} are both set: use one of them")
            raw = self._environ[name]
            try:
                values[plain.lower()] = Path(raw).read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"config error: {name}: cannot read {raw!r}: {exc.strerror}"
                ) from None
        return values
