"""``--scenario attack``: the seed's bad case, played through the real bot like a person would.

A stolen SSH key runs ``flurb -export`` on supportserver01; the attacker, holding Alice's Slack
session too, answers ``ack``; the Duo push on Alice's real phone is never approved; the alert
escalates (``duo_timeout``); a responder confirms compromise; Alice's sessions are reset.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from securitybot.demo.cast import PEOPLE, SECURITY_CHANNEL
from securitybot.demo.slack_event_bodies import message_event_body
from securitybot.demo.slack_interaction_bodies import block_action_body
from securitybot.demo.world import World
from securitybot.slack import messages

logger = logging.getLogger(__name__)

ATTACK_ALERT: dict[str, Any] = {
    "kind": "sensitive_command",
    "user": "alice@example.com",
    "title": "flurb -export on supportserver01",
    "description": "Run from a session that signed in with Alice's SSH key from a new host.",
    "details": {"host": "supportserver01", "command": "flurb -export"},
}
# Pauses so a person watching the console can follow each step.
BEAT = 3.0


def _wait_status(demo: World, alert_id: int, statuses: tuple[str, ...], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if demo.get_alert(alert_id)["status"] in statuses:
            return True
        time.sleep(0.5)
    return False


def _escalation_ts(demo: World, channel: str, alert_id: int) -> str | None:
    for m in demo.fs.messages(channel):
        if any(b.get("block_id") == f"triage:{alert_id}" for b in m.get("blocks") or []):
            return str(m["ts"])
    return None


def play_attack(demo: World) -> None:
    try:
        _play(demo)
    except Exception:
        logger.exception("the attack scenario stopped")
        demo.say("The attack scenario stopped with an error; see the terminal.")
    finally:
        demo.scenario_running = False


def _play(demo: World) -> None:
    alice = next(p for p in PEOPLE if p.id == "UALICE")
    responder = next(p for p in PEOPLE if p.role == "responder")
    demo.say(
        "Scenario: an attacker stole Alice's SSH key and runs `flurb -export` on supportserver01."
    )
    alert = demo.post_alert({**ATTACK_ALERT, "dedup_key": f"attack-{time.time_ns()}"})
    alert_id = int(alert["id"])
    if not _wait_status(demo, alert_id, ("awaiting_ack",), 20):
        demo.say(f"Alert #{alert_id} did not reach Alice's DM.")
        return
    demo.say(f"Monitoring raised alert #{alert_id}; the bot DMs Alice.")
    time.sleep(BEAT)
    demo.say("The attacker, holding Alice's stolen Slack session, replies `ack` in her DM.")
    text = "ack that was me"
    typed_at = demo.record_typed(alice, text)
    demo.slack_post(message_event_body(user=alice.id, text=text, channel=alice.dm, ts=typed_at,
                                       team=demo.team_of(alice.id),
                                       enterprise=demo.enterprise))  # fmt: skip
    demo.say(
        "The bot does not take that on trust: a Duo push goes to Alice's real phone. "
        f"Nobody approves it (the demo gives it {demo.duo_timeout:.0f} s)."
    )
    if not _wait_status(demo, alert_id, ("escalated",), demo.duo_timeout + 30):
        demo.say("The alert did not escalate in time.")
        return
    demo.say("No approved push: the alert escalates to the security channel (duo_timeout).")
    time.sleep(BEAT)
    demo.say(f"{responder.name} clicks Confirm compromise.")
    body = block_action_body(
        user=responder.id,
        action_id=messages.COMPROMISE_ACTION,
        value=str(alert_id),
        channel=SECURITY_CHANNEL,
        message_ts=_escalation_ts(demo, SECURITY_CHANNEL, alert_id) or "1.0",
        block_id=f"triage:{alert_id}",
        response_url=demo.fs.response_url(),
        team=demo.team_of(responder.id),
        enterprise=demo.enterprise,
    )
    demo.slack_post(body)
    deadline = time.monotonic() + 20
    while alice.id not in demo.fs.session_resets and time.monotonic() < deadline:
        time.sleep(0.3)
    if alice.id in demo.fs.session_resets:
        demo.say("Alice's Slack sessions were reset: the attacker is signed out.")
