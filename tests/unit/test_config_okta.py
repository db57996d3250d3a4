"""verify.provider and the okta: section: Duo stays the default, Okta's token is a secret (also
from a _FILE), and a missing or wrong setting is named in one line at start and in check-config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.config import ConfigError, load_config

TOKEN = "00abcdefghijklmnopqrstuvwxyz0123456789ABCD"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def test_duo_stays_the_default_and_its_section_is_unchanged(tmp_path: Path) -> None:
    duo = "duo:\n  ikey: DIX\n  skey: sk\n  api_host: api-x.duosecurity.com\n"
    s = load_config(write(tmp_path, duo), environ={})
    assert s.verify.provider == "duo" and s.duo.configured and not s.okta.configured
    assert not any("Okta" in n or "Duo" in n for n in s.unconfigured())


def test_okta_settings_and_the_token_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "okta_token"
    secret.write_text(TOKEN + "\n")
    s = load_config(
        write(tmp_path, "verify:\n  provider: okta\nokta:\n  org_url: https://acme.okta.com/\n"
                        "  user_field: login\n"),
        environ={"SECURITYBOT_OKTA__API_TOKEN_FILE": str(secret)},
    )  # fmt: skip
    assert s.okta.api_token is not None and s.okta.api_token.get_secret_value() == TOKEN
    assert (s.okta.org_url, s.okta.user_field, s.okta.configured) == (
        "https://acme.okta.com", "login", True,
    )  # fmt: skip
    assert not any("Okta" in n or "Duo" in n for n in s.unconfigured())


def test_okta_chosen_but_unset_is_named_at_start(tmp_path: Path) -> None:
    s = load_config(write(tmp_path, "verify:\n  provider: okta\nokta:\n  org_url: https://a.okta.com\n"),
                    environ={})  # fmt: skip
    assert "Okta (verify.provider is okta; okta.api_token unset): 'it was me' escalates" in (
        s.unconfigured()
    )
    assert not any(n.startswith("Duo") for n in s.unconfigured())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("verify:\n  provider: rsa\n",
         "config error: verify.provider: Input should be 'duo' or 'okta'"),
        ("okta:\n  org_url: http://acme.okta.com\n",
         "config error: okta.org_url: must be your Okta org's https URL"),
        ("okta:\n  org_url: https://acme.okta.com/api/v1\n", "config error: okta.org_url:"),
        ("okta:\n  user_field: upn\n", "config error: okta.user_field:"),
        ("okta:\n  api_tokn: x\n", "config error: okta.api_tokn: unknown key"),
    ],
)  # fmt: skip
def test_a_wrong_okta_setting_is_one_line_naming_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ={})
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


def test_check_config_masks_the_okta_token_and_names_what_is_missing(tmp_path: Path) -> None:
    p = write(tmp_path, f"verify:\n  provider: okta\nokta:\n  api_token: {TOKEN}\n")
    result = CliRunner().invoke(main, ["check-config", "--config", str(p)])
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    assert "api_token: '**********'" in result.output
    assert "# not configured: Okta (verify.provider is okta; okta.org_url unset)" in result.output
