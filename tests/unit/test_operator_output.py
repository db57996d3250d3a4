"""What an operator sees: check-config never prints a secret, serve fails in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.config import MASK, mask_config_tree, mask_secrets_in


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("value", "secret", "kept"),
    [
        ("http://user:fbpass-SECRET@hooks.example.com/x", "fbpass-SECRET", "hooks.example.com/x"),
        ("postgresql+psycopg://bot:dbpw-SECRET@db:5432/sb", "dbpw-SECRET", "db:5432/sb"),
        ("https://h.example/in?token=tok-SECRET&team=a", "tok-SECRET", "team=a"),
        ("https://h.example/in?a=1&key=key-SECRET", "key-SECRET", "a=1"),
        ("https://h.example/in?sv=1&sig=sig-SECRET", "sig-SECRET", "sv=1"),
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "XXXXSECRET", "hooks.slack.com"),
    ],
)
def test_a_secret_inside_a_url_is_masked_and_the_rest_kept(
    value: str, secret: str, kept: str
) -> None:
    shown = mask_secrets_in(value)
    assert secret not in shown
    assert kept in shown
    assert "**********" in shown


def test_plain_values_are_left_alone() -> None:
    for value in ("https://slack.com/api/", "127.0.0.1", "sqlite:///securitybot.db", "INFO", 3):
        assert mask_secrets_in(value) == value


def test_check_config_masks_credentials_in_every_url(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "database:\n  url: postgresql://bot:dbpw-SECRET@db.internal/sb\n"
        "escalation:\n  fallback_webhook: http://user:fbpass-SECRET@pager.example/hook\n"
        "webhooks:\n  outbound:\n"
        "    - url: https://hooks.slack.com/services/T0/B0/slackhook-SECRET\n"
        "    - url: https://siem.example/in?token=qtok-SECRET&x=1\n",
    )
    result = CliRunner().invoke(main, ["check-config", "--config", str(p)])
    assert result.exit_code == 0, result.output
    for secret in ("dbpw-SECRET", "fbpass-SECRET", "slackhook-SECRET", "qtok-SECRET"):
        assert secret not in result.output
    assert "pager.example/hook" in result.output and "db.internal/sb" in result.output


def test_serve_with_an_unreachable_database_says_so_in_one_line(tmp_path: Path) -> None:
    p = write(tmp_path, "database:\n  url: postgresql://u:pw-SECRET@127.0.0.1:1/x\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(p)])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1/x" in lines[0] and "pw-SECRET" not in lines[0]
    assert "database" in lines[0]


def test_values_under_secret_like_keys_are_hidden_and_unset_ones_stay_unset() -> None:
    shown = mask_config_tree(
        {
            "headers": {
                "Authorization": "Bearer hdr-SECRET",
                "X-Api-Key": "k-SECRET",
                "Accept": "a",
            },
            "duo": {"ikey": "DIXXXX", "skey": None},
            "adapters": {"x": {"dedup_key": "{{ id }}"}},
        }
    )
    assert shown["headers"] == {"Authorization": MASK, "X-Api-Key": MASK, "Accept": "a"}
    assert shown["duo"] == {"ikey": "DIXXXX", "skey": None}
    assert shown["adapters"]["x"]["dedup_key"] == "{{ id }}"
