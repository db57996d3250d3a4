"""The dashboard's Suppressions page in a real browser: a rule made from Slack is listed with
the alert it closed, and a signed-in user revokes it (CSRF-protected form), audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from securitybot.dashboard.auth import hash_password
from securitybot.demo import FakeDuo, FakeSlack, slash_command_body
from securitybot.store.models import AuditLog
from tests.e2e.harness import IKEY, SECURITY_CHANNEL, SKEY, Bot, e2e_settings, running_bot

LEAD = "USECLEAD"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def bot(db_url: str) -> Iterator[Bot]:
    with FakeSlack() as fs, FakeDuo(ikey=IKEY, skey=SKEY) as fd:
        fs.add_user("UALICE", "alice@example.com", real_name="Alice Liddell", first_name="Alice")
        fs.add_user(LEAD, "lead@example.com", real_name="Sam Lead", first_name="Sam")
        fs.add_channel(SECURITY_CHANNEL)
        settings = e2e_settings(
            db_url, fs, fd,
            escalation={"responders": [LEAD]},
            dashboard={"enabled": True, "session_secret": "d" * 40,
                       "users": [{"username": "ada", "password_hash": hash_password(PASSWORD)}]},
        )  # fmt: skip
        with running_bot(settings, fs, fd) as b:
            yield b


def test_the_dashboard_lists_rules_and_what_they_suppressed_and_revokes_them(
    bot: Bot, browser: Any
) -> None:
    reply = bot.slack_post(
        slash_command_body(user=LEAD, text="suppress sensitive_command host=build-* 4h CI rebuild")
    )
    assert "Suppression rule" in reply.json()["text"]
    alert = bot.post_alert(details={"host": "build-07", "command": "docker build"})
    assert bot.wait_status(alert["id"], "closed")["outcome"] == "suppressed"

    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"{bot.base}/dashboard/suppressions")  # sign-in first, then back here
        page.fill("input[name=username]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{bot.base}/dashboard/suppressions")
        rules = page.locator("#rules tbody tr")
        assert rules.count() == 1
        row = rules.first.inner_text()
        assert "R1" in row and "sensitive_command" in row and "host=build-*" in row
        assert "CI rebuild" in row and LEAD in row
        suppressed = page.locator("#suppressed tbody tr").first.inner_text()
        assert f"#{alert['id']}" in suppressed and "suppressed" in suppressed and "R1" in suppressed

        rules.first.locator("button", has_text="Revoke").click()
        page.wait_for_url(f"{bot.base}/dashboard/suppressions?revoked=1")
        assert "Rule R1 revoked." in page.locator(".notice").inner_text()
        assert "No active rules." in page.locator("#rules").inner_text()
        assert "CI rebuild" in page.locator("#past-rules").inner_text()  # kept, never deleted
    finally:
        context.close()
    with bot.db.read() as session:
        [revoked] = session.scalars(
            select(AuditLog).where(AuditLog.action == "suppression.revoked")
        ).all()
    assert (revoked.actor, revoked.details["via"]) == ("dashboard:ada", "dashboard")
