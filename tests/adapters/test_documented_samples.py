"""The payloads the tools' own documentation shows (``samples/*``, each naming its source) are
all taken: every firing item becomes an alert, DM'd when it names a person, else noted and sent
to the security team (``no_user``). Alertmanager runs for real in tests/e2e."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from securitybot.config import AdapterConfig
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.adapters.conftest import FALCO_TOKEN, SPLUNK_TOKEN, adapter_settings, auth, sample


def _post(client: TestClient, adapter: str, body: Any, **kw: Any) -> dict[str, Any]:
    resp = client.post(f"/api/v1/alerts/{adapter}", json=body, **kw)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    assert out["rejected"] == []
    return out


def test_grafanas_documented_webhook_becomes_two_alerts_for_the_team(client: TestClient) -> None:
    body = _post(client, "grafana", sample("grafana_docs"), headers=auth())

    first, second = body["accepted"]
    assert (first["title"], second["title"]) == (
        "This alert was triggered for zone us-1", "This alert was triggered for zone eu-1"
    )  # fmt: skip
    assert first["dedup_key"] == "1:c6eadffa33fcdf37@2021-10-12T09:51:03.157076+02:00"
    assert first["description"] == "The system has high memory usage"
    assert first["details"]["values"] == {"B": 44.23943737541908, "C": 1}
    for alert in (first, second):  # its labels name nobody
        assert alert["user"] == "" and alert["note"].startswith("names no Slack user")


def test_falcos_own_http_output_root_shell_goes_to_the_team(client: TestClient) -> None:
    body = _post(client, "falco", sample("falco_http_output"), headers=auth())

    [alert] = body["accepted"]
    assert alert["user"] == "root"  # no user.loginname in the event: user.name it is
    assert alert["note"] == "names no Slack user (got 'root'); it goes to the security team"
    assert alert["title"] == "Terminal shell in container on falco-xczjd"
    assert (
        alert["dedup_key"]
        == "Terminal shell in container@2023-05-25T13:44:05.478445995Z@falco-xczjd"
    )
    assert alert["occurred_at"].startswith("2023-05-25T13:44:05")
    assert alert["details"]["tags"] == ["container", "mitre_execution", "shell"]


def test_falcosidekicks_webhook_output_is_keyed_by_its_uuid(client: TestClient) -> None:
    body = _post(client, "falco", sample("falcosidekick_webhook"), headers=auth())

    [alert] = body["accepted"]
    assert alert["dedup_key"] == "5ec5c3b2-1c2e-4d8b-9a3f-0e6a2b7d4c11"
    assert (alert["user"], alert["title"]) == ("root", "Write below binary dir on localhost")
    assert alert["note"].startswith("names no Slack user")


def test_falco_user_falls_back_past_na_login_names(client: TestClient) -> None:
    event = sample("falco_http_output")
    fields = event["output_fields"]
    na_login = {**event, "output_fields": {**fields, "user.loginname": "<NA>"}}
    logged_in = {**event, "time": "2023-05-25T13:44:06Z",
                 "output_fields": {**fields, "user.loginname": "erin"}}  # fmt: skip

    na, erin = _post(client, "falco", [na_login, logged_in], headers=auth())["accepted"]

    assert (na["user"], erin["user"]) == ("root", "erin")
    # A source whose template maps logins to emails DMs erin (see conftest: falco-k8s).
    mapped = _post(client, "falco", {**logged_in, "time": "2023-05-25T13:44:07Z"},
                   headers=auth(FALCO_TOKEN))  # fmt: skip
    assert mapped["accepted"][0]["user"] == "erin@example.com"
    assert "note" not in mapped["accepted"][0]


def test_splunks_documented_ad_hoc_search_without_a_name_is_titled_by_its_sid(
    client: TestClient,
) -> None:
    body = _post(client, "splunk", sample("splunk_docs"), params={"token": SPLUNK_TOKEN})

    [alert] = body["accepted"]
    assert alert["title"] == "Splunk search scheduler_admin_search_W2_at_14232356_132"
    assert alert["description"].startswith(
        "Splunk search scheduler_admin_search_W2_at_14232356_132 matched. Results: http://"
    )
    assert alert["details"]["result"] == {"sourcetype": "mongod", "count": "8"}
    assert alert["note"] == "names no Slack user (the user is empty); it goes to the security team"


MAPPED = (
    "{% set u = known(output_fields['user.loginname'], output_fields['user.name']) %}"
    "{{ {'erin': 'erin.smith@example.com', 'root': ''}.get(u, u ~ '@example.com' if u else '') }}"
)


def test_a_mapping_table_in_the_user_template_maps_logins_and_leaves_root_to_the_team(
    db: Database, db_url: str
) -> None:
    cfg = adapter_settings(db_url).model_copy(
        update={"adapters": {"falco": AdapterConfig.model_validate({"user": MAPPED})}}
    )
    event = sample("falco_http_output")
    erin = {**event, "time": "2023-05-25T13:44:06Z",
            "output_fields": {**event["output_fields"], "user.loginname": "erin"}}  # fmt: skip
    _runtime, app = build_service(cfg, db)
    with TestClient(app) as client:
        root, mapped = _post(client, "falco", [event, erin], headers=auth())["accepted"]

    assert (root["user"], mapped["user"]) == ("", "erin.smith@example.com")
    assert "note" in root and "note" not in mapped
