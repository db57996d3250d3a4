"""Partitioning and the message format: stable across processes, lossless, bounded messages."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from securitybot.aer.events import ActivityEvent
from securitybot.aer.mac import MAC_HEADER, check_mac, sign
from securitybot.aer.stream import (
    CHUNK_EVENTS,
    MSG_ID_HEADER,
    Invalid,
    Undecodable,
    decode,
    encode,
    messages,
    partition,
)
from securitybot.config import AerStream
from tests.aer_stream.conftest import SIGNING_KEY


def test_an_org_maps_to_the_same_partition_in_every_process() -> None:
    # Python's hash() of a str differs per process (PYTHONHASHSEED); the partition must not.
    code = "from securitybot.aer.stream import partition; print(partition('T0ACME', 8))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], env={"PYTHONHASHSEED": seed}, check=True,
            capture_output=True, text=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }  # fmt: skip
    assert outs == {str(partition("T0ACME", 8))}
    assert len({partition(f"T{i:04d}", 8) for i in range(200)}) == 8


def test_events_survive_the_round_trip() -> None:
    ev = ActivityEvent(
        "T0ACME", "U0001", datetime(2026, 1, 5, 10, 0, 1, 250_000, tzinfo=UTC), "file_download",
        "S1", "192.0.2.4", 7922, "US", "Slack_SSB/4.36", "desktop", 3, {"file": "F1"},
    )  # fmt: skip
    bare = ActivityEvent("T0ACME", "U0002", datetime(2026, 1, 5, tzinfo=UTC), "search")
    assert decode(encode([ev, bare])) == [ev, bare]


def test_messages_keep_each_partitions_order_and_stay_small() -> None:
    cfg = AerStream(partitions=4, subject="aer.events", signing_key=SIGNING_KEY)
    ts = datetime(2026, 1, 5, tzinfo=UTC)
    events = [
        ActivityEvent(f"T{i % 7}", f"U{i:05d}", ts, "search") for i in range(CHUNK_EVENTS * 3)
    ]
    out = list(messages(cfg, events))
    assert all(len(decode(m.payload)) <= CHUNK_EVENTS for m in out)
    for part in range(4):
        mine = [e for m in out if m.subject == f"aer.events.{part}" for e in decode(m.payload)]
        assert mine == [e for e in events if partition(e.org, 4) == part]
        # each message says which of the published events it holds
        assert [events[p] for m in out if m.subject == f"aer.events.{part}"
                for p in m.positions] == mine  # fmt: skip
    assert len({m.msg_id for m in out}) == len(out)
    assert [m.msg_id for m in messages(cfg, events)] == [m.msg_id for m in out]  # retry: same
    replay = [m.msg_id for m in messages(cfg, events, salt="replay:7:")]
    assert not set(replay) & {m.msg_id for m in out}  # a replay is not its original


KEY, OLD = SIGNING_KEY.encode(), b"the-previous-signing-key-before-the-rotation"
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _signed(body: bytes, key: bytes = KEY, at: datetime = T0) -> dict[str, str]:
    msg_id = "m1"
    mac = sign(key, "aer.events.3", msg_id, body, int(at.timestamp() * 1000))
    return {MSG_ID_HEADER: msg_id, MAC_HEADER: mac}


def test_a_worker_accepts_only_what_a_current_or_previous_key_signed() -> None:
    body = encode([ActivityEvent("T0ACME", "U0001", T0, "login", ip="198.51.100.7")])
    at = T0 + timedelta(milliseconds=40)  # stored by JetStream a moment after signing
    assert check_mac([KEY], "aer.events.3", _signed(body), body, at, 600) is None
    # Rotation: workers take the new key first while the API still signs with the old one.
    assert check_mac([b"n" * 32, OLD], "aer.events.3", _signed(body, OLD), body, at, 600) is None
    assert check_mac([KEY], "aer.events.3", _signed(body, OLD), body, at, 600) == "bad_mac"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: (h, b.replace(b"login", b"logon")), id="body"),
        pytest.param(lambda h, b: ({**h, MSG_ID_HEADER: "m2"}, b), id="message id"),
        pytest.param(
            lambda h, b: ({**h, MAC_HEADER: h[MAC_HEADER].replace("t=1", "t=2")}, b), id="time"
        ),
        pytest.param(lambda h, b: ({**h, MAC_HEADER: "t=1,v1=" + "\xff" * 64}, b), id="non-ascii"),
        pytest.param(lambda h, b: ({**h, MAC_HEADER: "v1=abc"}, b), id="malformed"),
    ],
)
def test_any_change_to_a_signed_message_is_a_bad_mac(tamper: Any) -> None:
    body = encode([ActivityEvent("T0ACME", "U0001", T0, "login")])
    headers, body2 = tamper(_signed(body), body)
    assert check_mac([KEY], "aer.events.3", headers, body2, T0, 600) == "bad_mac"
    assert check_mac([KEY], "aer.events.2", _signed(body), body, T0, 600) == "bad_mac"  # subject


def test_unsigned_and_stale_messages_are_refused() -> None:
    body = b"[]"
    assert check_mac([KEY], "aer.events.3", None, body, T0, 600) == "missing_mac"
    assert check_mac([KEY], "aer.events.3", {MSG_ID_HEADER: "m1"}, body, T0, 600) == "missing_mac"
    # A captured message published again once JetStream's duplicate window has passed.
    late = T0 + timedelta(seconds=601)
    assert check_mac([KEY], "aer.events.3", _signed(body), body, late, 600) == "expired_mac"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not json", Undecodable),
        (b'{"org": "T1"}', Undecodable),
        (b"[1, 2]", Undecodable),
        (b'[{"org": "T1", "user": "U1", "action": "login"}]', Invalid),  # no ts
        (b'[{"ts": "yesterday", "org": "T1", "user": "U1", "action": "login"}]', Invalid),
        (b'[{"ts": "2026-01-05T10:00:00", "org": "T1", "user": "U1", "action": "x"}]', Invalid),
        (b'[{"ts": "2026-01-05T10:00:00+00:00", "org": 7, "user": "U1", "action": "x"}]', Invalid),
        (
            b'[{"ts": "2026-01-05T10:00:00+00:00", "org": "T", "user": "U1", "action": "x",'
            b' "count": true}]',
            Invalid,
        ),
        (
            b'[{"ts": "2026-01-05T10:00:00+00:00", "org": "T", "user": "U1", "action": "x",'
            b' "evil": 1}]',
            Invalid,
        ),
        (b"[" * 100_000, Undecodable),
    ],
)
def test_what_a_worker_cannot_use_is_refused_not_raised(data: bytes, error: type) -> None:
    with pytest.raises(error):
        decode(data)


def test_dead_letters_of_one_reason_are_logged_once_a_minute_with_a_count(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from securitybot.aer import deadletters

    clock = [1000.0]
    monkeypatch.setattr(deadletters.time, "monotonic", lambda: clock[0])
    log = deadletters.RateLimitedLog()

    def letter(seq: int, reason: str = "missing_mac") -> deadletters.DeadLetter:
        return deadletters.DeadLetter("AER", seq, 3, "aer.events.3", reason, "no MAC", {},
                                      b"not json", T0)  # fmt: skip

    with caplog.at_level(logging.WARNING):
        for seq in range(1, 101):  # a flood: one line, not a hundred
            log.note(letter(seq))
            clock[0] += 0.1
        log.note(letter(101, "undecodable"))  # another reason has its own line
        clock[0] += 60
        log.note(letter(102))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "missing_mac message 1 " in lines[0] and "undecodable" in lines[1]
    assert lines[2].endswith("(and 99 more since the last line); not acted on, see "
                             "`securitybot aer dead-letters list`")  # fmt: skip
