"""AER's reset of someone in a workspace installed through OAuth outside Enterprise Grid: no
token can reset them (admin.users.session.reset is Grid only), so Slack is not called, and the
team is told why, naming the workspace, in the escalation and the audit log (issue 30)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import select

from securitybot.demo import FakeDuo, FakeSlack
from securitybot.store.models import AuditLog
from tests.aer_e2e.conftest import AER_CHANNEL, TOR_IP, aer_config, aer_ingest, get, post_events
from tests.e2e.harness import SECURITY_CHANNEL, e2e_settings, ok_calls, running_bot, wait_until
from tests.e2e.test_oauth_workspaces import (
    BLUE,
    CLIENT_ID,
    CLIENT_SECRET,
    install,
    oauth_config,
    sign_in,
)


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack(team_id="T1") as fake:
        fake.add_user("UALICE", "alice@example.com", real_name="Alice Liddell")
        fake.add_user("UBOB", "bob@example.com", real_name="Bob Builder", teams=[BLUE])
        fake.add_channel(SECURITY_CHANNEL)
        fake.add_channel(AER_CHANNEL)
        fake.admin_token = "xoxp-admin"
        fake.oauth_client = (CLIENT_ID, CLIENT_SECRET)
        yield fake


def test_an_aer_reset_in_a_workspace_outside_grid_escalates_naming_it(
    db_url: str, fs: FakeSlack, fd: FakeDuo
) -> None:
    aer = aer_config(orgs={BLUE: {"notify": {"channel": AER_CHANNEL}}}, contacts={})
    settings = e2e_settings(db_url, fs, fd, aer=aer, ingest=aer_ingest([BLUE]),
                            **oauth_config(fs))  # fmt: skip
    with ExitStack() as stack:
        bot = stack.enter_context(running_bot(settings, fs, fd))
        sign_in(bot)
        install(bot, BLUE, "Blue Co", "UBOB")
        post_events(bot, [{"org": BLUE, "user": "UBOB", "action": "login", "ip": TOR_IP,
                           "session": "SBOB1"}])  # fmt: skip

        def refused() -> list[str]:
            rows = get(bot, "/api/v1/anomalies", org=BLUE)["anomalies"]
            return [r["response"] for r in rows if r.get("response")]

        [response] = wait_until(refused, what="the reset refused")
        assert response == "reset_refused:session_reset_unavailable"
        posts = wait_until(
            lambda: [c.params["text"] for c in ok_calls(fs, "chat.postMessage", SECURITY_CHANNEL)
                     if "AER escalation" in c.params.get("text", "")],
            what="the escalation",
        )  # fmt: skip
        assert "session_reset_unavailable in workspace Blue Co (TBLUE)" in posts[0]
        assert "not on Enterprise Grid" in posts[0]
        assert not fs.calls_to("admin.users.session.reset") and fs.session_resets == []
        with bot.db.read() as session:
            [row] = session.scalars(
                select(AuditLog).where(AuditLog.action == "user.sessions_reset_failed")
            ).all()
        assert row.subject_user == "UBOB" and row.org == BLUE
        assert row.details["workspace"] == "Blue Co"
        assert row.details["error"] == "session_reset_unavailable"
