"""Wazuh: the alert integratord hands over, delivered by our integration script run as Wazuh
runs it, and what the stock shuffle integration posts (samples from Wazuh's docs and repo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from starlette.testclient import TestClient

from securitybot.store.db import Database
from securitybot.store.models import Alert
from tests.adapters.conftest import SAMPLES, TOKEN, auth, counts, sample

SCRIPT = Path(__file__).parents[2] / "integrations" / "custom-securitybot"


def run_integration(alert_file: Path, api_key: str, hook_url: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    # wazuh-integratord: <script> <alert file> <api_key> <hook_url> (wazuh integrations/*.py)
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(alert_file), api_key, hook_url],
        capture_output=True,
        text=True,
        timeout=60,
    )


def stored(db: Database) -> list[Alert]:
    with db.read() as s:
        return list(s.scalars(select(Alert)))


def test_the_integration_script_delivers_the_alert_with_its_key_as_bearer(
    served: str, db: Database, tmp_path: Path
) -> None:
    alert_file = tmp_path / "1571166477.30198.alert"
    alert_file.write_bytes((SAMPLES / "wazuh.json").read_bytes())

    done = run_integration(alert_file, TOKEN, f"{served}/api/v1/alerts/wazuh")

    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    [alert] = stored(db)
    assert (alert.source, alert.user_given) == ("monitoring", "grace@example.com")
    assert alert.dedup_key == "1715677964.4471923"


def test_the_integration_script_fails_loudly_on_a_wrong_key_and_keeps_it_out_of_its_output(
    served: str, db: Database, tmp_path: Path
) -> None:
    alert_file = tmp_path / "a.alert"
    alert_file.write_bytes((SAMPLES / "wazuh.json").read_bytes())
    wrong = "not-the-token-0123456789"

    done = run_integration(alert_file, wrong, f"{served}/api/v1/alerts/wazuh")

    assert done.returncode == 1
    assert "401" in done.stderr and wrong not in done.stderr
    assert counts(db) == (0, 0, 0)


def test_the_integration_script_exits_as_wazuh_integrations_do_on_bad_input(
    tmp_path: Path,
) -> None:
    assert run_integration(tmp_path / "missing", "k", "http://127.0.0.1:9").returncode == 6
    not_json = tmp_path / "alert"
    not_json.write_text("** Alert 1571166477.30198: - syslog,sshd")
    assert run_integration(not_json, "k", "http://127.0.0.1:9").returncode == 7
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, timeout=30)
    assert done.returncode == 2


def test_what_the_stock_shuffle_integration_posts_is_read_as_the_alert_it_carries() -> None:
    from securitybot.ingest.adapters.wazuh import Wazuh

    [direct] = Wazuh().items(sample("wazuh_sshd_invalid_user"))
    [via_shuffle] = Wazuh().items(sample("wazuh_shuffle"))
    assert via_shuffle == direct
    assert direct.context["rule"]["id"] == "5710"


def test_the_docs_sshd_alert_for_a_login_name_is_accepted_for_the_team(
    client: TestClient,
) -> None:
    for body in (sample("wazuh_sshd_invalid_user"), sample("wazuh_shuffle")):
        resp = client.post("/api/v1/alerts/wazuh", json=body, headers=auth())
        assert resp.status_code in (200, 201), resp.text
        [alert] = resp.json()["accepted"]
        assert alert["dedup_key"] == "1571166477.30198"
        assert alert["title"] == "sshd: Attempt to login using a non-existent user on linux-agent"
        # The operator's template maps dstuser only; srcuser "blimey" is nobody in Slack.
        assert alert["note"].startswith("names no Slack user")
