"""Issue 14 item 2: baselines learned by the CLI reach a running server within seconds."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from securitybot.cli import main
from securitybot.demo import FakeDuo, FakeSlack
from tests.aer_e2e.conftest import BUSY, QUIET, MakeBot, aer_config, burst, history, post_events
from tests.e2e.harness import Bot, e2e_config, wait_until


def _cli_refresh(tmp: Path, db_url: str, fs: FakeSlack, fd: FakeDuo) -> str:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(e2e_config(db_url, fs, fd, aer=aer_config())))
    result = CliRunner().invoke(main, ["aer", "refresh-baselines", "--config", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def _backfill(bot: Bot) -> None:
    for org, per_hour in ((QUIET, range(1, 6)), (BUSY, range(350, 450))):
        out = post_events(bot, history(org, per_hour, users=10))
        assert out["anomalies"] == 0 and out["history"] == out["accepted"]


def test_a_cli_refresh_reaches_the_running_server_without_a_restart(
    make_bot: MakeBot, db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    # A long poll interval: on PostgreSQL the NOTIFY must do it; on SQLite the 1 s poll does.
    interval = "60s" if db_url.startswith("postgresql") else "1s"
    bot = make_bot(sync_interval=interval)
    _backfill(bot)
    # Before the refresh the server holds the cold-start default: 300 in five minutes is fine.
    assert post_events(bot, burst(QUIET, "UALICE", 300, session="SA"))["anomalies"] == 0
    assert "refreshed 2 baselines, 2 changed" in _cli_refresh(tmp_path, db_url, fs, fd)
    started = time.monotonic()
    users = (f"UQ{i}" for i in itertools.count())  # each try a fresh user: no hour adds up

    def flagged() -> bool:
        out = post_events(bot, burst(QUIET, next(users), 300, session="SB"))
        return bool(out["anomalies"] == 1)

    wait_until(flagged, timeout=10, what="the quiet org's learned threshold in the server")
    print(f"picked up after {time.monotonic() - started:.2f}s")
    assert post_events(bot, burst(BUSY, "UCAROL", 300, session="SC"))["anomalies"] == 0
    # Nothing new to learn: no version bump, so no replica reloads for nothing.
    assert "refreshed 2 baselines, 0 changed" in _cli_refresh(tmp_path, db_url, fs, fd)
