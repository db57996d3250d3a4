"""How the Slack fake answers on the wire: at once (no stall of its own), or as late as asked."""

from __future__ import annotations

import http.client
import socket
import time

from slack_sdk import WebClient

from securitybot.demo import FakeSlack
from securitybot.demo._serving import FakeServer


def test_a_kept_alive_connection_is_answered_without_waiting_for_acks() -> None:
    # An answer goes out as headers, then body. With Nagle's algorithm the body would wait for
    # the client's ACK of the headers, which Linux delays by 40 ms: every call would have
    # measured the fake's stall. The fake's connections send small writes at once.
    with FakeSlack() as fs:
        conn = http.client.HTTPConnection("127.0.0.1", fs.port, timeout=5)
        try:
            for _ in range(3):  # the same connection, kept alive
                conn.request("POST", "/api/auth.test", headers={"Authorization": "Bearer x"})
                assert conn.getresponse().read()
            assert isinstance(fs._server, FakeServer)
            sockets = fs._server.open_connections()
            assert sockets
            assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)
        finally:
            conn.close()


def test_a_slow_slack_records_the_call_at_once_and_answers_it_late() -> None:
    with FakeSlack() as fs:
        fs.latency = 0.2
        started = time.time()
        WebClient(token="xoxb-test", base_url=fs.base_url).auth_test()
        answered = time.time()
        assert answered - started >= 0.2
        (call,) = fs.calls_to("auth.test")
        assert call.at < answered - 0.15  # Slack had the call long before its answer arrived
