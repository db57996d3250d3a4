"""The org admin's token: from the config, from a file (slack.admin_token_file or the _FILE
environment form), and as the Audit Logs API's token unless that has its own."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from securitybot.cli import main
from securitybot.config import ConfigError, load_config
from securitybot.slack.tokens import audit_logs_token, granted


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def test_the_admin_token_can_come_from_a_file_named_in_the_config(tmp_path: Path) -> None:
    secret = tmp_path / "slack-admin"
    secret.write_text("xoxp-from-file\n")
    s = load_config(_write(tmp_path, f"slack:\n  admin_token_file: {secret}\n"), environ={})
    assert s.slack.admin_token is not None
    assert s.slack.admin_token.get_secret_value() == "xoxp-from-file"
    # check-config shows the path, never the token.
    cfg = _write(tmp_path, f"slack:\n  admin_token_file: {secret}\n")
    result = CliRunner().invoke(main, ["check-config", "--config", str(cfg), "--offline"])
    assert result.exit_code == 0, result.output
    assert "xoxp-from-file" not in result.output


def test_the_admin_token_file_environment_form_still_works(tmp_path: Path) -> None:
    secret = tmp_path / "slack-admin"
    secret.write_text("xoxp-env-file")
    env = {"SECURITYBOT_SLACK__ADMIN_TOKEN_FILE": str(secret)}
    s = load_config(_write(tmp_path, "{}"), environ=env)
    assert s.slack.admin_token is not None
    assert s.slack.admin_token.get_secret_value() == "xoxp-env-file"


def test_an_unreadable_admin_token_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    try:
        load_config(_write(tmp_path, f"slack:\n  admin_token_file: {missing}\n"), environ={})
    except ConfigError as exc:
        assert str(exc).startswith("config error: slack: admin_token_file: cannot read")
    else:
        raise AssertionError("an unreadable file must stop the load")


def test_the_audit_logs_take_the_admin_token_unless_they_have_their_own(tmp_path: Path) -> None:
    s = load_config(_write(tmp_path, "slack:\n  admin_token: xoxp-admin\n"), environ={})
    token = audit_logs_token(s)
    assert token is not None and token.get_secret_value() == "xoxp-admin"
    own = "slack:\n  admin_token: xoxp-admin\naer:\n  audit_logs:\n    token: xoxp-audit\n"
    token = audit_logs_token(load_config(_write(tmp_path, own), environ={}))
    assert token is not None and token.get_secret_value() == "xoxp-audit"
    assert audit_logs_token(load_config(_write(tmp_path, "{}"), environ={})) is None


def test_scopes_are_read_from_the_x_oauth_scopes_header() -> None:
    # As Slack sends it: comma-separated, header names in any case.
    assert granted({"X-OAuth-Scopes": "chat:write,im:write"}) == {"chat:write", "im:write"}
    assert granted({"x-oauth-scopes": ["admin.users:write, auditlogs:read"]}) == {
        "admin.users:write", "auditlogs:read",
    }  # fmt: skip
    assert granted({"content-type": "application/json"}) is None


def test_the_missing_scope_line_is_the_one_docs_deploy_shows() -> None:
    from securitybot.slack.tokens import TokenCheck

    # auth.test for an org admin's user token on an org-wide install.
    auth = {"ok": True, "user_id": "W0ADMIN", "team_id": "E0ACME", "enterprise_id": "E0ACME",
            "is_enterprise_install": True}  # fmt: skip
    line = TokenCheck("slack.admin_token", auth, ("admin.users:write",)).line()
    docs = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    assert line in docs
