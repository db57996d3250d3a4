"""Slack delivery receipts: which deliveries count as the same, and the table that remembers."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from securitybot.slack.receipts import delivery_key, prune, record
from securitybot.store.db import Database
from securitybot.store.models import SlackReceipt, utcnow

# Trimmed from Slack's reference payloads (docs.slack.dev: Events API callback wrapper,
# block_actions and view_submission interaction payloads).
EVENT = {"type": "event_callback", "event_id": "Ev0PV52K21", "event": {"type": "message"}}
CLICK = {
    "type": "block_actions", "user": {"id": "UALICE"}, "trigger_id": "1.2.abc",
    "actions": [{"action_id": "confirm", "action_ts": "1548426417.840180"}],
}  # fmt: skip
SUBMISSION = {"type": "view_submission", "user": {"id": "UBOB"}, "trigger_id": "3.4.def",
              "view": {"id": "VNHU13V36", "hash": "156663117.cd33ad1f"}}  # fmt: skip


def test_each_kind_of_delivery_has_its_own_key() -> None:
    assert delivery_key(EVENT) == ("event_callback", "event:Ev0PV52K21")
    assert delivery_key(CLICK) == ("block_actions", "action:1548426417.840180:UALICE")
    assert delivery_key(SUBMISSION) == ("view_submission", "view:VNHU13V36:3.4.def")
    assert delivery_key({"type": "shortcut", "trigger_id": "5.6.ghi"}) == (
        "shortcut", "shortcut:5.6.ghi",
    )  # fmt: skip


def test_requests_that_change_nothing_are_not_recorded() -> None:
    assert delivery_key({"type": "url_verification", "challenge": "x"}) is None
    assert delivery_key({"type": "block_suggestion", "value": "ali"}) is None
    assert delivery_key({"type": "event_callback"}) is None  # no event_id to go by


def test_a_resubmitted_modal_is_a_new_delivery() -> None:
    again = {**SUBMISSION, "trigger_id": "7.8.jkl"}
    assert delivery_key(again) != delivery_key(SUBMISSION)


def test_very_long_keys_still_fit_the_column() -> None:
    found = delivery_key({"type": "event_callback", "event_id": "E" * 500})
    assert found is not None and len(found[1]) <= 200


def test_the_first_delivery_is_recorded_and_a_repeat_is_not(db: Database) -> None:
    assert record(db, "event:Ev1", "event_callback") is True
    assert record(db, "event:Ev1", "event_callback") is False
    assert record(db, "event:Ev2", "event_callback") is True


def test_old_receipts_are_pruned_and_recent_ones_kept(db: Database) -> None:
    with time_machine.travel(utcnow() - timedelta(hours=2), tick=False):
        record(db, "event:old", "event_callback")
    record(db, "event:new", "event_callback")

    assert prune(db) == 1
    with db.read() as session:
        assert session.get(SlackReceipt, "event:old") is None
        assert session.get(SlackReceipt, "event:new") is not None
