"""Issue 14 item 3: the Tor exit list is downloaded, validated, swapped in and reaches a running
server; a bad download is refused and the previous list stays. A local HTTP server plays
check.torproject.org (its torbulkexitlist is plain text, one IP per line)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from securitybot.aer.reference_data import DEFAULT_TOR_PATH
from securitybot.cli import main
from securitybot.demo import FakeDuo, FakeSlack
from tests.aer_e2e.conftest import QUIET, MakeBot, aer_config, post_events
from tests.e2e.harness import e2e_config, wait_until

# 200 exits in the documentation ranges (RFC 5737): like the real list, none of them real traffic.
EXITS = [f"203.0.113.{i}" for i in range(1, 101)] + [f"198.51.100.{i}" for i in range(101, 201)]
NEW_EXIT = "203.0.113.50"  # not in the example list the server starts with


class TorSite:
    def __init__(self) -> None:
        self.body, self.status, self.requests = "", 200, 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server calls it by this name
                site.requests += 1
                data = site.body.encode()
                self.send_response(site.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/torbulkexitlist"


@pytest.fixture
def tor_site() -> Iterator[TorSite]:
    site = TorSite()
    thread = threading.Thread(target=site.httpd.serve_forever, daemon=True)
    thread.start()
    yield site
    site.httpd.shutdown()
    site.httpd.server_close()


def _update(tmp: Path, db_url: str, fs: FakeSlack, fd: FakeDuo, url: str) -> tuple[int, str]:
    path = tmp / "config.yaml"
    cfg = e2e_config(db_url, fs, fd, aer=aer_config(tor_list_url=url))
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(main, ["aer", "update-tor-list", "--config", str(path)])
    return result.exit_code, result.output


def _flags_tor(bot: object, ip: str, session: str) -> bool:
    event = {"org": QUIET, "user": "UBOB", "action": "login", "ip": ip, "session": session}
    out = post_events(bot, [event])  # type: ignore[arg-type]
    return bool(out["anomalies"] == 1)


def test_update_tor_list_reaches_the_running_server_and_a_bad_download_is_refused(
    make_bot: MakeBot, tor_site: TorSite, db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    bot = make_bot(sync_interval="1s")
    assert not _flags_tor(bot, NEW_EXIT, "S0")
    tor_site.body = "\n".join(EXITS) + "\n"
    code, output = _update(tmp_path, db_url, fs, fd, tor_site.url)
    assert code == 0, output
    assert "stored 200 Tor exits (+200 -0" in output
    version = output.rsplit("version ", 1)[1].split(")")[0]
    # The same list again changes nothing, so no process is told to reload it.
    code, output = _update(tmp_path, db_url, fs, fd, tor_site.url)
    assert code == 0 and f"(+0 -0, version {version})" in output, output
    sessions = iter(f"S{i}" for i in range(1, 1000))
    wait_until(lambda: _flags_tor(bot, NEW_EXIT, next(sessions)), timeout=10,
               what="the running server flagging an exit from the new list")  # fmt: skip

    # A captive portal, an error, a truncated list: each refused, the 200 exits stay.
    for body, status, why in (
        ("<html><body>Sign in to the Wi-Fi</body></html>", 200, "is not an IP address"),
        ("\n".join(EXITS[:5]), 200, "5 addresses; expected between 100"),
        ("\n".join(EXITS), 503, "HTTP 503"),
    ):
        tor_site.body, tor_site.status = body, status
        code, output = _update(tmp_path, db_url, fs, fd, tor_site.url)
        assert code == 1 and "refused" in output and why in output, output
    assert _flags_tor(bot, "198.51.100.150", next(sessions))


def test_the_shipped_list_flags_nothing(make_bot: MakeBot) -> None:
    bot = make_bot(tor_list=str(DEFAULT_TOR_PATH))
    assert not _flags_tor(bot, "198.51.100.7", "S1")  # in the example list, not the shipped one


def test_the_scheduler_keeps_the_list_current(make_bot: MakeBot, tor_site: TorSite) -> None:
    tor_site.body = "\n".join(EXITS)
    bot = make_bot(tor_list_url=tor_site.url, tor_list_refresh_interval="1s", sync_interval="1s")
    sessions = iter(f"S{i}" for i in range(1000))
    wait_until(lambda: _flags_tor(bot, NEW_EXIT, next(sessions)), timeout=15,
               what="the scheduled download reaching detection")  # fmt: skip


def test_a_refresh_interval_of_zero_turns_the_scheduled_download_off(
    make_bot: MakeBot, tor_site: TorSite
) -> None:
    # config.yaml and docs/scaling.md document 0 as "off"; it used to be refused at start-up.
    tor_site.body = "\n".join(EXITS)
    # sync_interval is its neighbour, documented as "0 turns the check off".
    bot = make_bot(tor_list_url=tor_site.url, tor_list_refresh_interval=0, sync_interval="0s")
    time.sleep(2.5)  # a 1 s schedule would have fetched twice by now
    assert tor_site.requests == 0
    assert not _flags_tor(bot, NEW_EXIT, "S1")
