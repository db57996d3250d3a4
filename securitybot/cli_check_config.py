"""``securitybot check-config``: validate the configuration, print it with secrets masked, and
with Slack credentials ask Slack whether the bot is in its channels and its tokens have the
scopes they need. ``securitybot.cli`` adds :data:`check_config` to the main group."""

from __future__ import annotations

import os
import sys

import click
import yaml

from securitybot.cli_support import CONFIG_HELP, fail, settings_from
from securitybot.config import ConfigError, Settings, find_config_path, mask_secrets_in


@click.command("check-config")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--offline", is_flag=True, help="Do not ask Slack (auth.test, channel membership).")
def check_config(config: str | None, offline: bool) -> None:
    """Validate the configuration and print it with secrets masked; with Slack credentials,
    also check that the bot is a member of the security channel and every routed channel."""
    settings = settings_from(config)
    from securitybot.kinds import load_kinds

    try:
        kinds = load_kinds(settings.alerts.dir)
    except ConfigError as exc:
        fail(str(exc))
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
