"""The directory of people from users.list (issue 27, item 1), against Slack's documented answer.

The fake answers users.list in the shape of Slack's "Typical success response"
(``securitybot.demo.slack_examples.USERS_LIST``, docs.slack.dev/reference/methods/users.list),
with that example's two members verbatim among its own, deactivated ones included, in cursor
pages.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.demo import FakeSlack
from securitybot.demo.slack_examples import USERS_LIST
from securitybot.slack.directory import DbDirectory
from securitybot.slack.gateway import SlackGateway, SlackPermanentError
from securitybot.slack.tiers import Limits
from securitybot.store import slack_people
from securitybot.store.db import Database

PEOPLE = 5  # besides the documented two and a deactivated one


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        for member in USERS_LIST["members"]:
            fake.add_member(copy.deepcopy(member))
        for i in range(PEOPLE):
            fake.add_user(f"U{i:03d}", f"person{i}@example.com", real_name=f"Person {i}")
        fake.add_user("UGONE", "gone@example.com", deleted=True)
        yield fake


def _gateway(fs: FakeSlack, ttl: float = 3600.0) -> SlackGateway:
    client = AsyncWebClient(token="xoxb-test", base_url=fs.base_url)
    return SlackGateway(client, cache_ttl=ttl, limits=Limits(scale=1000.0))


def test_the_fake_pages_users_list_in_slacks_documented_shape(fs: FakeSlack) -> None:
    client = WebClient(token="xoxb-test", base_url=fs.base_url)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = client.users_list(limit=3, cursor=cursor or None).data
        assert isinstance(page, dict)
        assert set(page) == set(USERS_LIST)  # ok, members, cache_ts, response_metadata
        assert len(page["members"]) <= 3
        seen += [m["id"] for m in page["members"]]
        cursor = page["response_metadata"]["next_cursor"]
        pages += 1
        if not cursor:
            break
        # Slack's own cursor form: the documented one is base64 of "user:U0G9WFXNZ".
        assert base64.b64decode(cursor).decode().startswith("user:")
    assert pages == 3
    assert sorted(seen) == seen and len(seen) == len(set(seen)) == PEOPLE + 3
    everyone = client.users_list().data
    assert isinstance(everyone, dict)
    documented = [m for m in everyone["members"] if m["id"] in ("W012A3CDE", "W07QCRPA4")]
    assert documented == USERS_LIST["members"]  # verbatim
    assert everyone["response_metadata"]["next_cursor"] == ""


async def test_a_sync_reads_every_page_and_keeps_deactivated_people(
    db: Database, fs: FakeSlack
) -> None:
    gateway = _gateway(fs)
    directory = DbDirectory(db)
    await gateway.attach(directory)

    assert await gateway.sync_directory(page_size=3) == PEOPLE + 3
    calls = fs.calls_to("users.list")
    assert [c.params.get("limit") for c in calls] == ["3", "3", "3"]
    assert [bool(c.params.get("cursor")) for c in calls] == [False, True, True]

    egon = await gateway.lookup_user("spengler@ghostbusters.example.com")
    glinda = await gateway.lookup_user("Glenda@South.Oz.Coven")  # addresses are case-blind
    gone = await gateway.lookup_user("gone@example.com")
    assert egon is not None and (egon.id, egon.first_name, egon.tz) == (
        "W012A3CDE", "Egon", "America/Los_Angeles",
    )  # fmt: skip
    assert glinda is not None and (glinda.id, glinda.first_name) == ("W07QCRPA4", "Glinda")
    # Known as deactivated (users.lookupByEmail would only say users_not_found).
    assert gone is not None and (gone.id, gone.deleted) == ("UGONE", True)
    assert await gateway.lookup_user("W07QCRPA4") == glinda
    assert not fs.calls_to("users.lookupByEmail") and not fs.calls_to("users.info")

    await directory.close()  # the write-behind lands in the people table
    with db.read() as session:
        users, _ = slack_people.load_all(session)
    assert users["gone@example.com"][0]["deleted"] is True
    assert users["UGONE"][0]["deleted"] is True
    assert users["spengler@ghostbusters.example.com"][0]["id"] == "W012A3CDE"
    assert {f"person{i}@example.com" for i in range(PEOPLE)} <= set(users)

    # Another process (or a restart) starts from the people table: no Slack call.
    later = _gateway(fs)
    await later.attach(DbDirectory(db))
    found = await later.lookup_user("person3@example.com")
    assert found is not None and found.id == "U003"
    assert not fs.calls_to("users.lookupByEmail")


async def test_the_directory_outlives_the_cache_ttl_and_lookups_cover_newcomers(
    fs: FakeSlack,
) -> None:
    gateway = _gateway(fs, ttl=0.0)  # every looked-up entry is stale at once
    await gateway.sync_directory()
    assert len(fs.calls_to("users.list")) == 1  # no limit needed below 1,000: one page
    assert fs.calls_to("users.list")[0].params.get("limit") == "1000"
    for i in range(PEOPLE):
        assert await gateway.lookup_user(f"person{i}@example.com") is not None
    assert not fs.calls_to("users.lookupByEmail")

    # Someone who joined since the sync (on a replica that missed team_join): the fallback.
    fs.add_user("UNEW", "new@example.com")
    found = await gateway.lookup_user("new@example.com")
    assert found is not None and found.id == "UNEW"
    assert len(fs.calls_to("users.lookupByEmail")) == 1


async def test_a_changed_address_no_longer_names_the_person(fs: FakeSlack) -> None:
    gateway = _gateway(fs)
    await gateway.sync_directory()
    changed = copy.deepcopy(fs.users["U001"])
    changed["profile"]["email"] = "renamed@example.com"
    gateway.learn_users([changed])  # as a user_change event brings it
    found = await gateway.lookup_user("renamed@example.com")
    assert found is not None and found.id == "U001"
    assert not fs.calls_to("users.lookupByEmail")
    # The old address is not theirs any more: Slack is asked (and knows nobody by it).
    fs.users["U001"]["profile"]["email"] = "renamed@example.com"
    assert await gateway.lookup_user("person1@example.com") is None
    assert len(fs.calls_to("users.lookupByEmail")) == 1


async def test_a_deactivated_account_never_takes_an_active_ones_address(fs: FakeSlack) -> None:
    fs.add_user("UOLD", "person2@example.com", deleted=True)  # sorted after U002 in the pages
    gateway = _gateway(fs)
    await gateway.sync_directory(page_size=2)
    found = await gateway.lookup_user("person2@example.com")
    assert found is not None and (found.id, found.deleted) == ("U002", False)


async def test_an_org_wide_install_lists_each_workspace_it_was_added_to() -> None:
    """Enterprise Grid: an org token's users.list needs team_id ("required if org token is
    used"; Slack answers missing_argument without it), so the sync reads one workspace at a
    time: the workspaces the app was added to."""
    with FakeSlack(enterprise_id="E0ORG", org_install=True, workspaces=["T1", "T2"]) as fake:
        fake.add_user("UONE", "one@example.com", teams=["T1"])
        fake.add_user("UTWO", "two@example.com", teams=["T2"])
        gateway = _gateway(fake)
        with pytest.raises(SlackPermanentError, match="missing_argument"):
            await gateway.sync_directory()
        gateway.workspaces = frozenset({"T1", "T2"})
        assert await gateway.sync_directory() == 2
        assert (await gateway.lookup_user("two@example.com")) is not None
        lists = fake.calls_to("users.list")
        assert [c.params.get("team_id") for c in lists][-2:] == ["T1", "T2"]
        assert not fake.calls_to("users.lookupByEmail")
