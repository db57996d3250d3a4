"""An org-wide install's workspaces, kept current on each replica (slack/grid.py): the events
Slack sends to one replica, the re-read before anyone is called not reachable, and the
periodic re-read that reaches every replica."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.demo import FakeSlack
from securitybot.slack import grid
from securitybot.slack.gateway import SlackGateway
from securitybot.slack.teams import HomeIdentity, ServedTeams
from securitybot.slack.tiers import Limits

ORG_INSTALL = {"is_enterprise_install": True, "enterprise_id": "E1"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack(enterprise_id="E1", org_install=True, workspaces=["T1", "T2"]) as fake:
        fake.add_user("UALICE", "alice@example.com", teams=["T1"])
        fake.add_user("WCAROL", "carol@example.com", teams=["T3"])
        yield fake


def _org(fs: FakeSlack, clock: Clock) -> tuple[SlackGateway, grid.Workspaces]:
    client = AsyncWebClient(token="xoxb-test", base_url=fs.base_url)
    gateway = SlackGateway(client, limits=Limits(scale=1000.0))
    return gateway, grid.Workspaces(gateway, clock=clock)


async def test_the_events_change_the_list_on_the_replica_that_receives_them(
    fs: FakeSlack,
) -> None:
    gateway, org = _org(fs, Clock())
    await org.learn(ORG_INSTALL)
    assert gateway.workspaces == {"T1", "T2"}
    # The event's team_ids, as api.slack.com/events/team_access_granted shows them.
    org.granted(grid.team_ids_of({"type": "team_access_granted", "team_ids": ["T3", "T4"]}))
    assert gateway.workspaces == {"T1", "T2", "T3", "T4"}
    org.revoked(grid.team_ids_of({"type": "team_access_revoked", "team_ids": ["T2", "T4"]}))
    assert gateway.workspaces == {"T1", "T3"}


async def test_a_workspace_token_is_left_alone(fs: FakeSlack) -> None:
    """Not an org-wide install: everyone is reachable, nothing is read, events change nothing."""
    gateway, org = _org(fs, Clock())
    await org.learn({"is_enterprise_install": False, "team_id": "T1"})
    org.granted(["T3"])
    await org.periodic()
    assert gateway.workspaces is None and not fs.calls_to("auth.teams.list")
    carol = await gateway.lookup_user("carol@example.com")
    assert carol is not None and carol.reachable


async def test_before_calling_someone_not_reachable_the_list_is_read_again(
    fs: FakeSlack,
) -> None:
    """Another replica got team_access_granted: this one asks Slack before it escalates."""
    clock = Clock()
    gateway, org = _org(fs, clock)
    await org.learn(ORG_INSTALL)
    carol = await gateway.lookup_user("carol@example.com")
    assert carol is not None and not carol.reachable  # the list was just read: no second read
    assert len(fs.calls_to("auth.teams.list")) == 1

    fs.workspaces.append("T3")  # added, and the event went elsewhere
    clock.now += grid.RECHECK
    assert gateway.cached("carol@example.com") == (False, None)  # so the batch asks first
    carol = await gateway.lookup_user("carol@example.com")
    assert carol is not None and carol.reachable
    assert gateway.workspaces == {"T1", "T2", "T3"}
    assert len(fs.calls_to("auth.teams.list")) == 2
    known, person = gateway.cached("carol@example.com")
    assert known and person is not None and person.reachable


async def test_the_re_read_is_shared_and_at_most_once_per_recheck(fs: FakeSlack) -> None:
    clock = Clock()
    _, org = _org(fs, clock)
    await org.learn(ORG_INSTALL)
    clock.now += grid.RECHECK
    await asyncio.gather(*(org.recheck() for _ in range(20)))
    await org.recheck()
    assert len(fs.calls_to("auth.teams.list")) == 2


async def test_the_periodic_re_read_sees_a_workspace_removed(fs: FakeSlack) -> None:
    gateway, org = _org(fs, Clock())
    await org.learn(ORG_INSTALL)
    alice = await gateway.lookup_user("alice@example.com")
    assert alice is not None and alice.reachable
    fs.workspaces.remove("T1")  # removed; the event went to another replica
    await org.periodic()
    alice = await gateway.lookup_user("alice@example.com")
    assert alice is not None and not alice.reachable
    assert gateway.workspaces == {"T2"}


async def test_slack_failing_the_re_read_keeps_the_list(fs: FakeSlack) -> None:
    gateway, org = _org(fs, Clock())
    await org.learn(ORG_INSTALL)
    fs.fail_next("auth.teams.list", error="internal_error")
    await org.periodic()
    assert gateway.workspaces == {"T1", "T2"}


async def test_an_event_during_a_re_read_is_not_undone_by_it(
    fs: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack answered auth.teams.list just before the admin's change; the event came after."""
    gateway, org = _org(fs, Clock())
    await org.learn(ORG_INSTALL)
    asked, answer = asyncio.Event(), asyncio.Event()

    async def slow_list(_: SlackGateway) -> frozenset[str]:
        asked.set()
        await answer.wait()
        return frozenset({"T1", "T2"})  # as it was before the events below

    monkeypatch.setattr(grid, "list_workspaces", slow_list)
    reading = asyncio.ensure_future(org.periodic())
    await asked.wait()
    org.granted(["T3"])
    org.revoked(["T1"])
    answer.set()
    await reading
    assert gateway.workspaces == {"T2", "T3"}


@pytest.mark.parametrize("failing", ["auth.test", "auth.teams.list"])
async def test_a_first_read_that_failed_is_done_by_the_next_periodic_one(
    fs: FakeSlack, failing: str
) -> None:
    """The read at start failed (Slack's documented ``internal_error``): one periodic tick
    later the org's workspaces are known (auth.test first when that is what failed)."""
    gateway, org = _org(fs, Clock())
    home = HomeIdentity(gateway.client, ServedTeams())
    org.home = home.auth
    fs.fail_next(failing, error="internal_error")
    with pytest.raises(SlackApiError):
        await org.learn(await home.auth())  # what the start-up check does
    assert gateway.workspaces is None
    await org.periodic()
    assert gateway.workspaces == {"T1", "T2"}
    assert len(fs.calls_to("auth.test")) == (2 if failing == "auth.test" else 1)
