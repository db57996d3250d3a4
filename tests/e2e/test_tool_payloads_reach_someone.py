"""The tools' own payloads, delivered their stock way, each become an alert that reaches
someone: DM'd when they name a Slack user, escalated to the team (``no_user``) otherwise.

Wazuh's alert goes through integrations/custom-securitybot run as integratord runs it, osquery's
rows through the TLS enroll + log API, ElastAlert's match through its real HTTPPostAlerter,
Kibana's through the body README documents. Samples: tests/adapters/samples/SOURCES.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from securitybot.store.models import Alert
from tests.adapters.conftest import SAMPLES, sample
from tests.adapters.test_wazuh import run_integration
from tests.e2e.harness import TOKEN, Bot, wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def escalated_as_no_user(bot: Bot, alert_id: int) -> dict[str, object]:
    alert = bot.wait_status(alert_id, "escalated")
    assert (alert["escalation_reason"], alert["user_id"]) == ("no_user", None)
    return alert


def test_wazuh_sshd_alert_for_a_login_name_reaches_the_team(bot: Bot, tmp_path: Path) -> None:
    alert_file = tmp_path / "1571166477.30198.alert"
    alert_file.write_bytes((SAMPLES / "wazuh_sshd_invalid_user.json").read_bytes())

    done = run_integration(alert_file, TOKEN, f"{bot.base}/api/v1/alerts/wazuh")

    assert done.returncode == 0, done.stderr
    [row_id] = [a.id for a in all_alerts(bot)]
    alert = escalated_as_no_user(bot, row_id)
    assert alert["title"] == "sshd: Attempt to login using a non-existent user on linux-agent"
    assert "`blimey`" in str(bot.wait_security_post().params["blocks"])


def test_osquery_process_rows_over_the_tls_api_reach_the_team(bot: Bot) -> None:
    enrolled = bot.http.post(
        "/api/v1/osquery/enroll",
        json={"enroll_secret": TOKEN, "host_identifier": "hostname.local"},
    ).json()
    events = [
        json.loads(line) for line in (SAMPLES / "osquery_event.ndjson").read_text().splitlines()
    ]
    answer = bot.http.post(
        "/api/v1/osquery/log",
        json={"node_key": enrolled["node_key"], "log_type": "result", "data": events},
    ).json()

    assert answer["node_invalid"] is False and answer["rejected"] == []
    [added] = answer["accepted"]
    assert "note" in added
    assert [r["index"] for r in answer["recorded"]] == [1]
    escalated_as_no_user(bot, added["id"])


def test_elastalert_match_naming_a_login_reaches_the_team(bot: Bot, tmp_path: Path) -> None:
    real = pytest.importorskip("tests.adapters.test_elastalert_real")
    url = f"{bot.base}/api/v1/alerts/elastalert"
    real.fire(real.load_rule(tmp_path, real.RULE.format(url=url, token=TOKEN)))

    [row] = all_alerts(bot)
    alert = escalated_as_no_user(bot, row.id)
    assert alert["title"] == "Okta login from a new country"


def test_kibana_detection_alerts_dm_the_person_and_escalate_root(bot: Bot) -> None:
    resp = bot.http.post(
        "/api/v1/alerts/kibana", json=sample("kibana_security_two_alerts"), headers=AUTH
    )
    assert resp.status_code == 201, resp.text
    by_index = {a["index"]: a for a in resp.json()["accepted"]}

    wait_until(lambda: bot.dms("UALICE"), what="a DM to alice")
    assert bot.alert(by_index[0]["id"])["user_id"] == "UALICE"
    escalated_as_no_user(bot, by_index[1]["id"])


def all_alerts(bot: Bot) -> list[Alert]:
    with bot.db.read() as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)))
