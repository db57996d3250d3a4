from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.config import ConfigError, find_config_path, load_config, parse_duration

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def test_the_shipped_example_config_is_valid() -> None:
    settings = load_config(REPO / "config.yaml", environ={})
    assert settings.database.url == "sqlite:///securitybot.db"
    assert settings.policy.ack_timeout == 600.0 and settings.policy.duo_timeout == 120.0
    assert not settings.slack.configured  # empty ${SLACK_BOT_TOKEN:-} means "not configured"


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (90, 90.0),
        ("90s", 90.0),
        ("10m", 600.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("250ms", 0.25),
    ],
)
def test_durations_accept_numbers_and_units(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["ten minutes", "-5", 0, True, "5w"])
def test_bad_durations_are_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(raw)


def test_env_references_are_substituted(tmp_path: Path) -> None:
    p = write(tmp_path, "slack:\n  bot_token: ${TOK}\n  security_channel: ${CH:-C123}\n")
    s = load_config(p, environ={"TOK": "xoxb-1"})
    assert s.slack.bot_token is not None and s.slack.bot_token.get_secret_value() == "xoxb-1"
    assert s.slack.security_channel == "C123"


def test_a_missing_env_reference_names_the_key(tmp_path: Path) -> None:
    p = write(tmp_path, "slack:\n  bot_token: ${NOPE}\n")
    with pytest.raises(ConfigError, match=r"slack\.bot_token: environment variable \$\{NOPE\}"):
        load_config(p, environ={})


def test_every_key_can_be_overridden_from_the_environment(tmp_path: Path) -> None:
    p = write(tmp_path, "server:\n  port: 8000\npolicy:\n  ack_timeout: 10m\n")
    env = {
        "SECURITYBOT_SERVER__PORT": "9001",
        "SECURITYBOT_POLICY__ACK_TIMEOUT": "90s",
        "SECURITYBOT_DATABASE__URL": "postgresql://x@h/db",
        "SECURITYBOT_INGEST__TOKENS": '[{"source": "a", "token": "0123456789abcdef"}]',
    }
    s = load_config(p, environ=env)
    assert (s.server.port, s.policy.ack_timeout) == (9001, 90.0)
    assert s.database.url == "postgresql://x@h/db"
    assert s.ingest.tokens[0].source == "a"


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "bot_token"
    secret.write_text("xoxb-from-file\n")
    s = load_config(
        write(tmp_path, "{}"), environ={"SECURITYBOT_SLACK__BOT_TOKEN_FILE": str(secret)}
    )
    assert s.slack.bot_token is not None
    assert s.slack.bot_token.get_secret_value() == "xoxb-from-file"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "policy:\n  ack_timeout: soon\n",
            "config error: policy.ack_timeout: 'soon' is not a duration",
        ),
        ("server:\n  port: 70000\n", "config error: server.port:"),
        ("slack:\n  bot_tokn: x\n", "config error: slack.bot_tokn: unknown key"),
        ("ingest:\n  tokens:\n    - source: a\n      token: short\n", "at least 16 characters"),
        ("ingest:\n  tokens:\n    - source: a\n", "needs a 'token' or an 'hmac_secret'"),
        ("duo:\n  api_host: 'host:port'\n", "config error: duo.api_host: must be 'host' or"),
        ("slack: [1, 2\n", "not valid YAML"),
        (
            "ingest:\n  tokens:\n    - source: a\n      token: 0123456789abcdef\n"
            "      scopes: [ingest, root]\n",
            "config error: ingest.tokens.0.scopes.1: Input should be 'ingest', 'admin' or 'events'",
        ),
        (
            "ingest:\n  tokens:\n    - source: a\n      token: 0123456789abcdef\n"
            "      scopes: []\n",
            "config error: ingest.tokens.0.scopes:",
        ),
    ],
)
def test_bad_values_stop_with_one_line_naming_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), environ={})
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_config_path_resolution_order() -> None:
    assert str(find_config_path("a.yaml", {"SECURITYBOT_CONFIG": "b.yaml"})) == "a.yaml"
    assert str(find_config_path(None, {"SECURITYBOT_CONFIG": "b.yaml"})) == "b.yaml"
    assert str(find_config_path(None, {})) == "config.yaml"


def test_token_scopes_default_to_ingest_and_admin_is_explicit(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "ingest:\n  tokens:\n    - source: siem\n      token: 0123456789abcdef\n"
        "    - source: secops\n      token: fedcba9876543210\n      scopes: [admin]\n",
    )
    s = load_config(p, environ={})
    assert [t.scopes for t in s.ingest.tokens] == [["ingest"], ["admin"]]
    result = CliRunner().invoke(main, ["check-config", "--config", str(p)])
    assert result.exit_code == 0, result.output
    assert "scopes:\n    - admin" in result.output
    assert "no 'admin' credential" not in result.output
    shipped = CliRunner().invoke(main, ["check-config", "--config", str(REPO / "config.yaml")])
    assert "no 'admin' credential" in shipped.output


def test_check_config_masks_secrets(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "ingest:\n  tokens:\n    - source: a\n      token: super-secret-token-123\n"
        "slack:\n  bot_token: xoxb-very-secret\n",
    )
    result = CliRunner().invoke(main, ["check-config", "--config", str(p)])
    assert result.exit_code == 0, result.output
    assert "super-secret-token-123" not in result.output
    assert "xoxb-very-secret" not in result.output
    assert "'**********'" in result.output and "config OK" in result.output


def test_check_config_fails_with_one_line(tmp_path: Path) -> None:
    p = write(tmp_path, "policy:\n  duo_timeout: never\n")
    result = CliRunner().invoke(main, ["check-config", "--config", str(p)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("config error: policy.duo_timeout")


def test_an_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", environ={})


@pytest.mark.parametrize("raw", [0, "0", "0s", "0m"])
def test_intervals_documented_as_off_accept_zero(tmp_path: Path, raw: object) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"aer": {"tor_list_refresh_interval": raw,
                                            "sync_interval": raw}}))  # fmt: skip
    aer = load_config(path).aer
    assert (aer.tor_list_refresh_interval, aer.sync_interval) == (0, 0)


def test_other_durations_still_refuse_zero(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"aer": {"live_window": 0}}))
    with pytest.raises(ConfigError, match=r"aer\.live_window: must be greater than zero"):
        load_config(path)
