"""slack.oauth, several workspaces without Grid: the app's client secret from the config, a
file or the _FILE environment form, never shown; unset, the single bot token of before."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from securitybot.cli import main
from securitybot.config import load_config
from securitybot.slack.tokens import BOT_SCOPES

SECRET = "e1b9e11dfcd19c1982d5de12921e17e8c"
OAUTH = """slack:
  bot_token: xoxb-home
  signing_secret: signing-secret-0123
  oauth:
    client_id: "2141029472.691202649728"
    redirect_url: https://securitybot.example.com/slack/oauth_redirect
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def test_without_slack_oauth_the_single_token_configuration_is_unchanged(tmp_path: Path) -> None:
    s = load_config(_write(tmp_path, "slack:\n  bot_token: xoxb-home\n"), environ={})
    assert not s.slack.oauth.configured
    assert s.slack.bot_token is not None and s.slack.bot_token.get_secret_value() == "xoxb-home"


def test_the_client_secret_comes_from_a_file_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "slack-client-secret"
    secret.write_text(SECRET + "\n")
    cfg = _write(tmp_path, OAUTH + f"    client_secret_file: {secret}\n")
    s = load_config(cfg, environ={})
    assert s.slack.oauth.configured
    assert s.slack.oauth.client_secret is not None
    assert s.slack.oauth.client_secret.get_secret_value() == SECRET
    assert s.slack.oauth.scopes == []  # slack-manifest.yaml's bot scopes (BOT_SCOPES) are asked
    assert "chat:write" in BOT_SCOPES
    result = CliRunner().invoke(main, ["check-config", "--config", str(cfg), "--offline"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "client_id: '2141029472.691202649728'" in result.output


def test_the_client_secret_file_environment_form_works(tmp_path: Path) -> None:
    secret = tmp_path / "slack-client-secret"
    secret.write_text(SECRET)
    env = {"SECURITYBOT_SLACK__OAUTH__CLIENT_SECRET_FILE": str(secret)}
    s = load_config(_write(tmp_path, OAUTH), environ=env)
    assert s.slack.oauth.client_secret is not None
    assert s.slack.oauth.client_secret.get_secret_value() == SECRET
