"""AER's metrics count what happened: events in, anomalies and decisions once committed, resets
done, and resets held past the budget (scraped from /metrics, as Prometheus would)."""

from __future__ import annotations

import re

from securitybot.demo import FakeSlack
from tests.aer_e2e.conftest import QUIET, TOR_IP, MakeBot, post_events
from tests.e2e.harness import wait_until


def scrape(bot: object) -> dict[str, float]:
    text = bot.http.get("/metrics").text  # type: ignore[attr-defined]
    found = re.findall(r"^(securitybot_aer_\w+(?:\{[^}]*\})?) (\S+)$", text, re.M)
    return {name: float(value) for name, value in found}


def grew(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def test_events_anomalies_decisions_and_resets_are_counted(
    make_bot: MakeBot, fs: FakeSlack
) -> None:
    bot = make_bot(reset_budget={"count": 1, "per": "1h"})
    before = scrape(bot)
    tor = {"org": QUIET, "action": "login", "ip": TOR_IP}
    post_events(bot, [{**tor, "user": "UALICE", "session": "S1"},
                      {"org": QUIET, "user": "not-an-id", "action": "login"}])  # fmt: skip
    wait_until(lambda: fs.session_resets, what="the reset")
    wait_until(lambda: grew(before, scrape(bot), 'securitybot_aer_resets_total{result="done"}'),
               what="the reset to be counted")  # fmt: skip
    post_events(bot, [{**tor, "user": "UBOB", "session": "S2"}])  # past the budget: held
    after = scrape(bot)

    assert grew(before, after, 'securitybot_aer_events_received_total{result="accepted"}') == 2
    assert grew(before, after, 'securitybot_aer_events_received_total{result="rejected"}') == 1
    assert grew(before, after, 'securitybot_aer_events_judged_total{window="live"}') == 2
    anomalies = {k: v for k, v in after.items() if k.startswith("securitybot_aer_anomalies_total")}
    verdicts = {re.search(r'verdict="(\w+)"', k).group(1): grew(before, after, k)  # type: ignore[union-attr]
                for k in anomalies}  # fmt: skip
    assert verdicts.get("reset") == 1 and verdicts.get("held") == 1
    assert grew(before, after, 'securitybot_aer_decisions_total{action="reset_sessions"}') == 1
    assert grew(before, after, 'securitybot_aer_decisions_total{action="held"}') == 1
    assert grew(before, after, 'securitybot_aer_resets_total{result="done"}') == 1
    assert grew(before, after, "securitybot_aer_resets_held_total") == 1
    assert after["securitybot_aer_resets_held_open"] == 1
