"""``securitybot send-alert``: post a test alert to a running server, with a bearer token or
signed (HMAC v2) as a source would, and print the answer."""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import urlsplit

import click

from securitybot.cli_support import CONFIG_HELP, fail, settings_from


@click.command("send-alert")
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

    settings = settings_from(config)
    if source is not None and hmac_secret is None:
        configured = next((t.hmac_secret for t in settings.ingest.tokens
                           if t.source == source and t.hmac_secret), None)  # fmt: skip
        if configured is None:
            fail(f"send-alert: no --hmac-secret given and source {source!r} has no hmac_secret")
        hmac_secret = configured.get_secret_value()
    if hmac_secret is not None and source is None:
        fail("send-alert: --hmac-secret needs --source (the signing source's name)")
    if token is None and hmac_secret is None:
        first = next((t.token for t in settings.ingest.tokens if t.token), None)
        if first is None:
            fail("send-alert: no --token given and no bearer token in ingest.tokens")
        token = first.get_secret_value()
    base = (url or f"http://{settings.server.host}:{settings.server.port}").rstrip("/")
    detail_map: dict[str, Any] = {}
    for item in details:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"send-alert: --detail {item!r} must look like KEY=VALUE")
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
        fail(f"send-alert: cannot reach {base}: {exc}", 1)
    click.echo(f"HTTP {resp.status_code}")
    try:
        click.echo(json.dumps(resp.json(), indent=2))
    except ValueError:
        click.echo(resp.text)
    if resp.status_code >= 400:
        sys.exit(1)
