"""Every key of the configuration, at whatever depth, means the same from config.yaml, from
``SECURITYBOT_<SECTION>__<KEY>...`` and from its ``_FILE`` form (issue #28.1).

The keys are not listed by hand: they are walked from the Settings model, so a key added later
is covered without touching this file. Each one is given a value other than its default; the
three ways of setting it must give the same settings (or the same one-line error, which names
that key), and the environment must outrank the file, which outranks the default.
"""

from __future__ import annotations

import ipaddress
import json
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from securitybot.config import ConfigError, Settings, load_config

# aer.stream is off unless configured, and on it needs a key of 32+ characters.
SIGNING_KEY = "0123456789abcdef0123456789abcdef"
SECRET = "probe-secret-0123456789abcdef0123456789abcdef"


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def _leaves(model: type[BaseModel], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key that holds a value (a section, or a section of a section, is walked into)."""
    for name, field in model.model_fields.items():
        inner = _models(field.annotation)
        if len(inner) == 1:
            yield from _leaves(inner[0], (*path, name))
        else:
            yield (*path, name)


def _field(path: tuple[str, ...]) -> Any:
    model: type[BaseModel] = Settings
    for name in path[:-1]:
        model = _models(model.model_fields[name].annotation)[0]
    return model.model_fields[path[-1]]


def _annotation(path: tuple[str, ...]) -> Any:
    if path[0] == "adapters":  # an entry of the adapters mapping
        return typing.get_args(Settings.model_fields["adapters"].annotation)[1]
    return _field(path).annotation


def _default(path: tuple[str, ...]) -> Any:
    value: Any = Settings()
    for name in path:
        value = getattr(value, name, None)
    return value


def _value(annotation: Any, default: Any) -> Any:
    """A value of ``annotation`` other than ``default``."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Annotated:
        return _value(args[0], default)
    if origin is Literal:
        return next(v for v in typing.get_args(annotation) if v != default)
    if annotation is bool:
        return not default
    if annotation is int:
        return (default or 0) + 1
    if annotation is float:
        return (default or 0) + 1.5
    if SecretStr in args:
        return SECRET
    if annotation is str or (origin in (typing.Union, types.UnionType) and args == [str]):
        return "probe"
    if _models(annotation):
        return {}  # a mapping of a section: its defaults
    if origin is list:
        return [] if default else [_value(args[0], None)]
    if origin is dict:
        return {"probe": _value(args[1], None)}
    if annotation is Any:
        return {}
    if ipaddress.IPv4Network in args:
        return "10.0.0.0/8"
    raise AssertionError(f"no probe for {annotation}")  # a new kind of key: teach the test


# Keys whose values have a shape of their own, named by the end of the key: a probe of the
# right type that the key's own validation refuses would test that validation, not the route.
SHAPED = {
    "url": "https://probe.example.com/",
    "webhook": "https://probe.example.com/hook",
    "_at": "07:30",
    "start": "07:30",
    "end": "09:45",  # not 19:30: unquoted, YAML 1.1 reads that as a number
    "_tz": "Europe/Berlin",
    "locale": "de",
    "routing_key": "0123456789abcdef0123456789abcdef",
}


def _probe(path: tuple[str, ...]) -> str:
    """The value as a person would type it (YAML text, JSON for structures)."""
    annotation = _annotation(path)
    shaped = next((v for end, v in SHAPED.items() if path[-1].endswith(end)), None)
    if (
        shaped is not None
        and annotation not in (bool, float, int)
        and typing.get_origin(annotation) is not list
    ):
        return shaped
    value = _value(annotation, _default(path))
    return value if isinstance(value, str) else json.dumps(value)


def _stem(path: tuple[str, ...]) -> tuple[str, ...] | None:
    """``x_file`` beside ``x``: a YAML key naming the file that holds ``x``. In the environment
    that name is ``x``'s own ``_FILE`` form, which means the same (tested apart)."""
    name = path[-1].removesuffix("_file")
    if name == path[-1]:
        return None
    model = Settings if len(path) == 1 else _models(_field(path[:-1]).annotation)[0]
    return (*path[:-1], name) if name in model.model_fields else None


# adapters is a section whose keys are the adapters' names: SECURITYBOT_ADAPTERS__SPLUNK=...
# (a top-level name without "__" is not configuration: SECURITYBOT_CONFIG, SECURITYBOT_TOKEN).
KEYS = sorted(
    {("adapters", "splunk") if k == ("adapters",) else k for k in _leaves(Settings)}
    - {k for k in _leaves(Settings) if _stem(k)}
)
FILE_KEYS = sorted(k for k in _leaves(Settings) if _stem(k))


def _env_name(path: tuple[str, ...]) -> str:
    return "SECURITYBOT_" + "__".join(p.upper() for p in path)


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    tree: Any = value
    for name in reversed(path):
        tree = {name: tree}
    return typing.cast(dict[str, Any], tree)


def _outcome(path: Path, environ: dict[str, str]) -> tuple[str, Any]:
    try:
        return "ok", load_config(path, environ=environ).model_dump()
    except ConfigError as exc:
        return "error", str(exc)


def _read(settings: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = settings
    for name in path:
        value = None if value is None else value.get(name)
    return value


def _base(path: tuple[str, ...]) -> dict[str, str]:
    """What a key needs beside it: aer.stream's others need its signing key."""
    if path[:2] != ("aer", "stream") or path == ("aer", "stream", "signing_key"):
        return {}
    return {"SECURITYBOT_AER__STREAM__SIGNING_KEY": SIGNING_KEY}


@pytest.mark.parametrize("path", KEYS, ids=[".".join(k) for k in KEYS])
def test_a_key_means_the_same_in_the_file_the_environment_and_a_secret_file(
    tmp_path: Path, path: tuple[str, ...]
) -> None:
    probe = _probe(path)
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    in_file = tmp_path / "config.yaml"
    in_file.write_text(yaml.safe_dump(_nest(path, yaml.safe_load(probe))))
    secret = tmp_path / "secret"
    secret.write_text(probe + "\n")
    base = _base(path)

    from_file = _outcome(in_file, base)
    from_env = _outcome(empty, {**base, _env_name(path): probe})
    from_secret = _outcome(empty, {**base, _env_name(path) + "_FILE": str(secret)})

    assert from_env == from_file, f"{_env_name(path)}={probe}"
    assert from_secret == from_file, f"{_env_name(path)}_FILE"
    kind, result = from_file
    dotted = ".".join(path)
    if kind == "error":
        # Refused on its merits (a value the key does not take), never as an unknown key.
        # ("aer.defaults.probe: unknown key" is the probe's own key, inside this one.)
        assert f"{dotted}: unknown key" not in result
        assert f"{path[-2] if len(path) > 1 else ''}" in result and "unknown key (" not in result
    else:
        assert _read(result, path) != _read(Settings().model_dump(), path), dotted


def test_nearly_every_key_takes_its_probe() -> None:
    # The test above is only as strong as the share of keys it sets for real: a probe refused
    # for most keys would prove little, so most must load.
    loaded = 0
    for path in KEYS:
        empty = Path("/dev/null")
        env = {**_base(path), _env_name(path): _probe(path)}
        loaded += _outcome(empty, env)[0] == "ok"
    assert loaded >= 0.8 * len(KEYS), f"{loaded} of {len(KEYS)} keys took their probe"


def test_the_environment_outranks_the_file_which_outranks_the_default(tmp_path: Path) -> None:
    # README "Configuration": "Variables win over the file"; a key in neither keeps its default.
    in_file, in_secret = tmp_path / "ca-in-file.pem", tmp_path / "ca-in-secret.pem"
    in_file.write_text("file")
    in_secret.write_text("secret")
    path = tmp_path / "config.yaml"
    path.write_text(
        "aer:\n  audit_logs:\n    page_size: ${PAGE:-40}\n  stream:\n"
        f"    signing_key: {SIGNING_KEY}\n    tls:\n      ca: {in_file}\n"
    )
    assert load_config(path, environ={}).aer.audit_logs.page_size == 40
    assert load_config(path, environ={"PAGE": "30"}).aer.audit_logs.page_size == 30
    env = {"PAGE": "30", "SECURITYBOT_AER__AUDIT_LOGS__PAGE_SIZE": "20"}
    settings = load_config(path, environ=env)
    assert settings.aer.audit_logs.page_size == 20
    assert settings.aer.audit_logs.api_url == Settings().aer.audit_logs.api_url  # default
    stream = settings.aer.stream
    assert stream is not None and stream.tls.ca == str(in_file)
    secret = tmp_path / "ca-path"
    secret.write_text(f"{in_secret}\n")
    env = {"SECURITYBOT_AER__STREAM__TLS__CA_FILE": str(secret)}
    stream = load_config(path, environ=env).aer.stream
    assert stream is not None and stream.tls.ca == str(in_secret)


@pytest.mark.parametrize("path", FILE_KEYS, ids=[".".join(k) for k in FILE_KEYS])
def test_a_file_key_and_its_environment_name_read_the_same_secret(
    tmp_path: Path, path: tuple[str, ...]
) -> None:
    stem = _stem(path)
    assert stem is not None
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    in_file = tmp_path / "config.yaml"
    in_file.write_text(yaml.safe_dump(_nest(path, str(secret))))
    from_file = load_config(in_file, environ={})
    from_env = load_config(empty, environ={_env_name(path): str(secret)})
    for settings in (from_file, from_env):
        value = _read(settings.model_dump(), stem)
        assert isinstance(value, SecretStr) and value.get_secret_value() == SECRET
