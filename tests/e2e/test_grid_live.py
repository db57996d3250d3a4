"""Enterprise Grid, org-wide install: the workspaces the app is in change while it runs.

An Org Admin adds the app to a workspace (Slack sends ``team_access_granted``) or removes it
from one (``team_access_revoked``); no restart follows. A person there is DMed from then on, or
escalates as ``not_reachable``, on every replica, not only the one Slack sent the event to.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from securitybot.demo import FakeSlack
from securitybot.slack import grid
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until

ORG = "E1"


def team_access_body(kind: str, team_ids: list[str]) -> str:
    """A team_access_granted / team_access_revoked delivery to the org-wide install.

    The body is api.slack.com/events/team_access_granted's (and .../team_access_revoked's)
    example with our ids in place of Slack's placeholders::

        {"team_id": null, "enterprise_id": "EXXXXX", "api_app_id": "AXXXX",
         "event": {"type": "team_access_granted", "team_ids": ["T1XX3", "TXX34"]}}

    plus the fields that page says every Events API delivery has ("The outer payload is
    uniform across all Events API methods"): ``type: event_callback``, ``event_id``,
    ``event_time``, and the ``authorizations`` entry of an org-wide install (no team,
    ``is_enterprise_install: true``; api.slack.com/enterprise/apps/reference). ``event_ts`` is in
    the event as @slack/types' TeamAccessGrantedEvent / TeamAccessRevokedEvent declare it.
    """
    now = time.time()
    body = {
        "token": "legacy-verification-token",
        "team_id": None,
        "enterprise_id": ORG,
        "api_app_id": "A1",
        "event": {"type": kind, "team_ids": team_ids, "event_ts": f"{now:.6f}"},
        "type": "event_callback",
        "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": ORG,
                "team_id": None,
                "user_id": "UBOT",
                "is_bot": True,
                "is_enterprise_install": True,
            }
        ],
    }
    return json.dumps(body)


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    """The org E1: the app installed org-wide and added to T1 only; Carol is in T3."""
    with FakeSlack(team_id="T1", enterprise_id=ORG, org_install=True,
                   workspaces=["T1"]) as fake:  # fmt: skip
        fake.add_user("UALICE", "alice@example.com", real_name="Alice Liddell", teams=["T1"])
        fake.add_user("WCAROL", "carol@example.com", real_name="Carol", teams=["T3"])
        fake.add_channel(SECURITY_CHANNEL)
        fake.admin_token = "xoxp-admin"
        yield fake


def _started(bot: Bot) -> None:
    wait_until(lambda: bot.fs.calls_to("auth.teams.list"), 10, "the org's workspaces listed")


def _ask_carol(bot: Bot, key: str) -> dict[str, object]:
    alert = bot.post_alert(dedup_key=key, user="carol@example.com")
    return wait_until(
        lambda: (a := bot.alert(alert["id"]))["status"] in ("awaiting_ack", "escalated") and a,
        15, "Carol asked or escalated",
    )  # fmt: skip


def test_a_workspace_added_and_removed_while_running(make_bot: MakeBot, fs: FakeSlack) -> None:
    bot = make_bot()
    _started(bot)
    assert _ask_carol(bot, "live-1")["escalation_reason"] == "not_reachable"

    # An Org Admin adds the app to T3: Slack lists it from now on and says so once.
    fs.workspaces.append("T3")
    assert bot.slack_post(team_access_body("team_access_granted", ["T3"])).status_code == 200
    asked = _ask_carol(bot, "live-2")
    assert asked["status"] == "awaiting_ack" and asked["user_id"] == "WCAROL"
    assert ok_calls(fs, "chat.postMessage", "DWCAROL")

    # ...and removes it again: the next alert about Carol escalates, and nothing is sent to her.
    fs.workspaces.remove("T3")
    dms = len(ok_calls(fs, "chat.postMessage", "DWCAROL"))
    assert bot.slack_post(team_access_body("team_access_revoked", ["T3"])).status_code == 200
    gone = _ask_carol(bot, "live-3")
    assert gone["status"] == "escalated" and gone["escalation_reason"] == "not_reachable"
    assert len(ok_calls(fs, "chat.postMessage", "DWCAROL")) == dms


def test_every_replica_learns_it_not_only_the_one_slack_sent_the_event_to(
    make_bot: MakeBot, fs: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas on one database: Slack's event reaches the first, which only answers
    Slack (no scheduler); the second sends every DM and never sees the event."""
    monkeypatch.setattr(grid, "RECHECK", 0.5)  # seconds in production: see slack/grid.py
    monkeypatch.setattr(grid, "REFRESH", 1.0)
    front = make_bot(scheduler={"enabled": False})
    worker = make_bot()
    _started(worker)
    time.sleep(grid.RECHECK)  # the worker's list, read at start, is no longer fresh

    fs.workspaces.append("T3")
    assert front.slack_post(team_access_body("team_access_granted", ["T3"])).status_code == 200
    asked = _ask_carol(worker, "replica-1")
    assert asked["status"] == "awaiting_ack", asked  # not not_reachable: re-read first
    assert ok_calls(fs, "chat.postMessage", "DWCAROL")

    fs.workspaces.remove("T3")
    assert front.slack_post(team_access_body("team_access_revoked", ["T3"])).status_code == 200
    reads = len(fs.calls_to("auth.teams.list"))
    wait_until(lambda: len(fs.calls_to("auth.teams.list")) > reads + 1, 10, "re-read")
    dms = len(ok_calls(fs, "chat.postMessage", "DWCAROL"))
    gone = _ask_carol(worker, "replica-2")
    assert gone["status"] == "escalated" and gone["escalation_reason"] == "not_reachable"
    assert len(ok_calls(fs, "chat.postMessage", "DWCAROL")) == dms


@pytest.mark.parametrize("failing", ["auth.test", "auth.teams.list"])
def test_a_start_up_read_that_failed_is_done_by_the_periodic_one(
    make_bot: MakeBot, fs: FakeSlack, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """One transient error at start (Slack's documented ``internal_error``,
    docs.slack.dev/reference/methods/auth.teams.list and .../auth.test): until the org's
    workspaces are read, everyone would look reachable; the next periodic re-read reads
    them, and Carol (in T3, which the app was never added to) escalates as not_reachable."""
    monkeypatch.setattr(grid, "REFRESH", 0.5)  # seconds in production: see slack/grid.py
    fs.fail_next(failing, error="internal_error")
    bot = make_bot()
    wait_until(lambda: [c for c in fs.calls_to(failing) if not c.response.get("ok")], 10,
               "the start-up read failing")  # fmt: skip
    wait_until(lambda: [c for c in fs.calls_to("auth.teams.list") if c.response.get("ok")], 10,
               "the org's workspaces read by the periodic re-read")  # fmt: skip
    gone = _ask_carol(bot, "late-1")
    assert gone["status"] == "escalated" and gone["escalation_reason"] == "not_reachable"
    assert not ok_calls(fs, "chat.postMessage", "DWCAROL")
