"""A push's calls to Duo share one kept-alive TLS connection: its preauth, its auth, then its
poll (issue #25.5). The poll went to another connection pool than the push (pools are chosen by
the call's key: the username, then the txid), so each push cost a second TLS handshake; with
2,000 people pushed at once the handshakes were a sixth of the event loop's time."""

from __future__ import annotations

import asyncio

from securitybot.config import DuoConfig
from securitybot.demo import FakeDuo
from securitybot.verify.base import PushStatus, StartResult
from securitybot.verify.duo import DuoVerifier
from securitybot.verify.duo_api import DuoAuthApi
from tests.perf.duo_handlers import IKEY, SKEY


def test_a_push_and_its_poll_use_one_connection() -> None:
    with FakeDuo(ikey=IKEY, skey=SKEY) as fd:
        fd.enroll("alice")
        cfg = DuoConfig.model_validate({"ikey": IKEY, "skey": SKEY, "api_host": fd.api_host,
                                        "ca_certs": fd.ca_path})  # fmt: skip
        verifier = DuoVerifier(cfg)

        async def scenario() -> tuple[StartResult, PushStatus]:
            try:
                started = await verifier.start_push("alice", {"Alert": "flurb -export"})
                assert started.txid is not None
                fd.answer_push(started.txid, "allow")
                polled = await verifier.poll(started.txid)
                return started.result, polled.status
            finally:
                verifier.close()
                await asyncio.sleep(0)

        result, status = asyncio.run(scenario())
        connections = fd.connections
    assert (result, status) == (StartResult.PUSHED, PushStatus.APPROVED)
    assert connections == 1, f"{connections} TLS connections for one push and its poll"


def test_a_bursts_connections_are_kept_for_the_next_burst() -> None:
    # Thousands of people pushed at once: each pool kept only 8 idle connections for 5 s, so
    # the next wave of pushes and polls paid a TLS handshake for nearly every call (4,199
    # handshakes for 2,000 pushes, the event loop's largest cost; bench/duo.py).
    with FakeDuo(ikey=IKEY, skey=SKEY) as fd:
        names = [f"user{i:02d}" for i in range(32)]
        for name in names:
            fd.enroll(name)
        cfg = DuoConfig.model_validate({"ikey": IKEY, "skey": SKEY, "api_host": fd.api_host,
                                        "ca_certs": fd.ca_path})  # fmt: skip
        api = DuoAuthApi(cfg, shards=1)

        async def wave() -> None:
            await asyncio.gather(*(api.call("POST", "/auth/v2/preauth", {"username": n})
                                   for n in names))  # fmt: skip

        async def scenario() -> tuple[int, int]:
            try:
                await wave()
                first = fd.connections
                await asyncio.sleep(6)  # idle past the old 5 s expiry, well inside Duo's own
                await wave()
                return first, fd.connections
            finally:
                await api.aclose()

        first, second = asyncio.run(scenario())
    assert second == first, f"{second - first} new TLS connections for a second wave of 32"
