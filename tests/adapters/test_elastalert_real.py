"""ElastAlert 2's own code (PyPI ``elastalert2``) posting a match to the running service.

The rule is loaded by ElastAlert's FileRulesLoader, the Elasticsearch hit goes through
ElastAlerter.process_hits and gets the counters ElastAlerter adds, then the rule's real
HTTPPostAlerter and HTTPPost2Alerter post it, as `elastalert` does when the rule matches.
"""

from __future__ import annotations

import copy
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from securitybot.store.db import Database
from securitybot.store.models import Alert
from tests.adapters.conftest import ELASTALERT_TOKEN, TOKEN, sample

if os.environ.get("CI") == "true":  # CI installs the dev extra: a missing package must fail
    import elastalert.elastalert as elastalert
    import elastalert.loaders as loaders
else:
    elastalert = pytest.importorskip("elastalert.elastalert", reason="dev extra: elastalert2")
    loaders = pytest.importorskip("elastalert.loaders")

INDEX = ".ds-logs-okta.system-ep-2023.09.22-000001"
RULE = """
name: Okta login from a new country
type: any
index: logs-okta.system-*
filter:
- term:
    event.action: "user.session.start"
alert:
- post
- post2
http_post_url: "{url}"
http_post_headers:
  Authorization: "Bearer {token}"
# The match document carries no rule name: the static payload adds it ($name$ = the rule's name).
http_post_static_payload:
  rule_name: $name$
http_post2_url: "{url}"
http_post2_headers:
  Authorization: "Bearer {token}"
http_post2_all_values: true
http_post2_payload:
  rule_name: "Okta login from a new country"
"""
BARE_RULE = """
name: Okta sessions
type: any
index: logs-okta.system-*
alert:
- post
http_post_url: "{url}"
http_post_headers:
  Authorization: "Bearer {token}"
"""


def load_rule(tmp_path: Path, text: str) -> dict[str, Any]:
    conf = {
        "rules_folder": str(tmp_path),
        "es_host": "localhost",
        "es_port": 9200,
        "writeback_index": "elastalert_status",
        "run_every": timedelta(minutes=1),
        "buffer_time": timedelta(minutes=15),
        "alert_time_limit": timedelta(days=2),
        "old_query_limit": timedelta(weeks=1),
    }
    path = tmp_path / "rule.yaml"
    path.write_text(text)
    rule: dict[str, Any] = loaders.FileRulesLoader(conf).load_configuration(str(path), conf)
    return rule


def match_for(rule: dict[str, Any]) -> dict[str, Any]:
    hit = {
        "_index": INDEX,
        "_id": "b2t0YS1zeXN0ZW0tMQ",
        "_source": sample("elastic_okta_system_event"),
    }
    [match] = elastalert.ElastAlerter.process_hits(rule, [hit])
    match["num_hits"], match["num_matches"] = 1, 1  # what ElastAlerter.run_rule adds
    return match


def fire(rule: dict[str, Any]) -> None:
    match = match_for(rule)
    for alerter in rule["alert"]:
        alerter.alert([copy.deepcopy(match)])  # raises EAException unless the post got a 2xx


def stored(db: Database) -> list[Alert]:
    with db.read() as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)))


def test_both_http_post_alerters_deliver_one_alert_titled_with_the_rule_name(
    served: str, db: Database, tmp_path: Path
) -> None:
    url = f"{served}/api/v1/alerts/elastalert"
    fire(load_rule(tmp_path, RULE.format(url=url, token=ELASTALERT_TOKEN)))

    [alert] = stored(db)  # the second post is the same hit (_id): the same alert
    assert alert.source == "elastalert-okta"
    assert alert.user_given == "xxxxxx@elastic.co"
    assert alert.title == "Okta login from a new country"
    assert alert.dedup_key == "b2t0YS1zeXN0ZW0tMQ"
    assert alert.occurred_at is not None and alert.occurred_at.year == 2020
    assert alert.details["match"]["_index"] == INDEX


def test_without_a_rule_name_the_title_comes_from_the_match(
    served: str, db: Database, tmp_path: Path
) -> None:
    url = f"{served}/api/v1/alerts/elastalert"
    fire(load_rule(tmp_path, BARE_RULE.format(url=url, token=ELASTALERT_TOKEN)))

    [alert] = stored(db)
    assert alert.title == f"user.session.start in {INDEX}"


def test_a_wrong_token_makes_elastalert_report_the_failure(
    served: str, db: Database, tmp_path: Path
) -> None:
    url = f"{served}/api/v1/alerts/elastalert"
    rule = load_rule(tmp_path, BARE_RULE.format(url=url, token="wrong-" + TOKEN))
    with pytest.raises(elastalert.EAException, match="401"):
        fire(rule)
    assert stored(db) == []


def test_a_match_naming_a_login_is_taken_for_the_team(
    served: str, db: Database, tmp_path: Path
) -> None:
    # The default templates: user.name "xxxxxx" is nobody in Slack. Nothing is refused.
    url = f"{served}/api/v1/alerts/elastalert"
    fire(load_rule(tmp_path, RULE.format(url=url, token=TOKEN)))

    [alert] = stored(db)
    assert (alert.source, alert.user_given) == ("monitoring", "xxxxxx")
