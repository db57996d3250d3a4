"""Issue 29, item 4 end to end: paging.severities, a kind's ``page``, paging.when, and a storm
paging once for all its alerts. Both stores."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from securitybot.config import AlertsConfig
from securitybot.demo import FakeSlack
from securitybot.demo.fake_pagerduty import FakePagerDuty
from securitybot.kinds import load_kinds
from securitybot.paging import hooks
from securitybot.slack.messages import CLAIM_ACTION
from securitybot.store.models import Alert
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import FakeVerifier, e2e_settings
from tests.paging.conftest import RESPONDER, escalate_by_denial, resolve_benign, team, triage


def kinds_with(tmp_path: Path, kind: str, **changes: object) -> str:
    """A copy of the shipped kinds with ``changes`` made to ``kind``."""
    target = tmp_path / "alerts"
    shutil.copytree(AlertsConfig().dir, target)
    path = target / "kinds" / f"{kind}.yaml"
    data = yaml.safe_load(path.read_text()) | changes
    path.write_text(yaml.safe_dump(data))
    return str(target)


def test_medium_alerts_are_not_paged_by_default(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging=pd.config())
    alert_id = escalate_by_denial(bot, kind="new_login_location")  # medium
    bot.wait_security_post()
    time.sleep(1.0)  # several dispatcher rounds
    assert pd.enqueue_calls() == []
    assert bot.audit(alert_id, "paging.triggered") == []


def test_paging_severities_and_a_kinds_page_setting_decide(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot, tmp_path: Path
) -> None:
    alerts_dir = kinds_with(tmp_path, "sensitive_command", page="never")
    bot = make_bot(**team(fs), paging={**pd.config(), "severities": ["medium", "high"]},
                   alerts={"dir": alerts_dir})  # fmt: skip
    never = escalate_by_denial(bot, kind="sensitive_command", dedup_key="k1")  # high, page: never
    medium = escalate_by_denial(bot, kind="new_login_location", dedup_key="k2")
    pd.wait_for_event("trigger", f"securitybot-{medium}")
    time.sleep(0.5)
    assert pd.events("trigger", f"securitybot-{never}") == []


def test_unclaimed_after_claim_timeout_pages_only_what_nobody_claimed(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot = make_bot(escalation={"responders": [RESPONDER], "claim_timeout": 1.5},
                   paging={**pd.config(), "when": "unclaimed_after_claim_timeout"})  # fmt: skip
    team(fs)
    claimed = escalate_by_denial(bot, dedup_key="c1")
    triage(bot, RESPONDER, CLAIM_ACTION, claimed)
    bot.wait_status(claimed, "triaging")
    waiting = escalate_by_denial(bot, dedup_key="c2")
    escalated_at = time.time()
    time.sleep(0.7)
    assert pd.enqueue_calls() == []  # the claim clock is still running
    pd.wait_for_event("trigger", f"securitybot-{waiting}", timeout=10)
    assert time.time() - escalated_at >= 1.4
    time.sleep(1.0)
    assert pd.events("trigger", f"securitybot-{claimed}") == []


def test_outside_business_hours_pages_at_night(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    # A calendar whose working days are all at least two days from today (UTC): "outside".
    week = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    today = time.gmtime().tm_wday
    days = [d for i, d in enumerate(week) if min((i - today) % 7, (today - i) % 7) > 1]
    bot = make_bot(**team(fs), policy={"business_hours": {"days": days}},
                   paging={**pd.config(), "when": "outside_business_hours"})  # fmt: skip
    alert_id = escalate_by_denial(bot)
    pd.wait_for_event("trigger", f"securitybot-{alert_id}")


def test_a_storm_pages_once_for_all_its_alerts(
    db_url: str, fs: FakeSlack, fd: FakeVerifier, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    # The storm guard (issue 27) links each alert of a misfiring detection to its storm with
    # hooks.request_page(session, alert, group_key=...): one incident for the whole storm.
    team(fs)
    overrides = {
        "paging": {**pd.config(), "when": "unclaimed_after_claim_timeout"},
        "escalation": {"responders": [RESPONDER], "claim_timeout": 3600},
    }
    bot = make_bot(**overrides)
    settings = e2e_settings(db_url, fs, fd, **overrides)
    bot.db.session_info[hooks.SESSION_KEY] = hooks.PagingRules.from_settings(
        settings, load_kinds(settings.alerts.dir)
    )
    ids = [escalate_by_denial(bot, dedup_key=f"storm-{i}") for i in range(3)]
    with bot.db.write() as session:
        opened = [hooks.request_page(session, session.get(Alert, i), group_key="detector-42")
                  for i in ids]  # fmt: skip
    storm = "securitybot-storm-detector-42"
    assert opened == [storm] * 3
    (trigger,) = pd.wait_for_event("trigger", storm)
    assert "3 alerts" in trigger["payload"]["summary"]
    triage(bot, RESPONDER, CLAIM_ACTION, ids[1])
    pd.wait_for_event("acknowledge", storm)
    for alert_id in ids[:2]:
        resolve_benign(bot, RESPONDER, alert_id)
        bot.wait_status(alert_id, "closed")
    time.sleep(0.5)
    assert pd.events("resolve") == []  # one alert of the storm is still open
    resolve_benign(bot, RESPONDER, ids[2])
    pd.wait_for_event("resolve", storm)
    assert len(pd.incidents_for(storm)) == 1
    assert len(pd.events("trigger")) == 1
    assert len(pd.events("acknowledge")) == 1
