"""Monitoring as code: the Grafana dashboard charts every metric the service exports and can be
provisioned from a file, the Prometheus rules file is valid, unit-tested and the same as the
runbook's, and the outbox age does not call a wait for Slack's configuration "stuck"."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from securitybot.config import Settings
from securitybot.ingest.service import START_EFFECT
from securitybot.metrics import Metrics
from securitybot.service import build_service
from securitybot.store.db import Database
from securitybot.store.models import Outbox, utcnow
from securitybot.store.outbox import enqueue

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "docs" / "grafana-dashboard.json"
RUNBOOK = REPO / "docs" / "runbook.md"
RULES = REPO / "deploy" / "prometheus" / "securitybot-rules.yaml"
RULES_TESTS = REPO / "deploy" / "prometheus" / "securitybot-rules.test.yaml"


def exported(db_url: str, db: Database) -> set[str]:
    """Metric names as a scrape sees them (counters with their `_total`)."""
    settings = Settings.model_validate({"database": {"url": db_url}, "aer": {"enabled": True}})
    _rt, app = build_service(settings, db)
    with TestClient(app) as client:
        text = client.get("/metrics").text
    names = set()
    for name, kind in re.findall(r"^# TYPE (securitybot_\w+) (\w+)$", text, re.M):
        if name.endswith("_created"):  # prometheus_client's creation-time series of a counter
            continue
        names.add(name if kind != "counter" or name.endswith("_total") else f"{name}_total")
    return names


def _metric_names(text: str) -> set[str]:
    return {
        re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"securitybot_[a-z_]+", text)
    }


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_dashboard_charts_every_exported_metric(db_url: str, db: Database) -> None:
    names = exported(db_url, db)
    assert {"securitybot_aer_anomalies_total", "securitybot_aer_partition_lag"} <= names
    assert _metric_names(" ".join(_exprs())) == names


def test_the_runbook_has_a_section_for_every_exported_metric(db_url: str, db: Database) -> None:
    headings = " ".join(ln for ln in RUNBOOK.read_text().splitlines() if ln.startswith("## "))
    assert exported(db_url, db) <= _metric_names(headings)


def test_the_dashboard_provisions_from_a_file_with_job_and_instance_filters() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    text = DASHBOARD.read_text()
    # ${DS_PROMETHEUS} and __inputs are only resolved by the UI's import dialog.
    assert "__inputs" not in dashboard and "DS_" not in text
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert {"job", "instance"} <= set(variables)
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    for expr in _exprs():
        selectors = re.findall(r"securitybot_[a-z_]+(\{[^}]*\})?", expr)
        assert selectors and all('job=~"$job"' in s and 'instance=~"$instance"' in s
                                 for s in selectors), expr  # fmt: skip


def _runbook_rules() -> list[dict[str, object]]:
    rules: list[dict[str, object]] = []
    for block in re.findall(r"```yaml\n(.*?)```", RUNBOOK.read_text(), re.S):
        if "- alert:" in block:
            rules += yaml.safe_load(block)
    return rules


def test_the_rules_file_is_the_runbooks_rules() -> None:
    [group] = yaml.safe_load(RULES.read_text())["groups"]
    assert group["rules"] == _runbook_rules()
    names = [r["alert"] for r in group["rules"]]
    assert len(names) == len(set(names))


def test_the_rules_name_only_exported_metrics(db_url: str, db: Database) -> None:
    named = _metric_names(" ".join(str(r["expr"]) for r in _runbook_rules()))
    assert named <= exported(db_url, db)


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing (Debian package prometheus): .ci/run installs it")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return found


@pytest.mark.parametrize(
    "check", [["check", "rules", RULES.name], ["test", "rules", RULES_TESTS.name]]
)
def test_promtool_accepts_and_unit_tests_the_rules(check: list[str]) -> None:
    done = subprocess.run([_promtool(), *check], cwd=RULES.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _oldest_age(db: Database, slack_configured: bool) -> float:
    text = Metrics(db, slack_configured=slack_configured).render().decode()
    found = re.search(r"^securitybot_outbox_oldest_age_seconds (\S+)$", text, re.M)
    assert found is not None
    return float(found.group(1))


def test_conversations_waiting_for_slack_do_not_age_the_outbox(db: Database) -> None:
    from datetime import timedelta

    long_ago = utcnow() - timedelta(minutes=10)
    with db.write() as s:
        enqueue(s, effect=START_EFFECT, payload={}, idempotency_key="waits-for-slack")
        s.flush()
        s.query(Outbox).update({Outbox.created_at: long_ago})
    assert _oldest_age(db, slack_configured=False) == 0
    assert _oldest_age(db, slack_configured=True) >= 600  # with Slack, it is stuck
    with db.write() as s:
        enqueue(s, effect="escalate", payload={}, idempotency_key="really-stuck")
        s.flush()
        s.query(Outbox).where(Outbox.effect == "escalate").update({Outbox.created_at: long_ago})
    assert _oldest_age(db, slack_configured=False) >= 600
