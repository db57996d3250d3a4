"""``securitybot export``: complete, in order, stable while alerts are written and changed,
one page in memory at a time, as JSON lines or CSV, on both stores."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from pathlib import Path

import yaml
from click.testing import CliRunner
from sqlalchemy import event, update

from securitybot.cli import main
from securitybot.privacy.export import records, write
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, utcnow
from tests.privacy.seed import DAY, ago, alert


def test_alerts_in_the_range_with_their_timelines_then_the_audit_log(db: Database) -> None:
    before = alert(db, age_days=40)
    inside = [alert(db, age_days=d, audit=2) for d in (30, 20, 10)]
    alert(db, age_days=1)
    with db.write() as s:
        s.add(AuditLog(actor="U0LEAD", action="exemption_added", created_at=ago(15)))
    rows = list(records(db, ago(35), ago(5), audit=True, page=2))
    alerts = [r for r in rows if r["record"] == "alert"]
    assert [r["id"] for r in alerts] == inside
    assert [s["action"] for s in alerts[0]["timeline"]] == ["step0", "step1"]
    audit = [r for r in rows if r["record"] == "audit"]
    # 2 rows per alert in range and the exemption, in id order; none of `before`.
    assert len(audit) == 7 and [r["id"] for r in audit] == sorted(r["id"] for r in audit)
    assert before not in {r["alert_id"] for r in audit}


def test_stable_under_concurrent_writes(db: Database) -> None:
    ids = [alert(db, age_days=10, audit=1, jobs=0) for _ in range(9)]
    it = records(db, ago(30), utcnow() + DAY, page=2)
    got = [next(it)["id"], next(it)["id"], next(it)["id"]]
    # Meanwhile: new alerts arrive, one already exported changes, one not yet exported changes.
    for _ in range(5):
        alert(db, age_days=0, audit=1, jobs=0)
    with db.write() as s:
        s.execute(update(Alert).where(Alert.id.in_([ids[0], ids[7]])).values(status="closed"))
    rest = list(it)
    got += [r["id"] for r in rest]
    assert got == ids  # each once, in order, nothing new
    assert next(r for r in rest if r["id"] == ids[7])["status"] == "closed"


def test_one_page_in_memory_whatever_the_size(db: Database) -> None:
    with db.write() as s:
        s.add_all([Alert(kind="k", severity="low", source="t", user_given=f"u{i}@example.com",
                         title="x" * 200, status="closed", created_at=ago(2),
                         details={"blob": "y" * 500}) for i in range(3000)])  # fmt: skip
    statements: list[str] = []

    def note(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        statements.append(sql)

    event.listen(db.engine, "before_cursor_execute", note)

    def peak(n: int) -> int:
        tracemalloc.start()
        sink = io.StringIO()
        for count, r in enumerate(records(db, ago(3), ago(1), page=100), 1):
            sink.write(json.dumps(r))
            sink.seek(0)
            sink.truncate()  # the output is streamed away, as to a file or a pipe
            if count == n:
                break
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, big = peak(300), peak(3000)
    event.remove(db.engine, "before_cursor_execute", note)
    # Ten times the alerts, not ten times the memory: the same page size is all it holds.
    assert big < small * 2, (small, big)
    assert sum("LIMIT" in s.upper() and "FROM ALERTS" in s.upper() for s in statements) >= 30


def test_cli_jsonl_and_csv(db: Database, db_url: str, tmp_path: Path) -> None:
    a = alert(db, age_days=3, user_comment='quarterly export, "ok"\nthanks')
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"url": db_url}}))
    since = ago(5).date().isoformat()
    out = tmp_path / "a.jsonl"
    r = CliRunner().invoke(main, ["export", "--config", str(cfg), "--since", since, "--until",
                                  utcnow().isoformat(), "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == [a] and len(lines[0]["timeline"]) == 2
    csv_out = tmp_path / "a.csv"
    r = CliRunner().invoke(main, ["export", "--config", str(cfg), "--since", since, "--until",
                                  "2999-01-01", "--format", "csv", "--audit", "-o",
                                  str(csv_out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    with csv_out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [x["record"] for x in rows] == ["alert", "audit", "audit"]
    assert rows[0]["user_comment"] == 'quarterly export, "ok"\nthanks'
    assert [s["action"] for s in json.loads(rows[0]["timeline"])] == ["step0", "step1"]
    bad = CliRunner().invoke(main, ["export", "--config", str(cfg), "--since", "2026-02-01",
                                    "--until", "2026-01-01"])  # fmt: skip
    assert bad.exit_code == 2 and "--since must be before --until" in bad.output


def test_write_counts_what_it_wrote(db: Database) -> None:
    alert(db, age_days=1)
    buf = io.StringIO()
    assert write(buf, records(db, ago(2), utcnow()), "jsonl") == 1
    assert json.loads(buf.getvalue())["record"] == "alert"
