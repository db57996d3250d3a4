"""osquery's result logs as osqueryd writes them (samples from osquery's "Logging" docs)."""

from __future__ import annotations

import copy
import json

from starlette.testclient import TestClient

from securitybot.store.db import Database
from tests.adapters.conftest import SAMPLES, auth, counts, sample


def post(client: TestClient, body: object) -> dict:  # type: ignore[type-arg]
    resp = client.post("/api/v1/alerts/osquery", json=body, headers=auth())
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def test_a_removed_row_seen_later_is_recorded_against_the_alert_its_added_row_made(
    client: TestClient, db: Database
) -> None:
    added = sample("osquery")["data"][0]
    created = post(client, added)["accepted"][0]

    removed = copy.deepcopy(added) | {"action": "removed", "unixTime": added["unixTime"] + 3600}
    removed["calendarTime"] = "Tue May 14 10:12:44 2024 UTC"
    [notice] = post(client, removed)["recorded"]

    assert notice["alert_id"] == created["id"]
    assert notice["dedup_key"] == created["dedup_key"]
    assert counts(db)[0] == 1


def test_the_same_added_row_logged_again_is_the_same_alert(
    client: TestClient, db: Database
) -> None:
    added = sample("osquery")["data"][0]
    first = post(client, added)["accepted"][0]
    again = post(client, added | {"unixTime": added["unixTime"] + 60, "counter": 13})
    assert again["accepted"][0]["id"] == first["id"]
    assert again["accepted"][0]["created"] is False
    assert counts(db)[0] == 1


def test_filesystem_logger_lines_are_accepted_as_a_forwarder_posts_them(
    client: TestClient, db: Database
) -> None:
    lines = (SAMPLES / "osquery_event.ndjson").read_bytes()
    resp = client.post("/api/v1/alerts/osquery", content=lines, headers=auth())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    [started] = body["accepted"]  # osqueryd pid 97830 started: a process row names no user
    assert started["title"] == "processes on hostname.local"
    assert started["note"].startswith("names no Slack user")
    assert started["details"]["columns"]["pid"] == "97830"
    # Line 2 is a different process (pid 97650) going away: recorded, linked to no alert.
    assert [(r["index"], r["alert_id"]) for r in body["recorded"]] == [(1, None)]
    assert counts(db)[0] == 1


def test_a_batch_line_is_its_added_and_removed_rows(client: TestClient, db: Database) -> None:
    body = post(client, sample("osquery_batch"))
    [started] = body["accepted"]
    assert (started["index"], started["details"]["columns"]["pid"]) == (0, "97830")
    assert started["details"]["action"] == "added"
    assert [r["index"] for r in body["recorded"]] == [1]


def test_a_snapshot_is_one_alert_per_row_and_the_next_snapshot_the_same_alerts(
    client: TestClient, db: Database
) -> None:
    first = post(client, sample("osquery_snapshot"))["accepted"]
    assert [a["details"]["columns"]["pid"] for a in first] == ["1", "51", "52", "54"]
    assert {a["title"] for a in first} == {"process_snapshot on hostname.local"}

    later = sample("osquery_snapshot") | {"unixTime": "1462231652", "counter": "2"}
    again = post(client, later)["accepted"]
    assert [a["id"] for a in again] == [a["id"] for a in first]
    assert not any(a["created"] for a in again)
    assert counts(db)[0] == 4


def test_a_broken_line_is_named_in_the_400(client: TestClient, db: Database) -> None:
    lines = (SAMPLES / "osquery_event.ndjson").read_bytes() + b'{"action": "added", \n'
    resp = client.post("/api/v1/alerts/osquery", content=lines, headers=auth())
    assert resp.status_code == 400
    assert resp.json()["message"].startswith("line 3: ")
    assert counts(db) == (0, 0, 0)


def test_tls_logger_status_logs_are_acknowledged_and_create_nothing(
    client: TestClient, db: Database
) -> None:
    body = post(client, json.loads((SAMPLES / "osquery_tls_status.json").read_text()))
    assert body["accepted"] == [] and body["ignored"]
    assert counts(db) == (0, 0, 0)


def test_an_unknown_log_type_is_422(client: TestClient, db: Database) -> None:
    resp = client.post(
        "/api/v1/alerts/osquery", json={"log_type": "metrics", "data": []}, headers=auth()
    )
    assert resp.status_code == 422
    assert "log_type" in resp.json()["message"]
    assert counts(db) == (0, 0, 0)


def test_batch_lines_split_into_added_alerts_and_removed_notices() -> None:
    from securitybot.ingest.adapters.osquery import Osquery

    items = Osquery().items(sample("osquery_batch"))
    assert [(i.context["action"], i.resolved) for i in items] == [
        ("added", False),
        ("removed", True),
    ]
    assert [i.context["columns"]["pid"] for i in items] == ["97830", "97650"]
    assert items[0].details["name"] == "processes"
    assert "diffResults" not in items[0].context


def test_a_snapshot_line_is_one_item_per_row() -> None:
    from securitybot.ingest.adapters.osquery import Osquery

    items = Osquery().items(sample("osquery_snapshot"))
    assert [i.context["columns"]["pid"] for i in items] == ["1", "51", "52", "54"]
    assert {i.context["action"] for i in items} == {"snapshot"}
    assert not any(i.resolved for i in items)
