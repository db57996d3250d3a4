"""Erasure of one person on both stores: seeded into every table, nothing identifying remains,
the counts stay, the erasure is audited without naming her, and it is refused while she has an
open alert or a legal hold. A table added without an erasure rule fails here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select
from starlette.testclient import TestClient

from securitybot.cli import main
from securitybot.config import RetentionConfig, Settings
from securitybot.privacy.erase import (
    TABLES,
    EraseRefused,
    all_tables,
    erase_person,
    untracked_tables,
)
from securitybot.store.aer_models import AerAnomaly, AerCounter
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog
from tests.api.conftest import ADMIN_TOKEN, LEAD, TOKEN, serve, team_settings
from tests.privacy.people import BOB, EMAIL, UID, dump, finds, seed


def test_every_table_has_an_erasure_rule() -> None:
    assert untracked_tables() == set(), "say in privacy/erase.py TABLES what each table keeps"
    for name, spec in TABLES.items():
        table = all_tables()[name]
        named = {*spec.people, *spec.clear, *spec.texts, *spec.delete_if}
        assert named <= set(table.c.keys()), name
        assert spec.why or named or spec.merge, f"{name}: a rule or a reason"


def test_seeded_person_leaves_no_trace_and_the_counts_stay(db: Database) -> None:
    ids = seed(db)
    before = dump(db)
    # The seed really puts her everywhere a table can hold a person.
    seeded = {t for t, rows in before.items() if any(finds(r) for r in rows)}
    personal = {t for t, spec in TABLES.items() if not spec.why}
    assert seeded == personal
    with db.read() as s:
        counts = (s.scalar(select(func.count()).select_from(Alert)),
                  s.scalar(select(func.count()).select_from(AerAnomaly)),
                  s.scalar(select(func.sum(AerCounter.count))))  # fmt: skip

    done = erase_person(db, "Alice@Example.com", actor=LEAD, via="test")

    after = dump(db)
    left = {t: [r for r in rows if finds(r)] for t, rows in after.items()}
    assert {t: rows for t, rows in left.items() if rows} == {}
    with db.read() as s:
        assert counts == (s.scalar(select(func.count()).select_from(Alert)),
                          s.scalar(select(func.count()).select_from(AerAnomaly)),
                          s.scalar(select(func.sum(AerCounter.count))))  # fmt: skip
        alice = s.get(Alert, ids["alice"])
        bob = s.get(Alert, ids["bob"])
        assert alice is not None and bob is not None
        assert (alice.user_given, alice.status, alice.outcome) == (
            done.pseudonym,
            "resolved",
            "confirmed",
        )
        assert alice.user_comment is None and alice.dm_channel is None
        assert alice.details == {"host": f"{done.pseudonym}-laptop", "user": done.pseudonym}
        # Bob is untouched but for the responder who claimed his alert.
        assert (bob.user_given, bob.user_id, bob.claimed_by) == (BOB, "U0BOB", done.pseudonym)
        assert bob.description == f"reported by {done.pseudonym}"
        counters = s.execute(select(AerCounter.user_id, AerCounter.count)).all()
        assert sorted(counters) == [("U0BOB", 1), (done.pseudonym, 10)]
        row = s.execute(select(AuditLog).where(AuditLog.action == "person_erased")).scalar_one()
    assert row.actor == LEAD and row.details["pseudonym"] == done.pseudonym
    assert row.details["rows"] == done.rows and not finds(str(row.details))
    assert done.rows["slack_people"] == 2 and done.rows["aer_dead_letters"] == 1


def test_refused_while_an_alert_is_open_or_under_a_legal_hold(db: Database) -> None:
    seed(db)
    with db.write() as s:
        s.add(Alert(kind="k", severity="low", source="siem", user_given=EMAIL, user_id=UID,
                    title="t", status="awaiting_ack"))  # fmt: skip
    with pytest.raises(EraseRefused, match="1 open alert"):
        erase_person(db, EMAIL, actor=LEAD, via="test")
    with db.write() as s:
        s.execute(Alert.__table__.update().where(Alert.status == "awaiting_ack")  # type: ignore[attr-defined]
                  .values(status="closed"))  # fmt: skip
    held = RetentionConfig.model_validate({"hold": {"people": [UID]}})
    with pytest.raises(EraseRefused, match="legal hold"):
        erase_person(db, EMAIL, actor=LEAD, via="test", retention=held)
    assert any(finds(r) for r in dump(db)["alerts"])  # nothing half-erased


def test_cli_erase_person(db: Database, db_url: str, tmp_path: Path) -> None:
    seed(db)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"url": db_url}}))
    out = CliRunner().invoke(main, ["erase-person", "--email", EMAIL, "--config", str(cfg),
                                    "--by", "dpo"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "erased as erased-" in out.output and "alerts: 2" in out.output
    assert not any(finds(r) for rows in dump(db).values() for r in rows)
    bad = CliRunner().invoke(main, ["erase-person", "--email", "nobody", "--config", str(cfg)])
    assert bad.exit_code == 2 and "not an email address" in bad.output


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    settings: Settings = team_settings(db_url)
    yield from serve(settings, db)


def test_api_erase_is_admin_scoped_and_answers_with_the_pseudonym(
    db: Database, client: TestClient
) -> None:
    seed(db)
    body = {"email": EMAIL, "requested_by": LEAD}
    url = "/api/v1/people/erase"
    ingest = client.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ingest.status_code == 403
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.post(url, json={"email": "x", "requested_by": LEAD},
                       headers=admin).status_code == 422  # fmt: skip
    assert client.post(url, json={"email": EMAIL, "requested_by": "U0NOTLEAD"},
                       headers=admin).status_code == 403  # fmt: skip
    assert any(finds(r) for r in dump(db)["alerts"])
    r = client.post(url, json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["pseudonym"].startswith("erased-") and r.json()["rows"]["alerts"] == 2
    assert not any(finds(row) for rows in dump(db).values() for row in rows)
