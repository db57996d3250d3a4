"""Slack ids are upper-case letters and digits (U012AB3CD, C012AB3CD, S0614TZR7): no `_`.

docs.slack.dev/reference/objects/user-object shows ids like ``W012A3CDE``; the patterns were
once widened to take ``U_ALICE``-style fixtures, which let typos and junk through as ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from securitybot.config import ConfigError, load_config
from securitybot.ingest.schema import as_person
from securitybot.slack.commands import _MENTION_RE


@pytest.mark.parametrize("good", ["U012AB3CD", "W012A3CDE", "UALICE"])
def test_real_slack_user_ids_are_people(good: str) -> None:
    assert as_person(good) == good


@pytest.mark.parametrize("bad", ["U_ALICE", "W_BOB", "U012_AB3CD", "u012ab3cd"])
def test_ids_with_underscores_or_lower_case_are_not_slack_ids(bad: str) -> None:
    assert as_person(bad) is None


def test_a_mention_with_an_underscore_is_not_a_user() -> None:
    assert _MENTION_RE.match("<@U012AB3CD|alice>")
    assert not _MENTION_RE.match("<@U_ALICE|alice>")


@pytest.mark.parametrize(
    "text",
    [
        "escalation:\n  tiers:\n    - mention: S_SEC\n",
        "escalation:\n  responders: [U_LEAD]\n",
        "aer:\n  contacts:\n    T1:\n      primary_owner: U_OWNER\n",
        "aer:\n  contacts:\n    T1:\n      security_admins: [U_ADMIN]\n",
    ],
)
def test_config_refuses_ids_with_underscores(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path, environ={})
