"""Click through the demo console like a new user, then find the results on the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from securitybot.demo.app import DASHBOARD_USER, Demo
from tests.browser.conftest import ARTIFACTS

ALICE, BOB = '[data-testid="employee-UALICE"]', '[data-testid="employee-UBOB"]'
CHANNEL = '[data-testid="security-channel"]'


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def alert_id_for(demo: Demo, email: str, kind: str) -> int:
    import httpx

    from securitybot.demo.app import INGEST_TOKEN

    resp = httpx.get(
        f"{demo.base_url}/api/v1/alerts",
        params={"user": email, "kind": kind},
        headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
    )
    alerts = resp.json()["alerts"]
    assert alerts, resp.text
    return int(alerts[-1]["id"])


def log_in_to_dashboard(page: Any, demo: Demo, path: str) -> None:
    page.goto(f"{demo.base_url}{path}")
    assert "/dashboard/login" in page.url  # nothing is shown before signing in
    page.fill('input[name="username"]', DASHBOARD_USER)
    page.fill('input[name="password"]', demo.dashboard_password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"**{path}")


def test_happy_path_alice_confirms_with_duo(page: Any, demo: Demo) -> None:
    page.goto(f"{demo.base_url}/demo")
    assert "45 s" in page.inner_text('[data-testid="timeouts"]')
    page.click(f'{ALICE} [data-testid="btn-alert_confirm"]')
    approve = page.locator('[data-testid="phone-UALICE"] [data-testid="push-approve"]')
    approve.wait_for()
    assert "accountingserver01" in page.inner_text('[data-testid="phone-UALICE"]')
    shot(page, "demo-push-pending")
    approve.click()
    alert_id = alert_id_for(demo, "alice@example.com", "sensitive_command")
    page.locator(f'[data-testid="alert-status-{alert_id}"]', has_text="resolved").wait_for()
    page.locator(f'{ALICE} [data-testid="msg"]', has_text="Confirmed with Duo").wait_for()
    # Once confirmed, the DM offers snoozing instead of the answer buttons.
    assert page.locator(f'{ALICE} [data-testid="btn-alert_confirm"]').count() == 0
    assert page.locator(f'{ALICE} [data-testid="btn-snooze_1h"]').count() == 1
    shot(page, "demo-happy-path")

    log_in_to_dashboard(page, demo, f"/dashboard/alerts/{alert_id}")
    timeline = page.inner_text("#timeline")
    for action in ("alert.dm_sent", "alert.user_confirmed", "duo.push_sent", "alert.duo_approved"):
        assert action in timeline
    assert "confirmed" in page.inner_text(".facts")


def test_attack_path_push_denied_then_compromise_confirmed(page: Any, demo: Demo) -> None:
    page.goto(f"{demo.base_url}/demo")
    page.locator(f'{BOB} [data-testid="btn-alert_confirm"]').wait_for()
    # Whoever holds Bob's Slack session types "ack"; only Bob's phone can back that up.
    page.fill(f'{BOB} input[name="text"]', "ack yes that was me")
    page.click(f'{BOB} form button[type="submit"]')
    deny = page.locator('[data-testid="phone-UBOB"] [data-testid="push-deny"]')
    deny.wait_for()
    deny.click()
    escalation = page.locator(f'{CHANNEL} [data-testid="msg"]', has_text="Duo push was denied")
    escalation.wait_for()
    alert_id = alert_id_for(demo, "bob@example.com", "new_login_location")
    page.select_option('[data-testid="persona"]', "USAM")
    escalation.locator('[data-testid="btn-triage_compromise"]').click()
    page.click('[data-testid="confirm-ok"]')  # the Slack-style "Reset sessions?" confirmation
    page.locator('[data-testid="sessions-reset-UBOB"]').wait_for()
    page.locator(f'[data-testid="alert-status-{alert_id}"]', has_text="closed").wait_for()
    assert "UBOB" in demo.fs.session_resets
    shot(page, "demo-attack-path")

    log_in_to_dashboard(page, demo, f"/dashboard/alerts/{alert_id}")
    facts, timeline = page.inner_text(".facts"), page.inner_text("#timeline")
    assert "compromised" in facts and "duo_denied" in facts
    assert "alert.confirmed_compromise" in timeline and "user.sessions_reset" in timeline
    page.goto(f"{demo.base_url}/dashboard")
    assert page.locator("svg").count() == 4
    shot(page, "dashboard-overview")


def test_outsider_is_refused_and_benign_needs_a_note(page: Any, demo: Demo) -> None:
    page.goto(f"{demo.base_url}/demo")
    unknown = page.locator(f'{CHANNEL} [data-testid="msg"]', has_text="could not be found")
    unknown.wait_for()
    page.select_option('[data-testid="persona"]', "UMALLORY")
    unknown.locator('[data-testid="btn-triage_claim"]').click()
    page.locator(
        f'{CHANNEL} [data-testid="ephemeral"]', has_text="Only the security team"
    ).wait_for()
    page.select_option('[data-testid="persona"]', "URILEY")
    unknown.locator('[data-testid="btn-triage_benign"]').click()
    note = page.locator('[data-testid="modal-note"]')
    note.wait_for()
    note.fill("Eve is a contractor migrating the shared drive; ticket OPS-1234.")
    shot(page, "demo-benign-modal")
    page.click('[data-testid="modal-submit"]')
    note.wait_for(state="detached")
    alert_id = alert_id_for(demo, "eve.contractor@example.com", "mass_download")
    page.locator(f'[data-testid="alert-status-{alert_id}"]', has_text="closed").wait_for()
    assert "benign" in page.inner_text(f'[data-testid="alert-row-{alert_id}"]')


def test_the_pager_beside_the_phones_acknowledges_and_claims(page: Any, demo: Demo) -> None:
    # Issue 29: an alert about someone Slack does not know escalates at once and pages the
    # on-call; the console shows that pager, and acknowledging there claims the alert in Slack.
    demo.post_alert({"kind": "mass_download", "user": "ghost.vendor@example.com",
                     "title": "7,777 files downloaded", "dedup_key": "browser-pager",
                     "details": {"count": 7777}})  # fmt: skip
    page.goto(f"{demo.base_url}/demo")
    pager = page.locator('[data-testid="pager"]')
    incident = pager.locator('[data-testid="incident"]', has_text="7,777 files downloaded")
    incident.wait_for()
    assert "Sam Spade" in pager.inner_text()
    shot(page, "demo-pager")
    incident.locator('[data-testid="pager-ack"]').click()
    alert_id = alert_id_for(demo, "ghost.vendor@example.com", "mass_download")
    page.locator(f'[data-testid="alert-status-{alert_id}"]', has_text="triaging").wait_for()
    page.locator(f'{CHANNEL} [data-testid="msg"]', has_text="Acknowledged in PagerDuty").wait_for()
