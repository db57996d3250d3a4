"""SECURITYBOT_<A>__<B>__<C>... and their _FILE forms reach every key, however deep (issue #28.1):
``SECURITYBOT_AER__AUDIT_LOGS__TOKEN_FILE`` was refused as an unknown key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.config import ConfigError, Settings, load_config

# Long enough for aer.stream.signing_key (32+ characters).
SIGNING_KEY = "0123456789abcdef0123456789abcdef"


def _config(tmp_path: Path, text: str = "{}\n") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _secret(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n")  # mounted secrets often end in a newline
    return str(path)


def test_the_audit_logs_token_comes_from_a_file(tmp_path: Path) -> None:
    env = {"SECURITYBOT_AER__AUDIT_LOGS__TOKEN_FILE": _secret(tmp_path, "t", "xoxp-audit")}
    token = load_config(_config(tmp_path), environ=env).aer.audit_logs.token
    assert token is not None and token.get_secret_value() == "xoxp-audit"


def test_three_and_four_level_keys_from_the_environment(tmp_path: Path) -> None:
    env = {
        "SECURITYBOT_AER__AUDIT_LOGS__PAGE_SIZE": "50",
        "SECURITYBOT_PAGING__OPSGENIE__BASE_URL": "https://api.eu.opsgenie.com",
        "SECURITYBOT_AER__STREAM__SIGNING_KEY": SIGNING_KEY,
        "SECURITYBOT_AER__STREAM__TLS__CA": __file__,
        "SECURITYBOT_AER__RESET_BUDGET__PER": "2h",
    }
    s = load_config(_config(tmp_path), environ=env)
    assert s.aer.audit_logs.page_size == 50
    assert s.paging.opsgenie.base_url == "https://api.eu.opsgenie.com"
    assert s.aer.stream is not None and s.aer.stream.tls.ca == __file__
    assert s.aer.reset_budget.per == 7200.0


def test_the_environment_merges_into_the_file_at_depth(tmp_path: Path) -> None:
    path = _config(
        tmp_path, f"aer:\n  stream:\n    partitions: 4\n    signing_key: {SIGNING_KEY}\n"
    )
    env = {"SECURITYBOT_AER__STREAM__BATCH": "10", "SECURITYBOT_AER__STREAM__PARTITIONS": "16"}
    stream = load_config(path, environ=env).aer.stream
    assert stream is not None
    assert (stream.partitions, stream.batch, stream.subject) == (16, 10, "aer.events")


@pytest.mark.parametrize(
    ("name", "read"),
    [
        # depth 1: section.key
        ("SECURITYBOT_SLACK__BOT_TOKEN_FILE", lambda s: s.slack.bot_token.get_secret_value()),
        # depth 2: section.sub.key
        (
            "SECURITYBOT_PAGING__PAGERDUTY__API_TOKEN_FILE",
            lambda s: s.paging.pagerduty.api_token.get_secret_value(),
        ),
        # depth 3: section.sub.sub.key
        ("SECURITYBOT_AER__STREAM__TLS__CA_FILE", lambda s: s.aer.stream.tls.ca),
    ],
)
def test_a_file_sets_a_key_at_any_depth(tmp_path: Path, name: str, read: object) -> None:
    value = __file__ if name.endswith("CA_FILE") else "s3cret-from-a-mounted-file"
    env = {name: _secret(tmp_path, "secret", value)}
    if "__STREAM__" in name:
        env["SECURITYBOT_AER__STREAM__SIGNING_KEY"] = SIGNING_KEY
    s = load_config(_config(tmp_path), environ=env)
    assert read(s) == value  # type: ignore[operator]


def test_a_file_holds_a_structured_value_too(tmp_path: Path) -> None:
    # A mounted secret with the whole token list (YAML, or JSON, which is YAML).
    tokens = "- source: siem\n  token: 0123456789abcdef\n- source: ops\n  token: fedcba9876543210\n"
    env = {"SECURITYBOT_INGEST__TOKENS_FILE": _secret(tmp_path, "tokens", tokens)}
    s = load_config(_config(tmp_path), environ=env)
    assert [t.source for t in s.ingest.tokens] == ["siem", "ops"]


def test_an_unreadable_file_names_the_variable(tmp_path: Path) -> None:
    env = {"SECURITYBOT_AER__AUDIT_LOGS__TOKEN_FILE": str(tmp_path / "missing")}
    with pytest.raises(ConfigError, match=r"SECURITYBOT_AER__AUDIT_LOGS__TOKEN_FILE: cannot read"):
        load_config(_config(tmp_path), environ=env)


@pytest.mark.parametrize(
    ("name", "dotted"),
    [
        ("SECURITYBOT_AER__AUDIT_LOGS__TOKN", "aer.audit_logs.tokn"),
        ("SECURITYBOT_AER__AUDIT_LOGS__TOKN_FILE", "aer.audit_logs.tokn"),
        ("SECURITYBOT_AER__STREAM__TLS__CAA", "aer.stream.tls.caa"),
        ("SECURITYBOT_SLAKC__BOT_TOKEN", "slakc"),
    ],
)
def test_an_unknown_deep_key_is_refused_with_its_dotted_name(
    tmp_path: Path, name: str, dotted: str
) -> None:
    value = _secret(tmp_path, "x", "x") if name.endswith("_FILE") else "x"
    env = {name: value, "SECURITYBOT_AER__STREAM__SIGNING_KEY": SIGNING_KEY}
    with pytest.raises(ConfigError) as exc:
        load_config(_config(tmp_path), environ=env)
    assert str(exc.value).startswith(f"config error: {dotted}: unknown key"), str(exc.value)


def test_a_key_and_its_file_together_are_refused(tmp_path: Path) -> None:
    env = {
        "SECURITYBOT_SLACK__BOT_TOKEN": "xoxb-inline",
        "SECURITYBOT_SLACK__BOT_TOKEN_FILE": _secret(tmp_path, "t", "xoxb-file"),
    }
    with pytest.raises(ConfigError, match=r"SECURITYBOT_SLACK__BOT_TOKEN and .*_FILE are both set"):
        load_config(_config(tmp_path), environ=env)


def test_variables_without_a_section_are_not_configuration(tmp_path: Path) -> None:
    # SECURITYBOT_CONFIG, SECURITYBOT_TOKEN (send-alert) and SECURITYBOT_INGEST_TOKEN (used in
    # config.yaml's ${...}) share the prefix but name no key.
    env = {"SECURITYBOT_CONFIG": "x", "SECURITYBOT_SLACK": "{}", "SECURITYBOT_INGEST_TOKEN": "y"}
    env["securitybot_slack__bot_token"] = "lower case is not ours (as before)"
    assert load_config(_config(tmp_path), environ=env).slack.bot_token is None


def test_yaml_still_wins_below_the_environment_and_substitutes(tmp_path: Path) -> None:
    path = _config(tmp_path, "aer:\n  audit_logs:\n    token: ${AUDIT:-from-yaml}\n")

    def token(env: dict[str, str]) -> str | None:
        secret = load_config(path, environ=env).aer.audit_logs.token
        return None if secret is None else secret.get_secret_value()

    assert token({}) == "from-yaml"
    env = {"AUDIT": "from-ref"}
    assert token(env) == "from-ref"
    env["SECURITYBOT_AER__AUDIT_LOGS__TOKEN_FILE"] = _secret(tmp_path, "t", "from-file")
    assert token(env) == "from-file"
    env["SECURITYBOT_AER__AUDIT_LOGS__TOKEN_FILE"] = _secret(tmp_path, "empty", "")
    assert token(env) is None  # an empty file leaves it unconfigured (docs/deploy.md)


def test_check_config_never_prints_secrets_from_deep_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SECURITYBOT_AER__AUDIT_LOGS__TOKEN_FILE", _secret(tmp_path, "a", "xoxp-audit-secret-42")
    )
    monkeypatch.setenv(
        "SECURITYBOT_PAGING__PAGERDUTY__API_TOKEN_FILE", _secret(tmp_path, "p", "pd-secret-4242")
    )
    monkeypatch.setenv(
        "SECURITYBOT_AER__STREAM__SIGNING_KEY_FILE", _secret(tmp_path, "k", SIGNING_KEY)
    )
    config = str(_config(tmp_path))
    result = CliRunner().invoke(main, ["check-config", "--offline", "--config", config])
    assert result.exit_code == 0, result.output
    for secret in ("xoxp-audit-secret-42", "pd-secret-4242", SIGNING_KEY):
        assert secret not in result.output
    assert "token: '**********'" in result.output
    assert "config OK" in result.output


def test_settings_built_directly_read_only_their_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests and the demo build Settings(...) themselves: the process's variables stay out.
    monkeypatch.setenv("SECURITYBOT_SERVER__PORT", "9001")
    assert Settings().server.port == 8000
    assert Settings.model_validate({"server": {"port": 8001}}).server.port == 8001
