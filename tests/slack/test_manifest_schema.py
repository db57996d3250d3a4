"""``slack-manifest.yaml`` is a manifest Slack accepts, org-wide deployment on: it validates
against Slack's own app manifest JSON schema (slackapi/manifest-schema, vendored in
``tests/slack/manifest_schema/`` with its source), and so would a manifest that breaks it not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, ValidationError
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).parent / "manifest_schema"
TAG = "v0.5.0"
BASE = f"https://raw.githubusercontent.com/slackapi/manifest-schema/{TAG}/schemas/"
VERSIONED = ("manifest.schema.1.0.0.json", "manifest.schema.2.0.0.json")


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return data


def validator() -> Draft7Validator:
    """The main schema, with the versioned schemas it names by URL served from the copies
    (``oneOf`` tries every branch, so both must resolve; ours, without ``_metadata``, is 1.0.0)."""
    registry: Registry[Any] = Registry().with_resources(
        (BASE + name, Resource.from_contents(_json(name))) for name in VERSIONED
    )
    return Draft7Validator(_json("manifest.schema.json"), registry=registry)


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())
    return data


def test_the_vendored_schema_is_the_one_it_names() -> None:
    refs = json.dumps(_json("manifest.schema.json"))
    for name in ("manifest.schema.json", *VERSIONED):
        assert name == "manifest.schema.json" or BASE + name in refs
        Draft7Validator.check_schema(_json(name))


def test_the_manifest_validates_against_slacks_schema() -> None:
    errors = sorted(validator().iter_errors(manifest()), key=lambda e: list(e.path))
    assert not errors, "\n".join(
        f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors
    )


def test_with_org_wide_deployment_on_and_the_grid_events_subscribed() -> None:
    data = manifest()
    assert data["settings"]["org_deploy_enabled"] is True
    assert {"team_access_granted", "team_access_revoked"} <= set(
        data["settings"]["event_subscriptions"]["bot_events"]
    )
    validator().validate(data)


@pytest.mark.parametrize(
    "path, value",
    [
        (("settings", "org_deploy_enabled"), "yes"),  # must be a boolean
        (("display_information", "name"), ""),  # too short
        (("features", "slash_commands", 0, "command"), "securitybot"),  # no leading slash
        (("settings", "unknown_setting"), True),  # no additional properties
    ],
)
def test_the_schema_refuses_a_broken_manifest(path: tuple[Any, ...], value: Any) -> None:
    """The check has teeth: each of these is a manifest Slack would refuse."""
    data = copy.deepcopy(manifest())
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        validator().validate(data)
