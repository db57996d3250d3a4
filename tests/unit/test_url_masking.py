"""Issue 24 item 3: no password of a configured URL reaches check-config, serve, migrate or a log.

Each password holds ``/``, ``#`` and ``?`` (SQLAlchemy's parser takes them raw), or sits in a
libpq multi-host URL, or in a query parameter. "Leaks" checks the password as written, its
percent-encoded forms and every run of 3+ characters between its special characters.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.config import mask_secrets_in
from tests.dbs import postgres_schema_url

PW = "pa/ss#wo?rd-Zq7x"  # the raw password in most URLs below
PW_QUERY = "qp/Zq8#y?z"


def leaks(text: str, password: str) -> list[str]:
    forms = {password, quote(password, safe=""), quote_plus(password), quote(password)}
    forms |= {piece for piece in re.split(r"[/#?%@:&=]", password) if len(piece) >= 3}
    return sorted(f for f in forms if f in text)


# (URL, password, what must still be shown)
DB_URLS = [
    (f"postgresql://bot:{PW}@db.internal:5432/sb", PW, "db.internal:5432/sb"),
    (f"postgresql+psycopg://bot:{quote(PW, safe='')}@db.internal/sb", PW, "db.internal/sb"),
    (f"postgresql://bot:{PW}@/sb?host=h1.internal:5432&host=h2.internal:5432", PW, "h2.internal"),
    (f"postgresql://bot@db.internal/sb?password={quote(PW_QUERY, safe='')}", PW_QUERY, "sb"),
]
HTTP_URLS = [
    (f"https://user:{PW}@pager.example/hook", PW, "https://"),
    (f"https://user:{quote(PW, safe='')}@pager.example/hook", PW, "pager.example/hook"),
    ("https://pager.example/hook?sig=Zq9-sig&password=Zq9-pw&a=1", "Zq9-sig", "a=1"),
    ("https://pager.example/hook?secret=Zq9-sec&key=Zq9-key", "Zq9-key", "pager.example"),
]


@pytest.mark.parametrize(("url", "password", "kept"), DB_URLS + HTTP_URLS)
def test_mask_hides_the_password_in_every_form(url: str, password: str, kept: str) -> None:
    shown = mask_secrets_in(url)
    assert not leaks(shown, password), shown
    assert kept in shown, shown
    assert "**********" in shown


def test_a_multi_host_url_sqlalchemy_cannot_parse_is_masked_whole() -> None:
    url = "postgresql://bot:mh-Zq7x@h1.internal:5432,h2.internal:5432/sb"
    shown = mask_secrets_in(url)
    assert "mh-Zq7x" not in shown and shown.startswith("postgresql://")


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def yaml_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@pytest.mark.parametrize(("url", "password", "kept"), DB_URLS)
def test_check_config_never_prints_a_database_password(
    tmp_path: Path, url: str, password: str, kept: str
) -> None:
    p = write(tmp_path, f"database:\n  url: {yaml_quote(url)}\n")
    result = CliRunner().invoke(main, ["check-config", "--config", str(p)])
    assert result.exit_code == 0, result.output
    assert not leaks(result.output, password), result.output
    assert kept in result.output


def test_check_config_refuses_a_multi_host_url_in_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql://bot:{PW}@h1.internal:5432,h2.internal:5432/sb"
    p = write(tmp_path, f"database:\n  url: {yaml_quote(url)}\n")
    result = CliRunner().invoke(main, ["check-config", "--config", str(p)])
    assert result.exit_code == 2
    assert not leaks(result.output, PW), result.output
    assert "database.url" in result.output and "host=" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(("url", "password", "kept"), HTTP_URLS[:2])
def test_check_config_never_prints_a_fallback_webhook_password(
    tmp_path: Path, url: str, password: str, kept: str
) -> None:
    p = write(tmp_path, f"escalation:\n  fallback_webhook: {yaml_quote(url)}\n")
    result = CliRunner().invoke(main, ["check-config", "--config", str(p)])
    assert result.exit_code == 0, result.output
    assert not leaks(result.output, password), result.output


UNREACHABLE = [
    f"postgresql://bot:{PW}@127.0.0.1:1/sb",
    f"postgresql://bot:{quote(PW, safe='')}@127.0.0.1:1/sb",
    f"postgresql://bot:{PW}@/sb?host=127.0.0.1:1&host=127.0.0.1:2",
    f"postgresql://bot@127.0.0.1:1/sb?password={quote(PW, safe='')}",
]


@pytest.mark.parametrize("url", UNREACHABLE)
def test_serve_and_migrate_with_an_unreachable_database_hide_the_password(
    tmp_path: Path, url: str
) -> None:
    p = write(tmp_path, f"database:\n  url: {yaml_quote(url)}\n")
    for command in ("serve", "migrate"):
        result = CliRunner().invoke(main, [command, "--config", str(p)])
        assert result.exit_code != 0, result.output
        assert not leaks(result.output, PW), (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, (command, result.output)
        assert "127.0.0.1" in lines[0] or "Connection refused" in lines[0], lines[0]


@pytest.fixture
def pg_url_with_password() -> Iterator[str]:
    """A real PostgreSQL URL (trust auth: any password works) with PW in it, raw."""
    with postgres_schema_url() as url:
        scheme, rest = url.split("://", 1)
        user, host_and_rest = rest.split("@", 1)
        yield f"{scheme}://{user}:{PW}@{host_and_rest}"


def test_migrate_works_through_such_a_password_and_prints_it_masked(
    tmp_path: Path, pg_url_with_password: str
) -> None:
    p = write(tmp_path, f"database:\n  url: {yaml_quote(pg_url_with_password)}\n")
    result = CliRunner().invoke(main, ["migrate", "--config", str(p)])
    assert result.exit_code == 0, result.output
    assert "is up to date" in result.output
    assert not leaks(result.output, PW), result.output


def test_log_lines_never_carry_a_configured_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever logs it (a driver's error, a traceback), a configured password is scrubbed."""
    from securitybot.config import load_config
    from securitybot.logs import configure_logging

    url = f"postgresql://bot:{PW}@db.internal/sb"
    settings = load_config(write(tmp_path, f"database:\n  url: {yaml_quote(url)}\n"))
    configure_logging(settings.logging, settings=settings)
    log = logging.getLogger(f"test.{uuid.uuid4().hex}")
    try:
        raise RuntimeError(f"could not connect to {url}")
    except RuntimeError:
        log.exception("failed with %s and %s", PW, quote(PW, safe=""))
    err = capsys.readouterr().err
    assert "failed with" in err and "db.internal" in err
    assert not leaks(err, PW), err
