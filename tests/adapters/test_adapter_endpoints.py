"""Each adapter over HTTP, with realistic samples from the tools (tests/adapters/samples)."""

from __future__ import annotations

import json

from sqlalchemy import select
from starlette.testclient import TestClient

from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog
from tests.adapters.conftest import FALCO_TOKEN, SPLUNK_TOKEN, auth, counts, sample


def test_alertmanager_group_accepts_firing_records_resolved_and_notes_the_userless(
    client: TestClient, db: Database
) -> None:
    resp = client.post("/api/v1/alerts/alertmanager", json=sample("alertmanager"), headers=auth())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    alert, userless = body["accepted"]
    assert (alert["index"], alert["user"], alert["kind"]) == (
        0,
        "alice@example.com",
        "sensitive_command",
    )
    assert alert["title"] == "flurb -export run on accountingserver01"
    assert alert["dedup_key"] == "5f2f0e4ab6a1d0c3@2024-05-14T09:12:44.518Z"
    assert alert["details"]["labels"]["instance"] == "accountingserver01:9100"
    assert alert["status"] == "new"
    assert body["recorded"] == [
        {"index": 1, "status": "resolved", "dedup_key": "a81c8f0b3e9d2274@2024-05-14T08:02:10.002Z",
         "alert_id": None}
    ]  # fmt: skip
    # No user label: kept, and the team is told instead (no_user), never refused.
    assert (userless["index"], userless["user"], body["rejected"]) == (2, "", [])
    assert userless["note"].startswith("names no Slack user")
    with db.read() as s:
        actions = sorted(a.action for a in s.scalars(select(AuditLog)))
    assert actions == ["alert.ingested", "alert.ingested", "alert.source_resolved"]
    assert counts(db)[0] == 2


def test_a_resolved_notice_is_recorded_against_its_alert_and_closes_nothing(
    client: TestClient, db: Database
) -> None:
    payload = sample("alertmanager")
    firing = {**payload, "alerts": [payload["alerts"][0]]}
    created = client.post("/api/v1/alerts/alertmanager", json=firing, headers=auth()).json()
    alert_id = created["accepted"][0]["id"]
    resolved = {
        **firing,
        "status": "resolved",
        "alerts": [{**firing["alerts"][0], "status": "resolved"}],
    }

    resp = client.post("/api/v1/alerts/alertmanager", json=resolved, headers=auth())

    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == [] and resp.json()["recorded"][0]["alert_id"] == alert_id
    with db.read() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and alert.status == "new"
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "alert.source_resolved")).one()
        assert (audit.alert_id, audit.actor, audit.subject_user) == (
            alert_id, "source:monitoring", "alice@example.com"
        )  # fmt: skip


def test_alertmanager_repeats_are_the_same_alert(client: TestClient, db: Database) -> None:
    first = client.post("/api/v1/alerts/alertmanager", json=sample("alertmanager"), headers=auth())
    again = client.post("/api/v1/alerts/alertmanager", json=sample("alertmanager"), headers=auth())
    assert again.status_code == 200
    assert [a["created"] for a in again.json()["accepted"]] == [False, False]
    assert [a["id"] for a in again.json()["accepted"]] == [
        a["id"] for a in first.json()["accepted"]
    ]
    assert counts(db)[0] == 2


def test_grafana_keeps_values_and_scopes_the_dedup_key_by_org(client: TestClient) -> None:
    resp = client.post("/api/v1/alerts/grafana", json=sample("grafana"), headers=auth())
    assert resp.status_code == 201, resp.text
    [alert] = resp.json()["accepted"]
    assert (alert["user"], alert["kind"]) == ("carol@example.com", "mass_download")
    assert alert["dedup_key"] == "1:9b5e2f7c1a3d4e60@2024-05-14T09:10:00Z"
    assert alert["details"]["values"] == {"A": 5214, "B": 1}
    assert alert["details"]["state"] == "alerting"


def test_splunk_may_authenticate_with_a_token_in_the_query_string(client: TestClient) -> None:
    resp = client.post(f"/api/v1/alerts/splunk?token={SPLUNK_TOKEN}", json=sample("splunk"))
    assert resp.status_code == 201, resp.text
    [alert] = resp.json()["accepted"]
    assert alert["source"] == "splunk-prod"
    assert (alert["user"], alert["title"]) == ("alice@example.com", "Sensitive command executed")
    assert alert["dedup_key"].startswith("scheduler__admin__search__RMD5a1c3e0f2d7b84c61_at_")
    assert alert["details"]["result"]["cmdline"] == "flurb -export --all"
    assert alert["occurred_at"].startswith("2024-05-14T09:12:44")


def test_only_splunk_accepts_a_query_string_token(client: TestClient, db: Database) -> None:
    resp = client.post(
        f"/api/v1/alerts/alertmanager?token={SPLUNK_TOKEN}", json=sample("alertmanager")
    )
    assert resp.status_code == 401
    assert counts(db) == (0, 0, 0)


def test_one_splunk_post_per_result_row_gives_one_alert_per_row(client: TestClient) -> None:
    payload = sample("splunk")
    second = {**payload, "result": {**payload["result"], "host": "accountingserver02"}}
    keys = {
        client.post(f"/api/v1/alerts/splunk?token={SPLUNK_TOKEN}", json=p).json()["accepted"][0][
            "dedup_key"
        ]
        for p in (payload, second)
    }
    assert len(keys) == 2


def test_elastalert_matches_are_mapped_one_by_one(client: TestClient, db: Database) -> None:
    resp = client.post("/api/v1/alerts/elastalert", json=sample("elastalert"), headers=auth())
    assert resp.status_code == 201, resp.text
    alert, service_account = resp.json()["accepted"]
    assert (alert["user"], alert["kind"], alert["dedup_key"]) == (
        "dave@example.com", "new_login_location", "Qm9vLWlzLTE3MTU2Nzc5NjQ"
    )  # fmt: skip
    assert (service_account["user"], resp.json()["rejected"]) == ("svc-backup", [])
    assert counts(db)[0] == 2


def test_kibana_detection_alert_documents_become_alerts(client: TestClient) -> None:
    resp = client.post("/api/v1/alerts/kibana", json=sample("kibana"), headers=auth())
    assert resp.status_code == 201, resp.text
    alert, userless = resp.json()["accepted"]
    assert alert["user"] == "alice@example.com"
    assert alert["dedup_key"] == "c4b1f5d2e8a94f0b8d3a1e7c6b5a4f30"
    assert alert["title"] == "Sensitive command on finance hosts"
    assert alert["description"].startswith("process event with process flurb")
    assert (userless["index"], userless["user"], resp.json()["rejected"]) == (1, "root", [])


def test_kibana_rule_body_without_documents_is_one_alert(client: TestClient) -> None:
    payload = {k: v for k, v in sample("kibana").items() if k != "alerts"}
    payload["context"] = {"user": "alice@example.com", "reason": "threshold crossed"}
    resp = client.post("/api/v1/alerts/kibana", json=payload, headers=auth())
    assert resp.status_code == 201, resp.text
    [alert] = resp.json()["accepted"]
    assert (alert["dedup_key"], alert["description"]) == (
        "8e1a4a5c-2b0f-4d6e-9f1a-7c3b2d1e0f99", "threshold crossed"
    )  # fmt: skip


def test_falco_uses_the_per_source_user_template(client: TestClient) -> None:
    resp = client.post("/api/v1/alerts/falco", json=sample("falco"), headers=auth(FALCO_TOKEN))
    assert resp.status_code == 201, resp.text
    [alert] = resp.json()["accepted"]
    assert alert["user"] == "erin@example.com"
    assert alert["title"] == "Terminal shell in container on k8s-node-07"
    assert alert["dedup_key"] == "2b8d4c1e-5a6f-4e3b-8c9d-0f1e2a3b4c5d"
    assert alert["details"]["priority"] == "Notice"


def test_a_source_without_the_override_gets_the_default_login_and_goes_to_the_team(
    client: TestClient, db: Database
) -> None:
    resp = client.post("/api/v1/alerts/falco", json=sample("falco"), headers=auth())
    assert resp.status_code == 201, resp.text
    [alert] = resp.json()["accepted"]
    assert alert["user"] == "erin"
    assert alert["note"] == "names no Slack user (got 'erin'); it goes to the security team"
    assert counts(db)[0] == 1


def test_osquery_added_rows_alert_and_removed_rows_are_recorded(
    client: TestClient, db: Database
) -> None:
    resp = client.post("/api/v1/alerts/osquery", json=sample("osquery"), headers=auth())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    [alert] = body["accepted"]
    assert alert["user"] == "frank@example.com"
    assert alert["title"] == "pack/security/authorized_keys on build-runner-03"
    assert alert["occurred_at"].startswith("2024-05-14T09:12:44")
    assert alert["details"]["columns"]["algorithm"] == "ssh-ed25519"
    assert [r["index"] for r in body["recorded"]] == [1]
    assert counts(db)[0] == 1


def test_wazuh_uses_the_adapter_level_user_template(client: TestClient) -> None:
    resp = client.post("/api/v1/alerts/wazuh", json=sample("wazuh"), headers=auth())
    assert resp.status_code == 201, resp.text
    [alert] = resp.json()["accepted"]
    assert (alert["user"], alert["dedup_key"]) == ("grace@example.com", "1715677964.4471923")
    assert alert["title"] == "sshd: Successful login from a new country on bastion01"
    assert alert["description"].startswith("May 14 09:12:44 bastion01 sshd")
    assert alert["details"]["agent"]["name"] == "bastion01"


def test_an_unknown_adapter_is_404_with_the_known_ones(client: TestClient) -> None:
    resp = client.post("/api/v1/alerts/nagios", json={}, headers=auth())
    assert resp.status_code == 404
    assert resp.json()["error"] == "unknown_adapter"
    assert "splunk" in resp.json()["detail"]["known"]
    assert "alertmanager" in resp.json()["message"]


def test_a_body_of_the_wrong_shape_is_422_and_writes_nothing(
    client: TestClient, db: Database
) -> None:
    for name, body in [
        ("alertmanager", {"alerts": "no"}),
        ("splunk", {"sid": "x"}),
        ("kibana", []),
    ]:
        resp = client.post(f"/api/v1/alerts/{name}", json=body, headers=auth())
        assert resp.status_code == 422, (name, resp.text)
        assert resp.json()["error"] == "validation_error"
    resp = client.post("/api/v1/alerts/falco", content=b"{not json", headers=auth())
    assert resp.status_code == 400
    assert counts(db) == (0, 0, 0)


def test_adapters_need_credentials(client: TestClient, db: Database) -> None:
    resp = client.post("/api/v1/alerts/grafana", content=json.dumps(sample("grafana")))
    assert resp.status_code == 401
    assert counts(db) == (0, 0, 0)
