"""Issue 24 item 7: NATS credentials (user/password, token, NKey seed, .creds) and TLS (CA, client
certificate) against a nats-server of the test's own that requires them; without them the
publisher answers 503 and nothing connects. `serve` and `aer worker` warn at start, in one
line, when the stream has no credentials."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from securitybot.aer.events import ActivityEvent
from securitybot.aer.natsconn import connect
from securitybot.aer.stream import StreamPublisher, StreamUnavailable, ensure_stream
from securitybot.cli import main
from securitybot.config import AerStream, load_config
from securitybot.demo import FakeDuo, FakeSlack
from securitybot.store.models import utcnow
from tests.aer_e2e.conftest import EVENTS_AUTH, QUIET, MakeBot, aer_config
from tests.aer_stream.conftest import running_worker, stream_config
from tests.aer_stream.natsd import NatsServer
from tests.aer_stream.natsjwt import operator_setup
from tests.e2e.harness import e2e_config, e2e_settings


def _nkey() -> tuple[str, str]:
    """A fresh NKey user: (seed, public key), as `nsc` or `nk -gen user` would make."""
    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(bytearray(seed)).public_key.decode()


def _tls(tmp: Path) -> tuple[str, dict[str, str]]:
    """A server that requires a client certificate from its CA (trustme), and the client's."""
    import trustme

    ca = trustme.CA()
    server, client = ca.issue_cert("127.0.0.1", "localhost"), ca.issue_cert("aer-publisher")
    files = {"ca": tmp / "ca.pem", "srv": tmp / "server.pem", "srvkey": tmp / "server.key",
             "cert": tmp / "client.pem", "key": tmp / "client.key"}  # fmt: skip
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["srv"]))
    server.private_key_pem.write_to_path(str(files["srvkey"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    conf = (f'tls {{ cert_file: "{files["srv"]}", key_file: "{files["srvkey"]}", '
            f'ca_file: "{files["ca"]}", verify: true, timeout: 2 }}\n')  # fmt: skip
    return conf, {"ca": str(files["ca"]), "cert": str(files["cert"]), "key": str(files["key"])}


def _setup(kind: str, tmp: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(server config, the stream settings that get in, stream settings that do not)."""
    if kind == "user/password":
        conf = 'authorization { user: "aer", password: "pass-word-1" }\n'
        return (
            conf,
            {"user": "aer", "password": "pass-word-1"},
            {"user": "aer", "password": "wrong"},
        )
    if kind == "token":
        return ('authorization { token: "s3cr3t-t0ken" }\n', {"token": "s3cr3t-t0ken"},
                {"token": "not-it"})  # fmt: skip
    if kind == "creds (user JWT + seed)":
        conf, good, bad = operator_setup()
        return conf, {"creds": good}, {"creds": bad}
    if kind == "nkey":
        seed, public = _nkey()
        other, _ = _nkey()
        return (f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n',
                {"nkey_seed": seed}, {"nkey_seed": other})  # fmt: skip
    conf, tls = _tls(tmp)
    return conf, {"tls": tls}, {"tls": {"ca": tls["ca"]}}  # no client certificate


KINDS = ["user/password", "token", "nkey", "creds (user JWT + seed)", "tls client certificate"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_stream_connects_with_the_credentials_nats_requires_and_not_without(
    kind: str, tmp_path: Path
) -> None:
    conf, good, bad = _setup(kind, tmp_path)
    natsd = NatsServer(tmp_path, conf).start()
    scheme = "tls" if "tls" in good else "nats"
    try:
        base = stream_config(f"{scheme}://127.0.0.1:{natsd.port}", publish_timeout="2s")
        ev = ActivityEvent(QUIET, "UBOB", utcnow(), "login")

        async def publish(extra: dict[str, Any]) -> int:
            publisher = StreamPublisher(AerStream(**base, **extra))
            try:
                return await publisher.publish([ev])
            finally:
                await publisher.close()

        async def worker_connects(extra: dict[str, Any]) -> None:
            cfg = AerStream(**base, **extra)
            nc = await connect(cfg, reconnect=True)
            await ensure_stream(nc.jetstream(), cfg)
            await nc.close()

        assert asyncio.run(publish(good)) == 1
        asyncio.run(worker_connects(good))
        for refused in (bad, {}):
            with pytest.raises(StreamUnavailable):
                asyncio.run(publish(refused))
    finally:
        natsd.stop()


def test_serve_and_the_worker_warn_once_without_credentials(
    make_bot: MakeBot, nats_url: str, db_url: str, fs: FakeSlack, fd: FakeDuo,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    cfg = stream_config(nats_url)
    with caplog.at_level(logging.WARNING):
        make_bot(stream=cfg)
        with running_worker(e2e_settings(db_url, fs, fd, aer=aer_config(stream=cfg)), db_url):
            pass
    warned = [r.getMessage() for r in caplog.records if "without credentials" in r.getMessage()]
    assert len(warned) == 2
    assert warned[0].startswith("serve: ") and warned[1].startswith("aer worker: ")
    assert all("\n" not in w for w in warned)


def test_no_warning_with_credentials_and_the_api_publishes_through_them(
    make_bot: MakeBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf, good, _ = _setup("token", tmp_path)
    natsd = NatsServer(tmp_path, conf).start()
    try:
        with caplog.at_level(logging.WARNING):
            bot = make_bot(stream=stream_config(natsd.url, **good))
        event = {"org": QUIET, "user": "UBOB", "action": "login"}
        assert bot.http.post("/api/v1/events", json=[event], headers=EVENTS_AUTH).status_code == 202
        assert not [r for r in caplog.records if "without credentials" in r.getMessage()]
    finally:
        natsd.stop()


def test_stream_secrets_come_from_files_and_never_show(
    tmp_path: Path, db_url: str, fs: FakeSlack, fd: FakeDuo, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "k" * 40
    (tmp_path / "signing").write_text(key + "\n")
    (tmp_path / "password").write_text("pass-word-1\n")
    stream = {"url": "nats://aer:url-pass-9@127.0.0.1:4222", "user": "aer"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(e2e_config(db_url, fs, fd, aer=aer_config(stream=stream))))
    monkeypatch.setenv("SECURITYBOT_AER__STREAM__SIGNING_KEY_FILE", str(tmp_path / "signing"))
    monkeypatch.setenv("SECURITYBOT_AER__STREAM__PASSWORD_FILE", str(tmp_path / "password"))
    cfg = load_config(path).aer.stream
    assert cfg is not None and cfg.signing_key is not None and cfg.password is not None
    assert (cfg.signing_key.get_secret_value(), cfg.password.get_secret_value()) == (
        key, "pass-word-1")  # fmt: skip
    shown = CliRunner().invoke(main, ["check-config", "--config", str(path)])
    assert shown.exit_code == 0, shown.output
    for secret in (key, "pass-word-1", "url-pass-9"):
        assert secret not in shown.output


@pytest.mark.parametrize(
    ("stream", "error"),
    [
        ({}, "aer.stream: signing_key is required"),
        ({"signing_key": "short"}, "signing_key must be at least 32 characters"),
        ({"token": "t", "user": "u", "password": "p"}, "one kind of NATS credentials"),
        ({"user": "u"}, "user and password go together"),
        (
            {"tls": {"cert": "/nonexistent.pem", "key": "/nonexistent.key"}},
            "is not a readable file",
        ),
    ],
)
def test_a_stream_without_a_signing_key_or_with_muddled_credentials_does_not_start(
    tmp_path: Path, stream: dict[str, Any], error: str
) -> None:
    cfg = {"signing_key": "s" * 32} | stream if "signing_key" not in stream and stream else stream
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"aer": {"enabled": True, "stream": cfg}}))
    shown = CliRunner().invoke(main, ["check-config", "--config", str(path)])
    assert shown.exit_code != 0
    assert error in shown.output
