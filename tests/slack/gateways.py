"""A Slack gateway to the fake Slack with the durable people cache attached, as the service
wires it, for tests of what the gateway asks Slack and what it keeps."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from securitybot.demo import FakeSlack
from securitybot.slack.directory import DbDirectory
from securitybot.slack.gateway import SlackGateway
from securitybot.store.db import Database


async def attached_gateway(fs: FakeSlack, db: Database) -> tuple[SlackGateway, DbDirectory]:
    """The gateway and its people directory on ``db`` (close the directory to flush it)."""
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url))
    directory = DbDirectory(db)
    await gateway.attach(directory)
    return gateway, directory
