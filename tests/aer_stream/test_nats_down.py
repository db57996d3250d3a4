"""Issue 25 item 2: a 503 means "not stored". NATS goes away under a running server (our own
nats-server, stopped and started again), a batch is answered 503, and when NATS is back that
batch does not appear on the stream (nats-py's reconnect buffer used to send it after we had
answered). A batch that is only partly stored says which events were; the duplicate window is
a setting applied to the stream."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from securitybot.aer.stream import partition
from tests.aer_e2e.conftest import BUSY, EVENTS_AUTH, QUIET, MakeBot
from tests.aer_stream.conftest import stream_config
from tests.aer_stream.natsd import NatsServer

TS = "2026-01-05T10:00:00+00:00"


async def _info(url: str, stream: str) -> Any:
    import nats

    nc = await nats.connect(url)
    try:
        return await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()


def _events(users: list[str], org: str = QUIET) -> list[dict[str, Any]]:
    return [{"org": org, "user": u, "action": "file_download", "ts": TS} for u in users]


def test_a_batch_answered_503_is_not_stored_when_nats_comes_back(
    make_bot: MakeBot, natsd: NatsServer
) -> None:
    cfg = stream_config(natsd.url, publish_timeout="1s")
    bot = make_bot(stream=cfg)
    first = bot.http.post("/api/v1/events", json=_events(["UA1", "UA2"]), headers=EVENTS_AUTH)
    assert first.status_code == 202, first.text

    natsd.stop()
    lost = bot.http.post("/api/v1/events", json=_events(["UB1", "UB2", "UB3"]), headers=EVENTS_AUTH)
    assert lost.status_code == 503, lost.text
    body = lost.json()
    assert body["error"] == "stream_unavailable" and body["detail"] == {"stored": []}
    natsd.start()
    time.sleep(4)  # nats-py reconnects after 2 s; its buffer would have been flushed by now
    assert asyncio.run(_info(natsd.url, cfg["stream"])).state.messages == 1

    # The sender retries the same batch: stored now, once; a further retry adds nothing.
    for _ in range(2):
        again = bot.http.post(
            "/api/v1/events", json=_events(["UB1", "UB2", "UB3"]), headers=EVENTS_AUTH
        )
        assert again.status_code == 202, again.text
    assert asyncio.run(_info(natsd.url, cfg["stream"])).state.messages == 2


def test_a_partly_stored_batch_names_the_stored_events_and_a_retry_adds_each_once(
    make_bot: MakeBot, natsd: NatsServer
) -> None:
    from nats.js import api

    cfg = stream_config(natsd.url, partitions=2)
    assert partition(QUIET, 2) != partition(BUSY, 2)

    async def small_stream() -> None:
        import nats

        nc = await nats.connect(natsd.url)
        await nc.jetstream().add_stream(api.StreamConfig(
            name=cfg["stream"], subjects=[f"{cfg['subject']}.*"], max_msgs=1,
            discard=api.DiscardPolicy.NEW, duplicate_window=600,
        ))  # fmt: skip
        await nc.close()

    asyncio.run(small_stream())  # room for one message: the second partition's is refused
    bot = make_bot(stream=cfg)
    batch = _events(["UQ1"]) + _events(["UB1"], BUSY) + _events(["UQ2"])
    resp = bot.http.post("/api/v1/events", json=batch, headers=EVENTS_AUTH)
    assert resp.status_code == 503, resp.text
    first = min((QUIET, BUSY), key=lambda org: partition(org, 2))  # published first
    stored = [i for i, ev in enumerate(batch) if ev["org"] == first]
    assert resp.json()["detail"] == {"stored": stored}
    assert f"{len(stored)} of 3 events were stored" in resp.json()["message"]
    assert "maximum messages" in resp.json()["message"]
    # The same batch again: the stored message is a duplicate, nothing is counted twice.
    again = bot.http.post("/api/v1/events", json=batch, headers=EVENTS_AUTH)
    assert again.status_code == 503 and again.json()["detail"] == {"stored": stored}
    assert asyncio.run(_info(natsd.url, cfg["stream"])).state.messages == 1


def test_the_duplicate_window_is_applied_to_an_existing_stream(
    make_bot: MakeBot, natsd: NatsServer
) -> None:
    cfg = stream_config(natsd.url, duplicate_window="2m")
    bot = make_bot(stream=cfg)
    assert (
        bot.http.post("/api/v1/events", json=_events(["UA1"]), headers=EVENTS_AUTH).status_code
        == 202
    )
    assert asyncio.run(_info(natsd.url, cfg["stream"])).config.duplicate_window == 120
    bot = make_bot(stream={**cfg, "duplicate_window": "1h"})  # a restart with a longer window
    assert (
        bot.http.post("/api/v1/events", json=_events(["UA2"]), headers=EVENTS_AUTH).status_code
        == 202
    )
    info = asyncio.run(_info(natsd.url, cfg["stream"]))
    assert info.config.duplicate_window == 3600 and info.state.messages == 2
