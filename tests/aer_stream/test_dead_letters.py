"""Issue 24 item 7 and issue 25 item 3: a worker acts only on messages the API signed, and a
message it cannot use (unsigned, forged, replayed late, not JSON, not valid) is dead-lettered
with its reason (table, dead-letter subject, metric, one log line) while its partition carries
on. Real NATS, a worker in this process, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from securitybot.aer.events import ActivityEvent
from securitybot.aer.mac import MAC_HEADER, sign
from securitybot.aer.stream import MSG_ID_HEADER, encode, partition
from securitybot.cli import main
from securitybot.demo import FakeDuo, FakeSlack
from tests.aer_e2e.conftest import EVENTS_AUTH, QUIET, TOR_IP, MakeBot, aer_config
from tests.aer_stream.conftest import SIGNING_KEY, drop_stream, running_worker, stream_config
from tests.e2e.harness import e2e_config, e2e_settings, wait_until

PARTS = 4


@pytest.fixture
def stream(nats_url: str) -> Iterator[dict[str, Any]]:
    cfg = stream_config(nats_url, partitions=PARTS, lease="2s", duplicate_window="3s")
    yield cfg
    asyncio.run(drop_stream(nats_url, cfg["stream"]))


def _subject(cfg: dict[str, Any]) -> str:
    return f"{cfg['subject']}.{partition(QUIET, PARTS)}"  # every event here is QUIET's


def _tor_signin(user: str) -> bytes:
    ts = datetime.now(UTC)
    return encode([ActivityEvent(QUIET, user, ts, "login", session=f"S{user}9", ip=TOR_IP)])


async def _publish(url: str, subj: str, body: bytes, headers: dict[str, str] | None) -> None:
    """As anyone who can reach NATS: a plain client, no credentials."""
    import nats

    nc = await nats.connect(url)
    await nc.jetstream().publish(subj, body, headers=headers)
    await nc.close()


def _signed(subj: str, body: bytes, key: str, msg_id: str) -> dict[str, str]:
    return {MSG_ID_HEADER: msg_id, MAC_HEADER: sign(key.encode(), subj, msg_id, body)}


def _dead(engine: sa.Engine, stream: str) -> list[tuple[int, str]]:
    q = sa.text("SELECT id, reason FROM aer_dead_letters WHERE stream = :s ORDER BY id")
    with engine.connect() as c:
        return [(int(i), r) for i, r in c.execute(q, {"s": stream})]


async def _captured(url: str, stream: str) -> tuple[str, bytes, dict[str, str]]:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(stream)
    msg = await js.get_msg(stream, info.state.last_seq)
    await nc.close()
    return msg.subject, msg.data, dict(msg.headers or {})


@contextmanager
def watching(url: str, subject: str) -> Iterator[list[tuple[str, dict[str, str]]]]:
    """What a monitoring client subscribed to ``subject`` receives, as (subject, headers)."""
    got: list[tuple[str, dict[str, str]]] = []
    loop = asyncio.new_event_loop()
    ready, stop = threading.Event(), asyncio.Event()

    async def run() -> None:
        import nats

        nc = await nats.connect(url)

        async def on(msg: Any) -> None:
            got.append((msg.subject, dict(msg.headers or {})))

        await nc.subscribe(subject, cb=on)
        await nc.flush()
        ready.set()
        await stop.wait()
        await nc.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield got
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_forged_and_poison_messages_are_dead_lettered_and_the_partition_carries_on(
    make_bot: MakeBot, stream: dict[str, Any], nats_url: str, db_url: str, fs: FakeSlack,
    fd: FakeDuo, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    bot = make_bot(stream=stream)
    settings = e2e_settings(db_url, fs, fd, aer=aer_config(stream=stream))
    subj = _subject(stream)
    engine = bot.db.engine
    with (
        caplog.at_level(logging.WARNING),
        running_worker(settings, db_url),
        watching(nats_url, f"{stream['subject']}-dead.>") as dead_subject,
    ):
        # 1. Anyone on NATS: an unsigned Tor sign-in (the attack), a forged one.
        asyncio.run(_publish(nats_url, subj, _tor_signin("UALICE"), None))
        forged = _tor_signin("UCAROL")  # also replayed by the operator below
        wrong_key = "a-key-the-api-does-not-have-0123456789"
        asyncio.run(_publish(nats_url, subj, forged, _signed(subj, forged, wrong_key, "f1")))
        # 2. A producer bug with the right key: not JSON, and JSON that is not valid events.
        asyncio.run(_publish(nats_url, subj, b"not json",
                             _signed(subj, b"not json", SIGNING_KEY, "p1")))  # fmt: skip
        bad = json.dumps([{"ts": "2026-01-05T10:00:00+00:00", "org": QUIET, "user": "UBOB",
                           "action": "login", "count": "many"}]).encode()  # fmt: skip
        asyncio.run(_publish(nats_url, subj, bad, _signed(subj, bad, SIGNING_KEY, "p2")))
        # 3. A message the API did publish, captured and published again once JetStream's
        #    duplicate window (3 s here) no longer drops it.
        ok = {"org": QUIET, "user": "UBOB", "action": "login", "session": "SBOB1"}
        assert bot.http.post("/api/v1/events", json=[ok], headers=EVENTS_AUTH).status_code == 202
        c_subj, c_body, c_headers = asyncio.run(_captured(nats_url, stream["stream"]))
        time.sleep(3.5)
        asyncio.run(_publish(nats_url, c_subj, c_body, c_headers))

        wait_until(lambda: len(_dead(engine, stream["stream"])) == 5, timeout=30,
                   what="five dead letters")  # fmt: skip
        reasons = [r for _, r in _dead(engine, stream["stream"])]
        assert reasons == ["missing_mac", "bad_mac", "undecodable", "invalid", "expired_mac"]
        assert fs.session_resets == []
        wait_until(lambda: len(dead_subject) == 5, timeout=10, what="the dead-letter subject")
        assert {s for s, _ in dead_subject} == {
            f"{stream['subject']}-dead.{partition(QUIET, PARTS)}"
        }
        assert [h["Securitybot-Dead-Reason"] for _, h in dead_subject] == reasons
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM aer_anomalies")).scalar() == 0

        # 4. The partition carries on: the same attack through the API (signed) is acted on.
        tor = {"org": QUIET, "user": "UALICE", "action": "login", "session": "SALICE9",
               "ip": TOR_IP}  # fmt: skip
        assert bot.http.post("/api/v1/events", json=[tor], headers=EVENTS_AUTH).status_code == 202
        wait_until(lambda: len(fs.session_resets) == 1, timeout=30, what="the signed reset")

        # Counted by reason, and logged once per reason (not once a second, forever).
        metrics = bot.http.get("/metrics").text
        for reason in ("missing_mac", "bad_mac", "undecodable", "invalid", "expired_mac"):
            assert f'securitybot_aer_dead_letters_total{{reason="{reason}"}} 1.0' in metrics
        lines = [r for r in caplog.records if "AER dead letter" in r.getMessage()]
        assert len(lines) == 5
        assert not [r for r in caplog.records if "stopped, restarting from SQL" in r.getMessage()]

        # 5. The operator looks, then replays the forged-key message (its events are valid);
        #    the undecodable one cannot be replayed.
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(e2e_config(db_url, fs, fd, aer=aer_config(stream=stream))))
        runner = CliRunner()
        listed = runner.invoke(main, ["aer", "dead-letters", "list", "--config", str(path)])
        assert listed.exit_code == 0, listed.output
        rows = [line.split("\t") for line in listed.output.splitlines() if "\t" in line]
        assert [r[2] for r in rows] == reasons
        shown = runner.invoke(main, ["aer", "dead-letters", "list", "--reason", "bad_mac",
                                     "--json", "--config", str(path)])  # fmt: skip
        row = json.loads(shown.output.splitlines()[-1])
        assert json.loads(row["data"])[0]["user"] == "UCAROL"
        ids = dict((r, i) for i, r in _dead(engine, stream["stream"]))
        replayed = runner.invoke(main, ["aer", "dead-letters", "replay", str(ids["bad_mac"]),
                                        "--by", "alice", "--config", str(path)])  # fmt: skip
        assert replayed.exit_code == 0, replayed.output
        assert replayed.output.splitlines()[-1] == f"{ids['bad_mac']}: replayed 1 events"
        wait_until(lambda: len(fs.session_resets) == 2, timeout=30, what="the replayed reset")
        again = runner.invoke(main, ["aer", "dead-letters", "replay", str(ids["bad_mac"]),
                                     str(ids["undecodable"]), "--config", str(path)])  # fmt: skip
        assert again.exit_code == 1
        assert "already replayed" in again.output and "fails validation" in again.output
        pending = runner.invoke(main, ["aer", "dead-letters", "list", "--pending",
                                       "--config", str(path)])  # fmt: skip
        assert "bad_mac" not in pending.output and "undecodable" in pending.output
    assert len(_dead(engine, stream["stream"])) == 5  # the replay was acted on, not refused
    with engine.connect() as c:
        audit = c.execute(sa.text("SELECT actor FROM audit_log WHERE action = "
                                  "'aer.dead_letter.replayed'")).all()  # fmt: skip
    assert [a for (a,) in audit] == ["alice"]
