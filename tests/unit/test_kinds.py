from __future__ import annotations

from pathlib import Path

import pytest

from securitybot.config import ConfigError
from securitybot.kinds import (
    AlertKind,
    Severity,
    always_mention,
    escalation_severity,
    load_kinds,
    render,
)
from securitybot.shipped import ALERTS_DIR


def test_the_shipped_kinds_load_and_cover_the_required_set() -> None:
    kinds = load_kinds(ALERTS_DIR)
    for name in (
        "sensitive_command",
        "new_login_location",
        "ssh_key_added",
        "mass_download",
        "default",
    ):
        assert name in kinds
    assert kinds.get("ssh_key_added").always_escalate is True
    assert kinds.get("sensitive_command").ack_timeout == 600.0


def test_an_unknown_kind_falls_back_to_default() -> None:
    kinds = load_kinds(ALERTS_DIR)
    assert kinds.get("never_heard_of_it").name == "default"
    assert kinds.get(None).name == "default"


def test_templates_render_known_fields_and_leave_unknown_ones_visible() -> None:
    assert (
        render("`{command}` on {host}", {"command": "flurb -export"}) == "`flurb -export` on {host}"
    )


def test_a_broken_kind_file_names_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text("title: '{title}'\nmessage: hi\n")
    (tmp_path / "odd.yaml").write_text("title: x\nmessage: y\nseverity: apocalyptic\n")
    with pytest.raises(ConfigError, match=r"odd\.yaml: severity"):
        load_kinds(tmp_path)


def test_default_is_required(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("title: x\nmessage: y\n")
    with pytest.raises(ConfigError, match="'default' kind is missing"):
        load_kinds(tmp_path)


@pytest.mark.parametrize("severity", ["low", "medium", "high", "critical"])
def test_a_fraud_report_is_critical_and_mentioned_whatever_the_kind(severity: str) -> None:
    kind = AlertKind(name="k", severity=Severity(severity), title="t", message="m")
    assert escalation_severity(kind, "duo_fraud") == Severity.CRITICAL
    assert always_mention("duo_fraud")


@pytest.mark.parametrize("reason", ["duo_denied", "not_me", "no_response", None])
def test_other_reasons_keep_the_kinds_severity(reason: str | None) -> None:
    kind = AlertKind(name="k", severity=Severity.MEDIUM, title="t", message="m")
    assert escalation_severity(kind, reason) == Severity.MEDIUM
    assert not always_mention(reason)
