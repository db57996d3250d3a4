"""Command line: serve | migrate | check-config | send-alert | demo | hash-password |
purge | erase-person | export."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any
from urllib.parse import urlsplit

import click
import yaml

from securitybot.cli_support import CONFIG_HELP, fail, settings_from
from securitybot.config import ConfigError, Settings, find_config_path, mask_secrets_in
from securitybot.logs import configure_logging
from securitybot.masking import mask_url, scrub
from securitybot.store.db import Database, SchemaNotReady, migrate, normalise_url

_fail = fail
_settings = settings_from


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="securitybot", prog_name="securitybot")
def main() -> None:
    """Securitybot: ask the person who did it, verify with Duo, escalate the rest."""


@main.command("check-config")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--offline", is_flag=True, help="Do not ask Slack (auth.test, channel membership).")
def check_config(config: str | None, offline: bool) -> None:
    """Validate the configuration and print it with secrets masked; with Slack credentials,
    also check that the bot is a member of the security channel and every routed channel."""
    settings = _settings(config)
    from securitybot.kinds import load_kinds

    try:
        kinds = load_kinds(settings.alerts.dir)
    except ConfigError as exc:
        _fail(str(exc))
    click.echo(yaml.safe_dump(settings.masked(), sort_keys=False), nl=False)
    found = find_config_path(config)
    if not found.exists():  # not an error (environment-only set-ups), but never silent
        via = os.environ.get("SECURITYBOT_CONFIG")
        named = "from $SECURITYBOT_CONFIG" if via else "$SECURITYBOT_CONFIG unset"
        click.echo(f"# no config file found ({found}, {named}): defaults and "
                   "SECURITYBOT_* environment variables only")  # fmt: skip
    click.echo(f"# alert kinds: {', '.join(kinds.names())}")
    for note in settings.unconfigured():
        click.echo(f"# not configured: {note}")
    if settings.slack.configured and not offline:
        lines, ok = _slack_lines(settings)
        for line in lines:
            click.echo(f"# {line}")
        if not ok:
            sys.exit(1)
    click.echo("# config OK")


def _slack_lines(settings: Settings) -> tuple[list[str], bool]:
    """The start-up line about Slack (is the bot in its channels?), then one per token (does
    Slack grant it the scopes its calls need?), and whether all is well."""
    import asyncio

    return asyncio.run(_ask_slack(settings))


async def _ask_slack(settings: Settings) -> tuple[list[str], bool]:
    from slack_sdk.web.async_client import AsyncWebClient

    from securitybot.slack.channels import check_slack, describe
    from securitybot.slack.tokens import check_token, clients_to_check

    assert settings.slack.bot_token is not None

    def client(token: str) -> AsyncWebClient:
        return AsyncWebClient(token=token, base_url=settings.slack.api_url, timeout=10)

    bot = client(settings.slack.bot_token.get_secret_value())
    try:
        found = await check_slack(bot, settings)
    except Exception as exc:  # one line, whatever went wrong (network, invalid_auth, ...)
        return [f"Slack: cannot check the bot: {mask_secrets_in(describe(exc))}"], False
    lines, ok = [found.line()], not found.missing
    admin = settings.slack.admin_token
    admin_client = client(admin.get_secret_value()) if admin is not None else None
    for web, name, needed in clients_to_check(settings, bot, admin_client):
        try:
            checked = await check_token(web, name, needed)
        except Exception as exc:
            lines.append(f"Slack: {name} cannot be checked: {mask_secrets_in(describe(exc))}")
            ok = False
            continue
        lines.append(mask_secrets_in(checked.line()))
        ok = ok and checked.ok
    return lines, ok


@main.command("migrate")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def migrate_cmd(config: str | None, revision: str) -> None:
    """Create or upgrade the database schema (safe to run from several replicas)."""
    settings = _settings(config)
    configure_logging(settings.logging, settings, migrations=True)
    url = settings.database.url
    db = Database.from_url(url)
    try:
        migrate(db.engine, revision)
    except Exception as exc:  # surface driver errors as one line, not a traceback
        line = f"migrate failed: {type(exc).__name__}: {exc}".splitlines()[0]
        _fail(scrub(line, url, normalise_url(url)), 1)
    finally:
        db.dispose()
    click.echo(f"database at {mask_url(normalise_url(url))} is up to date")


@main.command("serve")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--host", default=None, help="Override server.host.")
@click.option("--port", type=int, default=None, help="Override server.port.")
@click.option("--socket-mode", is_flag=True, help="Also receive Slack events over Socket Mode.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Service processes sharing the port (PostgreSQL only).")  # fmt: skip
def serve(
    config: str | None, host: str | None, port: int | None, socket_mode: bool, workers: int
) -> None:
    """Run the HTTP API, the Slack app and the background workers."""
    settings = _settings(config)
    configure_logging(settings.logging, settings)
    from securitybot.service import ServiceError, run_service
    from securitybot.workers import WorkersError, check_workers, run_workers

    try:
        check_workers(settings, workers, socket_mode)
        if workers > 1:
            sys.exit(run_workers(
                settings, workers, host or settings.server.host, port or settings.server.port
            ))  # fmt: skip
        run_service(settings, host=host, port=port, socket_mode=socket_mode)
    except (ConfigError, SchemaNotReady, ServiceError, WorkersError) as exc:
        _fail(str(exc), 1)


@main.command("demo")
@click.option("--port", type=int, default=8000, show_default=True, help="Port on 127.0.0.1.")
@click.option("--no-browser", is_flag=True, help="Do not open a web browser.")
@click.option(
    "--scenario",
    type=click.Choice(["attack"]),
    default=None,
    help="Play a story by itself: 'attack' is a stolen key and a fake 'ack'.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite file to keep (default: a fresh temporary database).",
)
@click.option(
    "--verifier",
    type=click.Choice(["duo", "okta"]),
    default="duo",
    show_default=True,
    help="The second factor to fake: Duo push or Okta Verify push.",
)
@click.option(
    "--grid",
    is_flag=True,
    help="Slack Enterprise Grid: one org-wide install, people in two workspaces.",
)
def demo(
    port: int,
    no_browser: bool,
    scenario: str | None,
    db_path: str | None,
    verifier: str,
    grid: bool,
) -> None:
    """Run the real bot against local fakes of Slack and Duo (or Okta), with a web console."""
    import contextlib
    import os
    import socket
    import webbrowser

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("securitybot", "slack_bolt", "apscheduler", "httpx", "uvicorn", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("securitybot.demo.app").setLevel(logging.INFO)
    try:
        # The fakes import trustme (their throwaway TLS CA) only once started: check it here.
        import trustme  # noqa: F401

        from securitybot.demo.app import DASHBOARD_USER, INGEST_TOKEN, Demo
    except ImportError as exc:  # trustme comes with the demo extra
        _fail(f"demo: missing {exc.name}; install with: pip install 'securitybot[demo]'", 1)

    with socket.socket() as probe:
        # uvicorn would only notice after the fakes started; say it plainly and early.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            _fail(f"demo: cannot listen on 127.0.0.1:{port} ({exc.strerror}); try --port N", 1)
    runner = Demo(port=port, scenario=scenario, db_path=db_path, verifier=verifier, grid=grid)
    url = f"http://127.0.0.1:{port}/demo"

    def ready() -> None:
        click.echo(f"Securitybot demo running: {url}")
        click.echo(
            f"Dashboard: http://127.0.0.1:{port}/dashboard  "
            f"(user {DASHBOARD_USER}, password {runner.dashboard_password})"
        )
        # The README's API examples work against the demo with this token.
        click.echo(f"API: http://127.0.0.1:{port}/api/v1/alerts with "
                   f"'Authorization: Bearer {INGEST_TOKEN}'")  # fmt: skip
        click.echo(
            f"Timings are short for the demo: {runner.ack_timeout:.0f} s to answer, "
            f"{runner.duo_timeout:.0f} s to approve a push. Ctrl-C stops."
        )
        has_display = sys.platform in ("darwin", "win32") or bool(
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        )
        if not no_browser and has_display:
            webbrowser.open(url)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the demo ends
        runner.run(on_ready=ready)


@main.command("hash-password")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The password (asked for when not given; avoid passing it on a shared shell).",
)
def hash_password_cmd(password: str) -> None:
    """Print an argon2 hash for dashboard.users[].password_hash."""
    if len(password) < 12:
        _fail("hash-password: use at least 12 characters")
    from securitybot.dashboard.auth import hash_password

    click.echo(hash_password(password))


@main.command("send-alert")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--url", default=None, help="Server base URL (default: from server.host/port).")
@click.option(
    "--token",
    # config.yaml reads the ingest token from SECURITYBOT_INGEST_TOKEN: the same name works here
    # (SECURITYBOT_TOKEN, the earlier name, still does).
    envvar=["SECURITYBOT_INGEST_TOKEN", "SECURITYBOT_TOKEN"],
    default=None,
    help="Bearer token (default: $SECURITYBOT_INGEST_TOKEN, else the first in ingest.tokens).",
)
@click.option(
    "--hmac-secret",
    envvar="SECURITYBOT_HMAC_SECRET",
    default=None,
    help="Sign the request (HMAC v2) with this secret instead of a bearer token "
    "(default: $SECURITYBOT_HMAC_SECRET; with --source).",
)
@click.option(
    "--source",
    default=None,
    help="The signing source (ingest.tokens[].source); with --hmac-secret, or alone to sign "
    "with that source's hmac_secret from the config.",
)
@click.option(
    "--user",
    required=True,
    help="Email or Slack user id of the implicated person (any other value, such as root, "
    "goes straight to the team as no_user).",
)
@click.option("--kind", default="sensitive_command", show_default=True)
@click.option("--title", default="Test alert from securitybot send-alert", show_default=True)
@click.option("--description", default="")
@click.option("--dedup-key", default=None)
@click.option(
    "--detail",
    "details",
    multiple=True,
    metavar="KEY=VALUE",
    help="A details entry; repeat for more.",
)
def send_alert(
    config: str | None, url: str | None, token: str | None, hmac_secret: str | None,
    source: str | None, user: str, kind: str, title: str, description: str,
    dedup_key: str | None, details: tuple[str, ...],
) -> None:  # fmt: skip
    """Post a test alert to a running server and print the answer (bearer token, or an HMAC
    signature with --source)."""
    import httpx

    from securitybot.ingest.signing import signed_headers

    settings = _settings(config)
    if source is not None and hmac_secret is None:
        configured = next((t.hmac_secret for t in settings.ingest.tokens
                           if t.source == source and t.hmac_secret), None)  # fmt: skip
        if configured is None:
            _fail(f"send-alert: no --hmac-secret given and source {source!r} has no hmac_secret")
        hmac_secret = configured.get_secret_value()
    if hmac_secret is not None and source is None:
        _fail("send-alert: --hmac-secret needs --source (the signing source's name)")
    if token is None and hmac_secret is None:
        first = next((t.token for t in settings.ingest.tokens if t.token), None)
        if first is None:
            _fail("send-alert: no --token given and no bearer token in ingest.tokens")
        token = first.get_secret_value()
    base = (url or f"http://{settings.server.host}:{settings.server.port}").rstrip("/")
    detail_map: dict[str, Any] = {}
    for item in details:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"send-alert: --detail {item!r} must look like KEY=VALUE")
        detail_map[key] = value
    payload: dict[str, Any] = {
        "kind": kind,
        "user": user,
        "title": title,
        "description": description,
        "details": detail_map,
    }
    if dedup_key:
        payload["dedup_key"] = dedup_key
    body = json.dumps(payload).encode()
    path = urlsplit(base).path + "/api/v1/alerts"
    headers = {"Content-Type": "application/json"}
    if hmac_secret is not None and source is not None:
        # The same function the server verifies with (ingest.signing): the exact bytes sent.
        headers |= signed_headers(source, hmac_secret, "POST", path, "", body)
    else:
        headers["Authorization"] = f"Bearer {token}"
    try:
        resp = httpx.post(f"{base}/api/v1/alerts", content=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        _fail(f"send-alert: cannot reach {base}: {exc}", 1)
    click.echo(f"HTTP {resp.status_code}")
    try:
        click.echo(json.dumps(resp.json(), indent=2))
    except ValueError:
        click.echo(resp.text)
    if resp.status_code >= 400:
        sys.exit(1)


@main.group("aer")
def aer() -> None:
    """Anomaly Event Response maintenance."""


@aer.command("refresh-baselines")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
def aer_refresh_baselines(config: str | None) -> None:
    """Re-learn every org's dynamic thresholds from the persisted hourly counters."""
    settings = _settings(config)
    configure_logging(settings.logging, settings)
    from securitybot.aer.service import AerService
    from securitybot.store.db import check_schema

    db = Database.from_url(settings.database.url)
    try:
        check_schema(db.engine)
        r = AerService(settings.aer, db).refresh_baselines()
    except SchemaNotReady as exc:
        _fail(str(exc), 1)
    finally:
        db.dispose()
    # Running servers poll aer_versions (and LISTEN on PostgreSQL): they pick this up in seconds.
    click.echo(f"refreshed {r.learned} baselines, {r.changed} changed (version {r.version})")


@aer.command("worker")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    envvar="SECURITYBOT_AER_WORKER_METRICS_PORT",
    help="Serve this worker's Prometheus /metrics on this port (0: off).",
)
@click.option(
    "--metrics-host",
    default="0.0.0.0",
    show_default=True,
    help="Address the worker's /metrics listens on.",
)
def aer_worker(config: str | None, metrics_port: int, metrics_host: str) -> None:
    """Consume AER events from NATS JetStream (aer.stream) and detect on them."""
    settings = _settings(config)
    configure_logging(settings.logging, settings)
    if settings.aer.stream is None:
        _fail("aer.stream is not configured: events are processed by the server itself", 2)
    from securitybot.aer.worker import run_worker
    from securitybot.store.db import check_schema

    db = Database.from_url(settings.database.url)
    try:
        check_schema(db.engine)
        run_worker(settings, db, metrics_port, metrics_host)
    except SchemaNotReady as exc:
        _fail(str(exc), 1)
    finally:
        db.dispose()


@aer.command("update-tor-list")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--url", default=None, help="Override aer.tor_list_url.")
def aer_update_tor_list(config: str | None, url: str | None) -> None:
    """Download the Tor exit list, validate it and publish it to every running process."""
    settings = _settings(config)
    configure_logging(settings.logging, settings)
    from securitybot.aer.torlist import TorListError, update_tor_list
    from securitybot.store.db import check_schema

    a = settings.aer
    db = Database.from_url(settings.database.url)
    try:
        check_schema(db.engine)
        r = update_tor_list(
            db, url or a.tor_list_url, min_entries=a.tor_list_min_entries,
            max_entries=a.tor_list_max_entries,
        )  # fmt: skip
    except SchemaNotReady as exc:
        _fail(str(exc), 1)
    except TorListError as exc:
        _fail(f"update-tor-list: refused, the previous list stays in force: {exc}", 1)
    finally:
        db.dispose()
    click.echo(f"stored {r.entries} Tor exits (+{r.added} -{r.removed}, version {r.version})")


logging.captureWarnings(True)

# `securitybot aer dead-letters ...` lives beside the dead letters.
from securitybot.aer.deadletters_cli import aer_dead_letters  # noqa: E402

aer.add_command(aer_dead_letters)

# `securitybot purge | erase-person | export` (the data lifecycle) live in securitybot.privacy.
from securitybot.privacy.cli import COMMANDS as PRIVACY_COMMANDS  # noqa: E402

for _command in PRIVACY_COMMANDS:
    main.add_command(_command)
