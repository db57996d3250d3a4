"""`dashboard.oidc`: checked at start with one line naming the key; the client secret comes from
the environment or a file and never shows in check-config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.config import ConfigError, load_config
from tests.dashboard.test_dashboard import SECRET

BASE = {
    "issuer": "https://example.okta.com",
    "client_id": "0oa1b2c3d4",
    "redirect_url": "https://securitybot.example.com/dashboard/oidc/callback",
}


def write(tmp_path: Path, oidc: dict[str, object], extra: str = "") -> Path:
    lines = [f"    {k}: {v!r}" if isinstance(v, str) else f"    {k}: {v}" for k, v in oidc.items()]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"dashboard:\n  enabled: true\n  session_secret: {SECRET}\n{extra}  oidc:\n"
        + "\n".join(lines)
        + "\n"
    )
    return cfg


def test_a_minimal_oidc_configuration_loads_with_documented_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, {**BASE, "client_secret": "s" * 40}))
    oidc = cfg.dashboard.oidc
    assert oidc is not None
    assert oidc.scopes == ["openid", "email", "profile"]
    assert oidc.roles_claim == ["groups"]
    assert oidc.clock_skew == 60
    assert cfg.dashboard.local_users is True


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"issuer": "http://idp.example.com"}, "dashboard.oidc.issuer"),  # plain http off-host
        ({"issuer": "https://idp.example.com/?tenant=x"}, "dashboard.oidc.issuer"),
        ({"scopes": "[email, profile]"}, "dashboard.oidc.scopes"),  # no openid
        ({"redirect_url": "https://securitybot.example.com/callback"}, "redirect_url"),
        ({"redirect_url": "/dashboard/oidc/callback"}, "redirect_url"),
        ({"clock_skew": "10m"}, "dashboard.oidc.clock_skew"),  # bounded: 5 minutes at most
        ({"client_id": ""}, "dashboard.oidc.client_id"),
    ],
)
def test_a_wrong_setting_is_named(tmp_path: Path, change: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(write(tmp_path, {**BASE, **change}))


def test_a_local_provider_may_use_plain_http(tmp_path: Path) -> None:
    local = {**BASE, "issuer": "http://127.0.0.1:9000"}
    assert load_config(write(tmp_path, local)).dashboard.oidc is not None


def test_the_client_secret_comes_from_a_file_and_stays_hidden(tmp_path: Path) -> None:
    secret = tmp_path / "oidc_secret"
    secret.write_text("the-client-secret-from-a-file\n")
    cfg_path = write(tmp_path, BASE)
    env = {"SECURITYBOT_DASHBOARD__OIDC__CLIENT_SECRET_FILE": str(secret)}
    cfg = load_config(cfg_path, environ=env)
    assert cfg.dashboard.oidc is not None and cfg.dashboard.oidc.client_secret is not None
    assert cfg.dashboard.oidc.client_secret.get_secret_value() == "the-client-secret-from-a-file"
    result = CliRunner().invoke(main, ["check-config", "--config", str(cfg_path)], env=env)
    assert "the-client-secret-from-a-file" not in result.output
    assert "client_secret" in result.output


def test_roles_name_only_the_three_roles(tmp_path: Path) -> None:
    extra = "  roles: {superuser: [sec-admins]}\n"
    with pytest.raises(ConfigError, match=r"dashboard\.roles"):
        load_config(write(tmp_path, BASE, extra))
    extra = "  trusted_header_roles: {grace: root}\n"
    with pytest.raises(ConfigError, match=r"dashboard\.trusted_header_roles"):
        load_config(write(tmp_path, BASE, extra))
