"""Kibana's webhook connector: the bodies README documents, as Kibana's mustache renders them.

Samples are those bodies rendered the way Kibana renders a webhook body (see samples/SOURCES.md).
"""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from securitybot.ingest.adapters import registry
from securitybot.ingest.adapters.elastic import Kibana
from securitybot.ingest.adapters.mapping import render_fields
from securitybot.store.db import Database
from tests.adapters.conftest import SAMPLES, auth, counts, sample


def post(client: TestClient, body: object):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/alerts/kibana", json=body, headers=auth())


def test_a_security_rule_with_two_alerts_renders_a_list_and_each_alert_is_one_item(
    client: TestClient,
) -> None:
    body = sample("kibana_security_two_alerts")
    assert isinstance(body["alerts"], list) and len(body["alerts"]) == 2

    resp = post(client, body)

    assert resp.status_code == 201, resp.text
    by_index = {a["index"]: a for a in resp.json()["accepted"]}
    alice = by_index[0]
    assert alice["user"] == "alice@example.com"
    assert alice["title"] == "Sensitive command on finance hosts"
    assert alice["dedup_key"] == "c4b1f5d2e8a94f0b8d3a1e7c6b5a4f30"
    assert alice["description"].startswith("process event with process flurb, by alice")


def test_the_old_body_with_two_alerts_is_not_json_which_is_why_readme_wraps_it(
    client: TestClient, db: Database
) -> None:
    rendered = (SAMPLES / "kibana_security_old_template_two_alerts.txt").read_bytes()
    resp = client.post("/api/v1/alerts/kibana", content=rendered, headers=auth())
    assert resp.status_code == 400
    assert resp.json()["error"] == "malformed_json"
    assert counts(db) == (0, 0, 0)


def test_the_old_body_with_one_alert_renders_an_object_and_is_still_taken(
    client: TestClient,
) -> None:
    body = sample("kibana_security_old_template_one_alert")
    assert isinstance(body["alerts"], dict)
    resp = post(client, body)
    assert resp.status_code == 201, resp.text
    [alert] = resp.json()["accepted"]
    assert alert["user"] == "alice@example.com"


def test_a_stack_rule_body_maps_rule_alert_and_context() -> None:
    [item] = Kibana().items(sample("kibana_stack_esquery"))
    values = render_fields("kibana", item, registry.templates_for("kibana", "monitoring", {}))
    assert values["title"] == "esq"
    assert values["description"] == (
        'Number of matching documents for group "host-2" is less than 1000'
    )
    assert values["dedup_key"] == "7b5c0a51-2f7e-4d1e-a6d4-4a3f0f6f0b2c"
    assert values["occurred_at"] == "2023-04-27T22:40:34.153Z"
    assert item.details["context"]["hits"][1]["_source"]["event"]["action"] == "execute-action"


def test_a_summary_with_no_alerts_is_acknowledged(client: TestClient, db: Database) -> None:
    body = sample("kibana_security_two_alerts") | {"alerts": []}
    resp = post(client, body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == [] and resp.json()["ignored"]
    assert counts(db) == (0, 0, 0)


def test_readme_documents_exactly_the_bodies_the_samples_were_rendered_from() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in ("stack_rule_body", "security_rule_body"):
        body = (Path(__file__).parent / "kibana_templates" / f"{name}.mustache").read_text()
        assert body in readme, name


def test_a_stack_rule_alert_names_nobody_and_is_accepted_for_the_team(client: TestClient) -> None:
    resp = post(client, sample("kibana_stack_esquery"))
    assert resp.status_code == 201, resp.text
    [alert] = resp.json()["accepted"]
    assert alert["title"] == "esq" and alert["note"].startswith("names no Slack user")


def test_the_root_detection_alert_is_accepted_for_the_team(client: TestClient) -> None:
    resp = post(client, sample("kibana_security_two_alerts"))
    root = next(a for a in resp.json()["accepted"] if a["index"] == 1)
    assert root["user"] == "root" and root["note"].startswith("names no Slack user")
