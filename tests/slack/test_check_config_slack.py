"""``check-config`` with Slack credentials asks Slack whether the bot is a member of the
security channel and every routed channel, in one line; a missing invite fails the check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.demo import FakeSlack


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("CSECURITY")
        fake.add_channel("CAERNOTES", bot_member=False)
        yield fake


def _check(tmp_path: Path, fs: FakeSlack, *args: str, **aer: object) -> tuple[int, str]:
    config = {
        "slack": {
            "bot_token": "xoxb-check",
            "signing_secret": "s" * 32,
            "api_url": fs.base_url,
            "security_channel": "CSECURITY",
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
    assert out.endswith("# config OK\n")
    assert [c.method for c in fs.calls] == ["auth.test", "conversations.info"]
    assert "xoxb-check" not in out


def test_check_config_fails_naming_a_channel_the_bot_was_not_invited_to(
    tmp_path: Path, fs: FakeSlack
) -> None:
    code, out = _check(tmp_path, fs, defaults={"notify": {"channel": "CAERNOTES"}})
    assert code == 1
    [line] = [x for x in out.splitlines() if x.startswith("# Slack:")]
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
