"""The demo runner without a browser: seeding, the scripted attack, and the console's endpoints."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.demo.app import INGEST_TOKEN, SECURITY_CHANNEL, Demo, free_port


def wait_for(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def attack_demo() -> Iterator[Demo]:
    with Demo(
        port=free_port(), scenario="attack", ack_timeout=30, duo_timeout=2, sweep_interval=0.3
    ) as d:
        yield d


def test_attack_scenario_ends_with_alice_signed_out(attack_demo: Demo) -> None:
    d = attack_demo
    wait_for(lambda: "UALICE" in d.fs.session_resets, 45, "Alice's sessions to be reset")
    alerts = httpx.get(
        f"{d.base_url}/api/v1/alerts",
        params={"user": "alice@example.com"},
        headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
    ).json()["alerts"]
    attack = next(a for a in alerts if "supportserver01" in a["title"])
    assert (attack["status"], attack["outcome"]) == ("closed", "compromised")
    assert attack["escalation_reason"] == "duo_timeout"
    assert attack["user_answer"] == "confirmed"  # the attacker's "ack" was not believed
    # The seeds went through the ingest API and the bot; Alice's DM belongs to the story alone.
    assert d.fs.messages("DUBOB") and d.fs.messages(SECURITY_CHANNEL)
    assert not any("accountingserver01" in m["text"] for m in d.fs.messages("DUALICE"))
    wait_for(lambda: any("signed out" in n["text"] for n in d.narration), 5, "the last line")
    state = httpx.get(f"{d.base_url}/demo/api/state").json()
    assert state["session_resets"] == ["UALICE"]
    assert any("ack" in n["text"] for n in state["narration"])


def test_console_endpoints_refuse_cross_site_forms() -> None:
    with Demo(port=free_port(), seed=False) as d:
        page = httpx.get(f"{d.base_url}/demo")
        assert page.status_code == 200 and d.dashboard_password in page.text
        form = httpx.post(f"{d.base_url}/demo/api/say", data={"user": "UALICE", "text": "ack"})
        assert form.status_code == 415
        bad = httpx.post(f"{d.base_url}/demo/api/push", json={"txid": "nope", "answer": "allow"})
        assert bad.status_code == 409
        assert httpx.get(f"{d.base_url}/dashboard", follow_redirects=False).status_code == 303


def test_the_demo_runs_with_okta_verify_and_the_console_answers_its_push() -> None:
    with Demo(port=free_port(), seed=False, verifier="okta") as d:
        assert d.settings().verify.provider == "okta"
        ingest = {"Authorization": f"Bearer {INGEST_TOKEN}"}
        alert = httpx.post(f"{d.base_url}/api/v1/alerts", headers=ingest, json={
            "kind": "sensitive_command", "user": "alice@example.com", "title": "okta demo",
        }).json()  # fmt: skip
        wait_for(lambda: d.fs.messages("DUALICE"), 15, "Alice's DM")
        said = httpx.post(f"{d.base_url}/demo/api/say", json={"user": "UALICE", "text": "ack"})
        assert said.status_code == 200, said.text

        def pushes() -> list[dict[str, object]]:
            state = httpx.get(f"{d.base_url}/demo/api/state").json()
            alice = next(e for e in state["employees"] if e["id"] == "UALICE")
            return list(alice["pushes"])

        wait_for(pushes, 15, "an Okta Verify push on Alice's phone")
        txid = pushes()[0]["txid"]
        answered = httpx.post(f"{d.base_url}/demo/api/push", json={"txid": txid, "answer": "allow"})
        assert answered.status_code == 200, answered.text

        def status() -> str:
            one = httpx.get(f"{d.base_url}/api/v1/alerts/{alert['id']}", headers=ingest).json()
            return str(one["status"])

        wait_for(lambda: status() == "resolved", 15, "the alert to resolve")


def test_demo_command_help_and_bad_port() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    assert "--scenario" in result.output and "--no-browser" in result.output
    assert "--verifier [duo|okta]" in result.output
    assert CliRunner().invoke(main, ["demo", "--scenario", "nope"]).exit_code == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = CliRunner().invoke(main, ["demo", "--no-browser", "--port", str(port)])
    assert taken.exit_code == 1 and "cannot listen" in taken.output


def test_the_console_shows_a_pager_beside_the_phone(attack_demo: Demo) -> None:
    # Issue 29: the attack escalates; the on-call is paged through the demo's fake PagerDuty,
    # and the console shows that pager with its incident.
    d = attack_demo

    def attack_incidents() -> list[dict[str, object]]:
        state = httpx.get(f"{d.base_url}/demo/api/state").json()
        return [i for i in state["pager"]["incidents"] if "supportserver01" in i["summary"]]

    wait_for(attack_incidents, 60, "the attack to page the on-call")
    (incident,) = attack_incidents()
    state = httpx.get(f"{d.base_url}/demo/api/state").json()
    assert str(incident["dedup_key"]).startswith("securitybot-")
    assert state["pager"]["owner"]  # whose pager it is (an on-call responder)
    page = httpx.get(f"{d.base_url}/demo").text
    assert 'id="pager"' in page


def test_acknowledging_on_the_demo_pager_claims_the_alert() -> None:
    with Demo(port=free_port(), ack_timeout=30, duo_timeout=5, sweep_interval=0.3) as d:
        wait_for(lambda: d.pd.incidents, 30, "the unknown user's alert to page the on-call")
        dedup = next(iter(d.pd.incidents))
        resp = httpx.post(f"{d.base_url}/demo/api/pager",
                          json={"dedup_key": dedup, "action": "acknowledge"})  # fmt: skip
        assert resp.status_code == 200, resp.text
        alert_id = int(dedup.removeprefix("securitybot-"))
        wait_for(
            lambda: (
                httpx.get(
                    f"{d.base_url}/api/v1/alerts/{alert_id}",
                    headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
                ).json()["status"]
                == "triaging"
            ),
            15,
            "the alert to be claimed from the pager",
        )


def test_the_grid_demo_asks_people_in_both_workspaces_of_the_org() -> None:
    """securitybot demo --grid: one org-wide install; Bob is in the second workspace and his
    console reply reaches the bot as an event to the org-wide install."""
    with Demo(port=free_port(), seed=False, grid=True) as d:
        assert d.fs.org_install and d.team_of("UBOB") == "T2" and d.team_of("UALICE") == "T1"
        ingest = {"Authorization": f"Bearer {INGEST_TOKEN}"}
        alert = httpx.post(f"{d.base_url}/api/v1/alerts", headers=ingest, json={
            "kind": "sensitive_command", "user": "bob@example.com", "title": "grid demo",
        }).json()  # fmt: skip
        wait_for(lambda: d.fs.messages("DUBOB"), 15, "Bob's DM")
        said = httpx.post(f"{d.base_url}/demo/api/say", json={"user": "UBOB", "text": "ack"})
        assert said.status_code == 200, said.text
        assert said.json()["status"] == 200  # the team guard served the org-wide install

        def status() -> str:
            one = httpx.get(f"{d.base_url}/api/v1/alerts/{alert['id']}", headers=ingest).json()
            return str(one["status"])

        wait_for(lambda: status() == "awaiting_2fa", 15, "Bob's yes to start a push")
        assert d.fs.calls_to("auth.teams.list")
