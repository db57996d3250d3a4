"""The Duo fake, exercised through the real duo_client over TLS."""

from __future__ import annotations

import email.utils
import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import duo_client
import pytest
from duo_client.client import sign as duo_sign

from securitybot.demo import FakeDuo
from securitybot.verify.duo_api import signed_request

IKEY = "DIXXXXXXXXXXXXXXXXXX"
SKEY = "s" * 40


@pytest.fixture
def fd() -> Iterator[FakeDuo]:
    before = threading.active_count()
    with FakeDuo(ikey=IKEY, skey=SKEY) as fake:
        fake.enroll("alice")
        yield fake
    assert threading.active_count() == before


def auth_client(fd: FakeDuo, skey: str = SKEY, **kwargs: Any) -> duo_client.Auth:
    # duo_client takes the port separately: the host is both the TLS name and the signed host.
    return duo_client.Auth(
        ikey=kwargs.pop("ikey", IKEY),
        skey=skey,
        host=fd.host,
        port=fd.port,
        ca_certs=fd.ca_path,
        timeout=5,
        **kwargs,
    )


@pytest.fixture
def duo(fd: FakeDuo) -> duo_client.Auth:
    return auth_client(fd)


def push(duo: duo_client.Auth, username: str = "alice") -> str:
    pushinfo = urlencode({"Alert": "Login from new country", "From": "Securitybot"})
    reply = duo.auth(
        factor="push", username=username, device="auto", async_txn=True, pushinfo=pushinfo
    )
    return str(reply["txid"])


def test_ping_check_and_signature_version(fd: FakeDuo, duo: duo_client.Auth) -> None:
    assert duo.ping()["time"] > 0
    assert duo.check()["time"] > 0
    check = next(r for r in fd.requests if r.path == "/auth/v2/check")
    assert check.signature_ok and check.sig_version == duo_client.Auth.sig_version == 5


def test_preauth_results(fd: FakeDuo, duo: duo_client.Auth) -> None:
    alice = duo.preauth(username="alice")
    assert alice["result"] == "auth"
    assert "push" in alice["devices"][0]["capabilities"]
    assert alice["devices"][0]["device"].startswith("DP")
    assert duo.preauth(username="nobody")["result"] == "enroll"
    fd.enroll("bob", devices=[])
    assert duo.preauth(username="bob") | {"status_msg": ""} == {
        "result": "auth",
        "devices": [],
        "status_msg": "",
    }
    fd.set_preauth("carol", "deny")
    assert duo.preauth(username="carol")["result"] == "deny"
    fd.set_preauth("dave", "allow")
    assert duo.preauth(username="dave")["result"] == "allow"


def test_async_push_waiting_then_allow(fd: FakeDuo, duo: duo_client.Auth) -> None:
    txid = push(duo)
    (pending,) = fd.pending_pushes()
    assert pending.txid == txid and pending.username == "alice"
    assert pending.pushinfo == {"Alert": "Login from new country", "From": "Securitybot"}
    status = duo.auth_status(txid)
    assert status["waiting"] and not status["success"] and status["status"] == "pushed"
    fd.answer_push(txid, "allow")
    status = duo.auth_status(txid)
    assert status["success"] and not status["waiting"] and status["status"] == "allow"
    assert fd.pending_pushes() == []


def test_deny_and_scripted_responses(fd: FakeDuo, duo: duo_client.Auth) -> None:
    txid = push(duo)
    fd.answer_push(txid, "deny")
    status = duo.auth_status(txid)
    assert not status["success"] and not status["waiting"] and status["status"] == "deny"

    fd.next_push_response("alice", "allow")
    fd.next_push_response("alice", "deny")
    assert duo.auth_status(push(duo))["success"]
    assert duo.auth_status(push(duo))["status"] == "deny"
    assert duo.auth_status(push(duo))["waiting"]


def test_push_needs_a_push_device(fd: FakeDuo, duo: duo_client.Auth) -> None:
    fd.enroll("bob", devices=["sms"])
    with pytest.raises(RuntimeError) as exc:
        push(duo, "bob")
    assert getattr(exc.value, "status", None) == 400
    fd.set_preauth("dave", "allow")
    assert duo.auth_status(push(duo, "dave"))["status"] == "bypass"


def test_synchronous_auth_blocks_until_answered(fd: FakeDuo, duo: duo_client.Auth) -> None:
    def approve() -> None:
        fd.answer_push(fd.wait_for_push(timeout=5).txid, "allow")

    approver = threading.Thread(target=approve)
    approver.start()
    result = duo.auth(factor="push", username="alice", device="auto")
    approver.join()
    assert result["result"] == "allow"


def test_auth_status_long_polls_for_the_next_update(fd: FakeDuo, duo: duo_client.Auth) -> None:
    # Duo: "if no status update is available ... it will wait until there is an update".
    # "At once" is judged against a hold long enough that a loaded machine cannot blur the two.
    hold = 2.0
    fd.status_delay = hold
    txid = push(duo)
    started = time.monotonic()
    assert duo.auth_status(txid)["status"] == "pushed"  # the first status is news: at once
    assert time.monotonic() - started < hold / 2
    started = time.monotonic()
    assert duo.auth_status(txid)["waiting"]  # nothing new: held for the whole hold
    assert time.monotonic() - started >= hold
    threading.Timer(0.05, fd.answer_push, (txid, "allow")).start()
    started = time.monotonic()
    assert duo.auth_status(txid)["success"]  # the answer ends the hold
    assert time.monotonic() - started < hold / 2
    started = time.monotonic()
    assert duo.auth_status(txid)["success"]  # a final status is never held
    assert time.monotonic() - started < hold / 2


def test_by_default_the_hold_lasts_until_the_push_times_out(
    fd: FakeDuo, duo: duo_client.Auth
) -> None:
    fd.push_timeout = 0.4  # Duo's is 60 s
    pushed = time.monotonic()  # the timeout runs from the push, however slow the first poll
    txid = push(duo)
    duo.auth_status(txid)
    status = duo.auth_status(txid)
    assert time.monotonic() - pushed >= 0.39
    assert not status["success"] and not status["waiting"] and status["status"] == "timeout"


def test_push_timeout_without_polling(fd: FakeDuo, duo: duo_client.Auth) -> None:
    fd.push_timeout = 0.1
    txid = push(duo)
    time.sleep(0.15)
    status = duo.auth_status(txid)
    assert not status["success"] and status["status"] == "timeout"


def raw_status(duo: duo_client.Auth, txid: str) -> Any:
    """Duo's own reply (duo_client.auth_status drops ``result``)."""
    return duo.json_api_call("GET", "/auth/v2/auth_status", {"txid": txid})


@pytest.mark.parametrize(
    ("answer", "result"),
    [("fraud", "deny"), ("locked_out", "deny"), ("deny", "deny"), ("allow", "allow"),
     ("bypass", "allow"), ("timeout", "deny")],
)  # fmt: skip
def test_final_answers_carry_duos_result_and_status(
    fd: FakeDuo, duo: duo_client.Auth, answer: str, result: str
) -> None:
    txid = push(duo)
    fd.answer_push(txid, answer)
    reply = raw_status(duo, txid)
    assert (reply["result"], reply["status"]) == (result, answer)
    assert reply["status_msg"]
    assert fd.pending_pushes() == []
    with pytest.raises(ValueError):
        fd.answer_push(txid, "allow")  # answered once and for all


def test_the_user_reports_a_push_as_fraud(fd: FakeDuo, duo: duo_client.Auth) -> None:
    fd.next_push_response("alice", "fraud")
    status = duo.auth_status(push(duo))
    assert not status["success"] and not status["waiting"] and status["status"] == "fraud"


def test_a_failed_push_still_waits_for_the_user(fd: FakeDuo, duo: duo_client.Auth) -> None:
    txid = push(duo)
    raw_status(duo, txid)
    fd.answer_push(txid, "push_failed")  # the notification did not arrive; the app still can
    reply = raw_status(duo, txid)
    assert (reply["result"], reply["status"]) == ("waiting", "push_failed")
    assert [p.txid for p in fd.pending_pushes()] == [txid]
    fd.answer_push(txid, "allow")
    assert raw_status(duo, txid)["result"] == "allow"


def test_unknown_answers_are_refused(fd: FakeDuo, duo: duo_client.Auth) -> None:
    txid = push(duo)
    for bad in ("pushed", "approve", "waiting"):
        with pytest.raises(ValueError):
            fd.answer_push(txid, bad)
    with pytest.raises(ValueError):
        fd.next_push_response("alice", "approve")


def test_stop_releases_a_held_auth_status() -> None:
    fake = FakeDuo(ikey=IKEY, skey=SKEY).start()
    fake.enroll("alice")
    client = auth_client(fake)
    txid = push(client)
    client.auth_status(txid)
    outcome: dict[str, Any] = {}

    def held() -> None:
        outcome["status"] = client.auth_status(txid)

    worker = threading.Thread(target=held)
    worker.start()
    time.sleep(0.2)
    assert worker.is_alive()  # held: the push is still waiting, for up to a minute
    fake.stop()
    worker.join(timeout=5)
    assert not worker.is_alive()


def test_wrong_credentials_are_rejected(fd: FakeDuo) -> None:
    with pytest.raises(RuntimeError) as exc:
        auth_client(fd, skey="x" * 40).preauth(username="alice")
    assert getattr(exc.value, "status", None) == 401
    assert "Invalid signature" in str(exc.value)
    assert fd.requests[-1].signature_ok is False
    with pytest.raises(RuntimeError) as exc:
        auth_client(fd, ikey="DIWRONGWRONGWRONGWRO").check()
    assert getattr(exc.value, "status", None) == 401
    assert duo_client.Auth(IKEY, SKEY, host=fd.host, port=fd.port, ca_certs=fd.ca_path).ping()


def test_older_signature_versions(fd: FakeDuo) -> None:
    import hashlib

    for client in (
        auth_client(fd, sig_version=2),
        auth_client(fd, sig_version=2, digestmod=hashlib.sha1),
        auth_client(fd, sig_version=4),
    ):
        assert client.preauth(username="alice")["result"] == "auth"
        assert client.check()["time"] > 0
    assert [r.sig_version for r in fd.requests] == [2, 2, 2, 2, 4, 4]


def test_host_port_string_does_not_connect(fd: FakeDuo) -> None:
    with pytest.raises(OSError):
        duo_client.Auth(IKEY, SKEY, host=fd.api_host, ca_certs=fd.ca_path, timeout=5).check()


def raw_request(fd: FakeDuo, signed_host: str, date: str | None = None) -> tuple[int, Any]:
    date = date or email.utils.formatdate()
    auth = duo_sign(IKEY, SKEY, "GET", signed_host, "/auth/v2/check", date, 2, {})
    context = ssl.create_default_context(cafile=fd.ca_path)
    conn = http.client.HTTPSConnection(fd.host, fd.port, context=context, timeout=5)
    try:
        conn.request("GET", "/auth/v2/check?", headers={"Authorization": auth, "Date": date})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_signature_covers_host_without_port_and_fresh_date(fd: FakeDuo) -> None:
    assert raw_request(fd, "LOCALHOST")[0] == 200
    status, body = raw_request(fd, fd.api_host)
    assert (status, body["code"]) == (401, 40103)
    stale = email.utils.formatdate(time.time() - 3600)
    status, body = raw_request(fd, "localhost", date=stale)
    assert (status, body["stat"]) == (401, "FAIL")


def test_fail_all(fd: FakeDuo, duo: duo_client.Auth) -> None:
    fd.fail_all(500)
    with pytest.raises(RuntimeError) as exc:
        duo.preauth(username="alice")
    assert getattr(exc.value, "status", None) == 500
    fd.fail_all(None)
    assert duo.preauth(username="alice")["result"] == "auth"


def test_stop_releases_a_blocked_synchronous_auth() -> None:
    fake = FakeDuo(ikey=IKEY, skey=SKEY).start()
    fake.enroll("alice")
    client = auth_client(fake)
    outcome: dict[str, Any] = {}

    def blocked() -> None:
        outcome["result"] = client.auth(factor="push", username="alice", device="auto")

    worker = threading.Thread(target=blocked)
    worker.start()
    fake.wait_for_push(timeout=5)
    fake.stop()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert outcome["result"]["status"] == "timeout"


def _until(check: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not check():
        time.sleep(0.01)
    return bool(check())


@pytest.mark.parametrize("notice_drops", [None, 0.02])
def test_a_held_poll_whose_client_hung_up_spends_no_answer(
    fd: FakeDuo, duo: duo_client.Auth, notice_drops: float | None
) -> None:
    """A client that closes its long-poll connection is answered nothing: the push's news stays
    for its next poll. By default the hold finds out when it ends (the answer arrives), like a
    real server; with ``notice_drops`` it looks while it holds, too."""
    fd.notice_drops = notice_drops
    txid = push(duo)
    assert duo.auth_status(txid)["status"] == "pushed"
    uri, headers, _ = signed_request(IKEY, SKEY, fd.host, "GET", "/auth/v2/auth_status",
                                     {"txid": txid})  # fmt: skip
    held = http.client.HTTPSConnection(
        fd.host, fd.port, context=ssl.create_default_context(cafile=fd.ca_path)
    )
    held.request("GET", uri, headers=headers)
    [pending] = fd.started_pushes()
    assert _until(lambda: pending.held == 1)
    held.close()  # hung up while Duo holds the poll
    if notice_drops is not None:
        assert _until(lambda: fd.dropped == [txid] and not pending.held)
    fd.answer_push(txid, "allow")
    assert _until(lambda: not pending.held)
    assert fd.dropped == [txid] and pending.answered_at is None
    assert duo.auth_status(txid)["status"] == "allow"  # the next poll reads the answer
    assert pending.answered_at is not None
