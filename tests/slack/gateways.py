"""A Slack gateway to the fake Slack with the durable people cache attached, as the service
wires it, for tests of what the gateway asks Slack and what it keeps."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from securitybot.demo import FakeSlack
from securitybot.slack.directory import DbDirectory
from securitybot.slack.gateway import SlackGateway
from securitybot.slack.tiers import Limits
from securitybot.store.db import Database
from tests.slack.test_installations import install, replica

BLUE, GREEN = "TBLUE", "TGREEN"


async def attached_gateway(fs: FakeSlack, db: Database) -> tuple[SlackGateway, DbDirectory]:
    """The gateway and its people directory on ``db`` (close the directory to flush it)."""
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url))
    directory = DbDirectory(db)
    await gateway.attach(directory)
    return gateway, directory


async def installed_gateway(db: Database, fs: FakeSlack) -> SlackGateway:
    """A gateway serving slack.bot_token's workspace (T1) and two installed through OAuth,
    Blue then Green (another replica's view of the store: nothing cached yet)."""
    await install(db, fs, BLUE)
    await install(db, fs, GREEN)
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=Limits(scale=1000.0))  # fmt: skip
    gateway.installations = replica(db, fs)
    gateway.home_team = "T1"
    return gateway
