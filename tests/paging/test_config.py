"""Issue 29: the paging configuration (public contract names), secrets from files, and docs that
no longer promise what the fallback webhook cannot do (item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.config import ConfigError, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"


def test_paging_keys_load_with_their_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"paging:\n  pagerduty:\n    routing_key: {ROUTING_KEY}\n")
    s = load_config(cfg, environ={})
    assert s.paging.pagerduty.routing_key is not None
    assert s.paging.pagerduty.routing_key.get_secret_value() == ROUTING_KEY
    assert s.paging.pagerduty.base_url == "https://events.pagerduty.com"
    assert s.paging.opsgenie.base_url == "https://api.opsgenie.com"
    assert s.paging.severities == ["high", "critical"]
    assert s.paging.when == "always"
    assert s.paging.pagerduty.enabled and not s.paging.opsgenie.enabled


def test_secrets_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "rk").write_text(ROUTING_KEY + "\n")
    (tmp_path / "og").write_text("og-key\n")
    (tmp_path / "wh").write_text("webhook-secret\n")
    env = {
        "SECURITYBOT_PAGING__PAGERDUTY__ROUTING_KEY_FILE": str(tmp_path / "rk"),
        "SECURITYBOT_PAGING__PAGERDUTY__WEBHOOK_SECRET_FILE": str(tmp_path / "wh"),
        "SECURITYBOT_PAGING__OPSGENIE__API_KEY_FILE": str(tmp_path / "og"),
        "SECURITYBOT_PAGING__OPSGENIE__BASE_URL": "https://api.eu.opsgenie.com",
        "SECURITYBOT_PAGING__PAGERDUTY__BASE_URL": "https://events.eu.pagerduty.com",
    }
    (tmp_path / "config.yaml").write_text("{}\n")
    s = load_config(tmp_path / "config.yaml", environ=env)
    assert s.paging.pagerduty.routing_key is not None
    assert s.paging.pagerduty.routing_key.get_secret_value() == ROUTING_KEY
    assert s.paging.opsgenie.api_key is not None
    assert s.paging.opsgenie.api_key.get_secret_value() == "og-key"
    assert s.paging.opsgenie.base_url == "https://api.eu.opsgenie.com"
    assert s.paging.pagerduty.base_url == "https://events.eu.pagerduty.com"


def test_check_config_never_shows_the_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "paging:\n"
        f"  pagerduty: {{routing_key: {ROUTING_KEY}, webhook_secret: whsecret-123,"
        " api_token: pdtoken-456}\n"
        "  opsgenie: {api_key: genie-789}\n"
    )
    out = CliRunner().invoke(main, ["check-config", "--config", str(cfg)]).output
    for secret in (ROUTING_KEY, "whsecret-123", "pdtoken-456", "genie-789"):
        assert secret not in out


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("paging: {when: sometimes}", "paging.when"),
        ("paging: {severities: [urgent]}", "paging.severities"),
        ("paging: {pagerduty: {routing_key: short}}", "32 characters"),
        ("paging: {pagerduty: {base_url: ftp://x}}", "http(s) URL"),
        ("paging: {opsgenie: {responders: [{type: robot, name: x}]}}", "responders"),
        ("paging: {when: outside_business_hours}", "policy.business_hours"),
    ],
)
def test_bad_paging_config_is_one_line_naming_the_key(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(cfg, environ={})


def test_a_kind_may_say_page_always_or_never(tmp_path: Path) -> None:
    from securitybot.kinds import load_kinds

    kinds = tmp_path / "kinds"
    kinds.mkdir()
    (kinds / "default.yaml").write_text("title: t\nmessage: m\npage: never\n")
    (kinds / "loud.yaml").write_text("title: t\nmessage: m\nseverity: low\npage: always\n")
    registry = load_kinds(tmp_path)
    assert registry.get("default").page == "never"
    assert registry.get("loud").page == "always"
    (kinds / "bad.yaml").write_text("title: t\nmessage: m\npage: sometimes\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: page"):
        load_kinds(tmp_path)


def test_the_fallback_webhook_no_longer_claims_pager_compatibility() -> None:
    # Its body is our own JSON, which neither PagerDuty's Events API nor Opsgenie's Alert API
    # accepts: the docs say so, and point at `paging` instead.
    texts = [
        (REPO_ROOT / "README.md").read_text(),
        (REPO_ROOT / "config.yaml").read_text(),
        (REPO_ROOT / "securitybot" / "flows" / "escalation_posts.py").read_text(),
    ]
    texts += [p.read_text() for p in (REPO_ROOT / "docs").glob("*.md")]
    for text in texts:
        for line in text.splitlines():
            if "fallback" in line.lower():
                assert "PagerDuty-" not in line and "Opsgenie-style" not in line, line
                assert "PagerDuty/Opsgenie-style" not in line, line
    readme = (REPO_ROOT / "README.md").read_text()
    assert "not a PagerDuty or Opsgenie integration" in readme


def test_the_config_example_shows_paging() -> None:
    example = (REPO_ROOT / "config.yaml").read_text()
    assert "paging:" in example and "routing_key" in example and "api_key" in example
