"""Debian's real Prometheus Alertmanager (and its ``amtool``) delivering to a running server.

Alertmanager authenticates with ``http_config.authorization.credentials_file`` (a bearer token
read from a file), re-sends firing alerts every ``repeat_interval`` and, with ``send_resolved``,
says when they end. A 4xx is "unrecoverable" to it (never retried), so every alert must be taken.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from securitybot.store.models import AuditLog
from tests.children import die_with_parent
from tests.e2e.harness import TOKEN, Bot, free_port, wait_until

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")

if (BINARY is None or AMTOOL is None) and os.environ.get("CI") != "true":
    pytest.skip("prometheus-alertmanager is not installed (.ci/run installs it)",
                allow_module_level=True)  # fmt: skip

CONFIG = """\
route:
  receiver: securitybot
  group_by: [alertname, user]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 500ms
receivers:
  - name: securitybot
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            credentials_file: {token_file}
"""


class Alertmanager:
    def __init__(self, url: str) -> None:
        self.url = url

    def add(self, *labels: str, summary: str, start: datetime, end: datetime | None = None) -> None:
        """``amtool alert add``, as an operator (or a test rule) would fire one by hand."""
        assert AMTOOL is not None
        args = [AMTOOL, f"--alertmanager.url={self.url}", "alert", "add", *labels,
                f"--annotation=summary={summary}", f"--start={start.isoformat()}"]  # fmt: skip
        if end is not None:
            args.append(f"--end={end.isoformat()}")
        subprocess.run(args, check=True, capture_output=True, timeout=20)

    def webhook_deliveries(self) -> int:
        """Successful webhook notifications so far, from Alertmanager's own metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        total = re.search(
            r'^alertmanager_notifications_total\{integration="webhook"\} (\d+)', text, re.M
        )
        failed = re.search(
            r'^alertmanager_notifications_failed_total\{integration="webhook"\} (\d+)', text, re.M
        )
        assert failed is not None and failed.group(1) == "0", "Alertmanager saw a failed delivery"
        return int(total.group(1)) if total else 0


def audit_rows(bot: Bot, action: str) -> list[AuditLog]:
    with bot.db.read() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action)))


@pytest.fixture
def alertmanager(bot: Bot, tmp_path: Path) -> Iterator[Alertmanager]:
    assert BINARY is not None, "prometheus-alertmanager is not installed (.ci/run installs it)"
    token_file = tmp_path / "securitybot-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        CONFIG.format(url=f"{bot.base}/api/v1/alerts/alertmanager", token_file=token_file)
    )
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    proc = subprocess.Popen(
        [BINARY, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
         "--log.level=info"],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 15, "Alertmanager to be ready")
        yield Alertmanager(url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    assert "unrecoverable" not in (tmp_path / "alertmanager.log").read_text()


def test_a_user_label_dms_that_user_once_across_repeats_and_the_end_is_recorded(
    bot: Bot, alertmanager: Alertmanager
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    labels = ("alertname=SensitiveCommand", "user=alice@example.com")
    alertmanager.add(*labels, summary="flurb -export on accountingserver01", start=start)

    dm = wait_until(lambda: bot.dms("UALICE"), what="the DM")[0]
    wait_until(lambda: alertmanager.webhook_deliveries() >= 3, what="repeat notifications")
    assert len(bot.dms("UALICE")) == 1
    assert "flurb -export on accountingserver01" in str(dm.params["blocks"])
    [row] = audit_rows(bot, "alert.ingested")
    alert_id = row.alert_id
    assert bot.alert(alert_id)["status"] == "awaiting_ack"

    alertmanager.add(*labels, summary="flurb -export on accountingserver01", start=start,
                     end=datetime.now(UTC))  # fmt: skip

    [resolved] = wait_until(
        lambda: audit_rows(bot, "alert.source_resolved"), what="the resolved notice"
    )
    assert resolved.alert_id == alert_id and resolved.subject_user == "alice@example.com"
    assert bot.alert(alert_id)["status"] == "awaiting_ack"  # only alice (or the team) ends it
    assert len(bot.dms("UALICE")) == 1


def test_an_alert_without_a_user_label_reaches_the_security_channel(
    bot: Bot, alertmanager: Alertmanager
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    alertmanager.add("alertname=DiskAlmostFull", "instance=db01:9100",
                     summary="Disk /var on db01 is 93% full", start=start)  # fmt: skip

    post = bot.wait_security_post()
    assert "(no_user)" in post.params["text"]
    assert "no user named" in str(post.params["blocks"])
    assert "Disk /var on db01 is 93% full" in str(post.params["blocks"])
    wait_until(lambda: alertmanager.webhook_deliveries() >= 3, what="repeat notifications")
    assert len(bot.security_posts()) == 1
    assert not bot.fs.calls_to("users.lookupByEmail")
