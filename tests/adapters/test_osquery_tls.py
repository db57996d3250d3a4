"""osquery's TLS remote API (osquery docs, "Remote server API"): enroll, then log by node key.

osqueryd cannot be installed here; the request bodies are the ones its docs and reference
server (tools/tests/test_http_server.py) show, the log data the "Logging" samples.
"""

from __future__ import annotations

import gzip
import json
import logging

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from securitybot.service import build_service
from securitybot.store.db import Database
from securitybot.store.models import Alert
from securitybot.store.osquery_models import OsqueryNode
from tests.adapters.conftest import SAMPLES, TOKEN, adapter_settings, counts, sample

ENROLL, LOG = "/api/v1/osquery/enroll", "/api/v1/osquery/log"


def enroll(client: TestClient, secret: str = TOKEN) -> str:
    # What TLSEnrollPlugin posts: the secret, the --host_identifier, and host details.
    resp = client.post(
        ENROLL,
        json={
            "enroll_secret": secret,
            "host_identifier": "build-runner-03",
            "host_details": {"os_version": {}, "osquery_info": {}, "system_info": {}},
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["node_invalid"] is False
    key: str = body["node_key"]
    return key


def log(client: TestClient, node_key: str, log_type: str, data: list[object]) -> dict:  # type: ignore[type-arg]
    resp = client.post(LOG, json={"node_key": node_key, "log_type": log_type, "data": data})
    assert resp.status_code == 200, resp.text
    answer: dict = resp.json()  # type: ignore[type-arg]
    return answer


def test_an_enrolled_node_logs_results_as_the_source_of_its_enroll_secret(
    client: TestClient, db: Database
) -> None:
    node_key = enroll(client)

    answer = log(client, node_key, "result", sample("osquery")["data"])

    assert answer["node_invalid"] is False
    [alert] = answer["accepted"]
    assert (alert["source"], alert["user"]) == ("monitoring", "frank@example.com")
    assert [r["index"] for r in answer["recorded"]] == [1]
    with db.read() as s:
        [stored] = s.scalars(select(Alert))
        assert "node_key" not in json.dumps(stored.details)


def test_node_keys_are_stored_only_as_digests(client: TestClient, db: Database) -> None:
    node_key = enroll(client)
    with db.read() as s:
        [node] = s.scalars(select(OsqueryNode))
    assert node_key not in (node.key_hash, node.host_identifier)
    assert len(node.key_hash) == 64
    assert (node.source, node.host_identifier) == ("monitoring", "build-runner-03")


def test_an_unknown_node_key_is_told_to_enroll_again_and_nothing_is_stored(
    client: TestClient, db: Database
) -> None:
    answer = log(client, "this_is_a_node_secret", "result", sample("osquery")["data"])
    assert answer == {"node_invalid": True}
    assert counts(db) == (0, 0, 0)


def test_a_wrong_enroll_secret_is_refused_with_node_invalid(
    client: TestClient, db: Database
) -> None:
    resp = client.post(ENROLL, json={"enroll_secret": "this_is_a_deployment_secret"})
    assert resp.status_code == 401
    assert resp.json()["node_invalid"] is True
    resp = client.post(ENROLL, json={"host_identifier": "h"})
    assert resp.status_code == 401 and resp.json()["node_invalid"] is True
    with db.read() as s:
        assert list(s.scalars(select(OsqueryNode))) == []


def test_status_logs_are_acknowledged(client: TestClient, db: Database) -> None:
    node_key = enroll(client)
    status = json.loads((SAMPLES / "osquery_tls_status.json").read_text())
    answer = log(client, node_key, "status", status["data"])
    assert answer["node_invalid"] is False and answer["accepted"] == []
    assert counts(db) == (0, 0, 0)


def test_a_removed_row_in_a_later_request_links_to_its_alert(
    client: TestClient, db: Database
) -> None:
    node_key = enroll(client)
    added = sample("osquery")["data"][0]
    [alert] = log(client, node_key, "result", [added])["accepted"]
    removed = added | {"action": "removed", "unixTime": added["unixTime"] + 600}
    [notice] = log(client, node_key, "result", [removed])["recorded"]
    assert notice["alert_id"] == alert["id"]


def test_a_body_that_is_not_json_is_400(client: TestClient) -> None:
    resp = client.post(LOG, content=b"{not json")
    assert resp.status_code == 400


def test_the_node_key_never_reaches_the_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    node_key = enroll(client)
    log(client, node_key, "result", sample("osquery")["data"])
    log(client, node_key, "result", [{"name": "q", "action": "added", "columns": "nope"}])
    assert node_key not in caplog.text
    assert TOKEN not in caplog.text


def test_a_gzip_body_from_logger_tls_compress_is_inflated(client: TestClient) -> None:
    node_key = enroll(client)
    body = json.dumps(
        {"node_key": node_key, "log_type": "result", "data": sample("osquery")["data"]}
    )
    resp = client.post(
        LOG, content=gzip.compress(body.encode()), headers={"Content-Encoding": "gzip"}
    )
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["accepted"]) == 1


def test_a_gzip_bomb_is_refused_before_it_is_inflated(client: TestClient, db: Database) -> None:
    node_key = enroll(client)
    padding = " " * (5 * 1024 * 1024)  # far over server.max_body_bytes once inflated
    body = json.dumps({"node_key": node_key, "log_type": "result", "data": [], "x": padding})
    resp = client.post(
        LOG, content=gzip.compress(body.encode()), headers={"Content-Encoding": "gzip"}
    )
    assert resp.status_code == 413
    assert counts(db) == (0, 0, 0)


def test_a_node_of_a_source_whose_token_was_withdrawn_must_enroll_again(
    db: Database, db_url: str
) -> None:
    with TestClient(build_service(adapter_settings(db_url), db)[1]) as before:
        node_key = enroll(before)
    cfg = adapter_settings(db_url)
    kept = [t for t in cfg.ingest.tokens if t.source != "monitoring"]
    withdrawn = cfg.model_copy(update={"ingest": cfg.ingest.model_copy(update={"tokens": kept})})
    with TestClient(build_service(withdrawn, db)[1]) as after:
        answer = log(after, node_key, "result", sample("osquery")["data"])
    assert answer == {"node_invalid": True}
    assert counts(db) == (0, 0, 0)


def test_a_host_identifier_with_nul_is_stored_without_it(client: TestClient, db: Database) -> None:
    resp = client.post(ENROLL, json={"enroll_secret": TOKEN, "host_identifier": "web\u000001"})
    assert resp.status_code == 200, resp.text
    with db.read() as s:
        [node] = s.scalars(select(OsqueryNode))
    assert node.host_identifier == "web01"
