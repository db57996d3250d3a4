"""`securitybot send-alert` against a running server, with the token from the environment
variable that config.yaml itself uses (`SECURITYBOT_INGEST_TOKEN`)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from securitybot.cli import main
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import TOKEN


@pytest.mark.parametrize("variable", ["SECURITYBOT_INGEST_TOKEN", "SECURITYBOT_TOKEN"])
def test_send_alert_takes_the_ingest_token_from_the_environment(
    make_bot: MakeBot, variable: str, tmp_path: pytest.TempPathFactory
) -> None:
    bot = make_bot()
    config = tmp_path / "empty.yaml"  # type: ignore[operator]
    config.write_text("{}\n")
    args = ["send-alert", "--config", str(config), "--url", bot.base, "--user",
            "alice@example.com", "--dedup-key", f"cli-{variable}"]  # fmt: skip
    done = CliRunner().invoke(main, args, env={variable: TOKEN})
    assert done.exit_code == 0, done.output
    assert "HTTP 201" in done.output
    wrong = CliRunner().invoke(main, args, env={variable: "not-the-token-0000000000"})
    assert "HTTP 401" in wrong.output


def test_send_alert_help_says_user_is_required_and_what_other_values_do() -> None:
    done = CliRunner().invoke(main, ["send-alert", "--help"])
    assert "--user TEXT" in done.output and "[required]" in done.output
    assert "SECURITYBOT_INGEST_TOKEN" in done.output and "no_user" in done.output
