"""`POST /api/v1/events` with aer.stream: validated per event, published per org partition, and
answered only once JetStream has stored every message; NATS down is a 503, not a silent drop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench.common import free_port
from securitybot.aer.stream import decode, partition
from tests.aer_e2e.conftest import AUTH, BUSY, EVENTS_AUTH, QUIET, MakeBot
from tests.aer_stream.conftest import drop_stream, stream_config

TS = "2026-01-05T10:00:00+00:00"


@pytest.fixture
def stream(nats_url: str) -> Iterator[dict[str, Any]]:
    cfg = stream_config(nats_url)
    yield cfg
    asyncio.run(drop_stream(nats_url, cfg["stream"]))


_drop = drop_stream  # tests/aer_stream/test_black_box_stream.py


async def _stored(url: str, cfg: dict[str, Any]) -> list[tuple[str, list[Any], str | None]]:
    """Every message of the stream: (subject, events, Nats-Msg-Id)."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(cfg["stream"])
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(cfg["stream"], seq)
        out.append((msg.subject, decode(msg.data), (msg.headers or {}).get("Nats-Msg-Id")))
    await nc.close()
    return out


def test_accepted_events_are_on_the_stream_by_org_partition_before_the_answer(
    make_bot: MakeBot, stream: dict[str, Any], nats_url: str
) -> None:
    bot = make_bot(stream=stream)
    events = [
        {"org": QUIET, "user": "UBOB", "action": "file_download", "ts": TS, "count": 2},
        {"org": QUIET, "user": "bob@example.com", "action": "file_download", "ts": TS},
        {"org": BUSY, "user": "UALICE", "action": "search", "ts": TS, "ip": "192.0.2.4"},
    ]
    resp = bot.http.post("/api/v1/events", json=events, headers=EVENTS_AUTH)
    assert resp.status_code == 202, resp.text
    out = resp.json()
    assert out["accepted"] == 2 and out["stream"] == stream["stream"]
    assert [(r["index"], r["field"]) for r in out["rejected"]] == [(1, "user")]
    assert out["anomalies"] is None  # decided by a worker, visible in /api/v1/aer/anomalies

    stored = asyncio.run(_stored(nats_url, stream))
    by_subject = {subj: [(e.org, e.user, e.action, e.count, e.ip) for e in evs]
                  for subj, evs, _ in stored}  # fmt: skip
    assert by_subject == {
        f"{stream['subject']}.{partition(QUIET, 4)}": [(QUIET, "UBOB", "file_download", 2, None)],
        f"{stream['subject']}.{partition(BUSY, 4)}": [(BUSY, "UALICE", "search", 1, "192.0.2.4")],
    }
    assert all(msg_id for *_, msg_id in stored)

    # A client retrying the same batch (say after a 503 half-way) adds nothing twice.
    again = bot.http.post("/api/v1/events", json=events, headers=EVENTS_AUTH)
    assert again.status_code == 202
    assert len(asyncio.run(_stored(nats_url, stream))) == len(stored)
    with bot.db.read() as session:  # nothing was judged in the server itself
        from sqlalchemy import func, select

        from securitybot.store.aer_models import AerCounter

        assert session.scalar(select(func.count()).select_from(AerCounter)) == 0


def test_nats_down_is_a_503_with_the_reason(make_bot: MakeBot, stream: dict[str, Any]) -> None:
    bot = make_bot(stream={**stream, "url": f"nats://127.0.0.1:{free_port()}"})
    event = {"org": QUIET, "user": "UBOB", "action": "file_download", "ts": TS}
    resp = bot.http.post("/api/v1/events", json=[event], headers=EVENTS_AUTH)
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["error"] == "stream_unavailable"
    assert "JetStream did not acknowledge" in body["message"]
    bad = bot.http.post("/api/v1/events", content=b"{not json", headers=EVENTS_AUTH)
    assert bad.status_code == 400  # validation still answers first, NATS or not


def test_stream_answers_json_for_ndjson_too(make_bot: MakeBot, stream: dict[str, Any]) -> None:
    bot = make_bot(stream=stream)
    lines = [json.dumps({"org": QUIET, "user": "UBOB", "action": "search", "ts": TS})] * 3
    headers = {**EVENTS_AUTH, "Content-Type": "application/x-ndjson"}
    resp = bot.http.post("/api/v1/events", content="\n".join(lines).encode(), headers=headers)
    assert resp.status_code == 202 and resp.json()["accepted"] == 3


def test_events_for_other_orgs_never_reach_the_stream(
    make_bot: MakeBot, stream: dict[str, Any], nats_url: str
) -> None:
    """The events source is bound to QUIET and BUSY: a Tor sign-in it claims for another org
    is rejected before publishing, so no worker can act on it; an ingest token gets a 403."""
    bot = make_bot(stream=stream)
    forged = {"org": "TOTHER", "user": "UBOB", "action": "login", "ip": "198.51.100.7", "ts": TS}
    fine = {"org": QUIET, "user": "UBOB", "action": "search", "ts": TS}
    resp = bot.http.post("/api/v1/events", json=[forged, fine, forged], headers=EVENTS_AUTH)
    assert resp.status_code == 202, resp.text
    out = resp.json()
    assert out["accepted"] == 1
    assert [(r["index"], r["field"]) for r in out["rejected"]] == [(0, "org"), (2, "org")]
    assert "may not post events for org 'TOTHER'" in out["rejected"][0]["error"]
    stored = asyncio.run(_stored(nats_url, stream))
    assert [(e.org, e.action) for _, evs, _ in stored for e in evs] == [(QUIET, "search")]
    refused = bot.http.post("/api/v1/events", json=[fine], headers=AUTH)
    assert refused.status_code == 403
    assert len(asyncio.run(_stored(nats_url, stream))) == 1
