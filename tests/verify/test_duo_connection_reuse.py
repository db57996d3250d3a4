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
