"""``check-config`` with Slack credentials asks Slack whether the bot is a member of the
security channel and every routed channel, in one line; a missing invite fails the check. Then
``auth.test`` with each token: a scope Slack does not list for it (the ``x-oauth-scopes``
header, which the fake sends like Slack on every Web API answer) is one line naming it, and
fails the check too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.demo import FakeSlack
from securitybot.slack.tokens import BOT_SCOPES


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("CSECURITY")
        fake.add_channel("CAERNOTES", bot_member=False)
        yield fake


def _check(
    tmp_path: Path, fs: FakeSlack, *args: str, slack: dict[str, object] | None = None,
    **aer: object,
) -> tuple[int, str]:  # fmt: skip
    config = {
        "slack": {
            "bot_token": "xoxb-check",
            "signing_secret": "s" * 32,
            "api_url": fs.base_url,
            "security_channel": "CSECURITY",
            **(slack or {}),
        },
        **({"aer": aer} if aer else {}),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["check-config", "--config", str(path), *args])
    return result.exit_code, result.output


def test_check_config_says_the_bot_is_in_its_channels(tmp_path: Path, fs: FakeSlack) -> None:
    code, out = _check(tmp_path, fs)
    assert code == 0, out
    assert "# Slack: bot UBOT in team T1; member of CSECURITY (security channel)\n" in out
    assert "# Slack: slack.bot_token (UBOT in T1) has the scopes it needs\n" in out
    assert out.endswith("# config OK\n")
    assert [c.method for c in fs.calls] == ["auth.test", "conversations.info", "auth.test"]
    assert "xoxb-check" not in out


def test_check_config_fails_naming_a_channel_the_bot_was_not_invited_to(
    tmp_path: Path, fs: FakeSlack
) -> None:
    code, out = _check(tmp_path, fs, defaults={"notify": {"channel": "CAERNOTES"}})
    assert code == 1
    [line] = [x for x in out.splitlines() if x.startswith("# Slack: bot ")]
    assert "CAERNOTES (aer.defaults.notify.channel): not_in_channel" in line
    assert "/invite @Securitybot" in line
    assert "config OK" not in out


def test_check_config_offline_does_not_ask_slack(tmp_path: Path, fs: FakeSlack) -> None:
    code, out = _check(tmp_path, fs, "--offline")
    assert code == 0 and "# Slack:" not in out and not fs.calls


def test_slack_refusing_the_token_is_one_line(tmp_path: Path, fs: FakeSlack) -> None:
    fs.fail_next("auth.test", error="invalid_auth")
    code, out = _check(tmp_path, fs)
    assert code == 1
    lines = [x for x in out.splitlines() if x.startswith("# Slack:")]
    assert lines == ["# Slack: cannot check the bot: Slack answered invalid_auth"]


def _slack_lines(out: str) -> list[str]:
    return [x for x in out.splitlines() if x.startswith("# Slack:")]


def test_a_bot_token_without_a_scope_fails_naming_it(tmp_path: Path, fs: FakeSlack) -> None:
    fs.token_scopes["xoxb-check"] = [s for s in BOT_SCOPES if s != "users:read.email"]
    code, out = _check(tmp_path, fs)
    assert code == 1 and "config OK" not in out
    [line] = [x for x in _slack_lines(out) if "slack.bot_token" in x]
    assert line == (
        "# Slack: slack.bot_token (UBOT in T1) is missing scope users:read.email "
        "(users:read.email: users.lookupByEmail (alerts name people by email)); add it in the "
        "app's OAuth & Permissions page and reinstall the app (docs/deploy.md, Tokens and "
        "scopes)"
    )


def test_the_org_admin_token_is_checked_with_its_own_token(tmp_path: Path, fs: FakeSlack) -> None:
    code, out = _check(tmp_path, fs, slack={"admin_token": "xoxp-orgadmin"})
    assert code == 0, out
    assert "# Slack: slack.admin_token (UADMIN in T1) has the scopes it needs" in _slack_lines(out)
    tokens = [c.headers.get("Authorization") for c in fs.calls_to("auth.test")]
    assert tokens == ["Bearer xoxb-check", "Bearer xoxb-check", "Bearer xoxp-orgadmin"]
    assert "xoxp-orgadmin" not in out


def test_an_admin_token_without_admin_users_write_fails_naming_it(
    tmp_path: Path, fs: FakeSlack
) -> None:
    fs.token_scopes["xoxp-orgadmin"] = ["auditlogs:read"]
    code, out = _check(tmp_path, fs, slack={"admin_token": "xoxp-orgadmin"})
    assert code == 1 and "config OK" not in out
    [line] = [x for x in _slack_lines(out) if "slack.admin_token" in x]
    assert "is missing scope admin.users:write (admin.users:write: admin.users.session.reset" in (
        line
    )
    assert "xoxp-orgadmin" not in out


def test_an_admin_token_slack_refuses_fails_in_one_line(tmp_path: Path, fs: FakeSlack) -> None:
    code, out = _check(tmp_path, fs, slack={"admin_token": "xoxb-invalid"})
    assert code == 1
    assert "# Slack: slack.admin_token does not work: invalid_auth" in _slack_lines(out)
