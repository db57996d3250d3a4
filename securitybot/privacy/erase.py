"""Erasure of one person (``securitybot erase-person``, ``POST /api/v1/people/erase``).

Every table is listed in :data:`TABLES`, with what identifies a person in it and what erasure
does there; a test fails when a new table is not listed. Rows that are facts about the
service (alerts, anomalies and their decisions, audit rows, AER counters) stay, so counts and
dashboards stay right, with the person replaced by a random pseudonym (the same one across
tables within one erasure, so "one person had 5 alerts" survives, and never derived from the
email, so it cannot be reversed); free text and JSON that name them are scrubbed; caches,
sessions and per-user state are deleted. All in one transaction: nothing half-erased.
An erasure is refused while the person has an open alert or is under ``retention.hold``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    String,
    Table,
    Text,
    cast,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from securitybot.config import RetentionConfig
from securitybot.privacy.identities import Identities, resolve
from securitybot.privacy.retention import FINISHED
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Base
from securitybot.store.slack_installations import METADATA as SLACK_OAUTH

ACTION = "person_erased"


@dataclass(frozen=True)
class Spec:
    """How erasure treats one table.

    ``people``: columns naming someone exactly (an email or Slack id): the person becomes the
    pseudonym. ``clear``: columns emptied on the person's rows. ``texts``: free text and JSON
    scrubbed of every name of the person, on any row. ``delete_if``: columns that, naming the
    person, make the whole row go (caches, sessions, per-user state). ``delete_if_mentioned``:
    rows whose ``texts`` mention the person go (signed messages cannot be edited). ``merge``:
    a counter keyed by the person, summed under the pseudonym. ``why``: for tables without
    personal data, the reason."""

    people: tuple[str, ...] = ()
    clear: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    delete_if: tuple[str, ...] = ()
    delete_if_mentioned: bool = False
    merge: str | None = None
    # A column holding an alert id: rows about the person's alerts are the person's rows too,
    # and lose what the person wrote (WORDS) from their JSON.
    alert: str | None = None
    why: str = ""


# JSON keys holding what the person typed (their comment, the text of a DM reply).
WORDS = frozenset({"comment", "user_comment", "text", "previous_text"})


NONE = "no personal data"

TABLES: dict[str, Spec] = {
    "alerts": Spec(people=("user_given", "user_id", "claimed_by"),
                   clear=("user_name", "user_comment", "dm_channel", "dm_ts", "duo_txid"),
                   texts=("title", "description", "details", "dedup_key")),
    "audit_log": Spec(people=("actor", "subject_user"), texts=("details",), alert="alert_id"),
    "outbox": Spec(texts=("payload", "last_error", "idempotency_key"), alert="alert_id"),
    "exemptions": Spec(people=("created_by",), delete_if=("user",), texts=("reason",)),
    "snoozes": Spec(people=("revoked_by",), delete_if=("user_id",), texts=("scope", "scope_key")),
    "suppression_rules": Spec(people=("created_by", "revoked_by"), texts=("matchers", "reason")),
    "slack_people": Spec(delete_if=("key",), texts=("user",), delete_if_mentioned=True),
    "slack_receipts": Spec(why="Slack event and click ids, pruned within minutes"),
    "seen_signatures": Spec(why="digests of request signatures, pruned within minutes"),
    "aer_counters": Spec(merge="count"),
    "aer_baselines": Spec(why="per-org statistics"),
    "aer_profiles": Spec(delete_if=("user_id",)),
    "aer_user_state": Spec(delete_if=("user_id",)),
    "aer_sessions": Spec(delete_if=("user_id",)),
    "aer_anomalies": Spec(people=("user_id",), clear=("session_id", "ip", "user_agent"),
                          texts=("details", "reason", "observed", "threshold", "source_ref")),
    "aer_notifications": Spec(people=("user_id", "recipient"), clear=("channel", "ts"),
                              texts=("last_reason", "last_reason_i18n")),
    "aer_settings_snapshots": Spec(texts=("settings",)),
    "aer_poller_state": Spec(why="a vendor's paging cursor"),
    "aer_versions": Spec(why="version numbers"),
    "aer_threat_lists": Spec(why="Tor exit addresses"),
    "aer_partitions": Spec(why="stream partition leases"),
    "aer_workers": Spec(why="worker names"),
    "aer_dead_letters": Spec(texts=("subject", "detail", "headers", "data"),
                             delete_if_mentioned=True),
    "aer_reset_budgets": Spec(why="per-org budget bookkeeping"),
    "aer_reset_grants": Spec(why="per-org budget bookkeeping (org, anomaly id, time)"),
    "aer_held_batches": Spec(people=("resolved_by",), clear=()),
    "aer_held_resets": Spec(people=("user_id",), texts=("payload",)),
    "login_attempts": Spec(texts=("key",), delete_if_mentioned=True),
    "dashboard_sessions": Spec(delete_if=("username", "subject", "email")),
    "osquery_nodes": Spec(texts=("host_identifier",)),
    # Who acknowledged a page is the pager's name or email for them: scrubbed as text.
    "pages": Spec(texts=("group_key", "acknowledged_by", "resolved_by")),
    "paged_alerts": Spec(why="alert ids and paging dedup keys"),
    "pagerduty_webhooks": Spec(why="PagerDuty event ids, pruned"),
    "job_leases": Spec(why="job names and replica host names"),
    "storm_keys": Spec(why="detection keys (kind:source) and when they were last locked"),
    # Who was DMed or held in a storm: the pseudonym keeps "distinct people" counts right.
    "storm_dms": Spec(people=("user_id",)),
    "storm_alerts": Spec(people=("user_id",)),
    "storms": Spec(people=("resolved_by",)),
    # slack_sdk's installation store (slack.oauth): who installed the app in a workspace (and
    # their user token, when user scopes were asked for) is theirs; the bot is the workspace's.
    "slack_installations": Spec(people=("user_id",),
                                clear=("user_token", "user_refresh_token", "user_scopes")),
    "slack_bots": Spec(why="a workspace's bot token and ids"),
    "slack_oauth_states": Spec(why="one-time OAuth states, expired within minutes"),
}  # fmt: skip


def all_tables() -> dict[str, Table]:
    """Our tables and slack_sdk's installation and state stores' (store/slack_installations)."""
    return {**Base.metadata.tables, **SLACK_OAUTH.tables}


class EraseRefused(Exception):
    """The person cannot be erased now; ``reason`` says why (a 409 for the API)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Erasure:
    pseudonym: str
    rows: dict[str, int] = field(default_factory=dict)  # per table: rows changed or deleted
    # The Slack ids erased, for in-memory caches to drop (never stored, never logged).
    forgotten: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class _Scrubber:
    """Replaces every name of the person in a string (whole words, any case) or JSON value."""

    def __init__(self, ids: Identities, pseudonym: str) -> None:
        texts = sorted(ids.texts | ids.keys, key=len, reverse=True)
        self.needles = [t.lower() for t in texts]
        # JSON escapes non-ASCII (and quotes): the stored text of a name may be its escape.
        self.like = sorted({n for t in self.needles for n in (t, json.dumps(t)[1:-1])})
        alternatives = "|".join(re.escape(t) for t in texts)
        # Whole words: "alice-laptop" loses "alice", "malice" keeps it.
        self.rx = re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])", re.IGNORECASE)
        self.pseudonym = pseudonym

    def text(self, value: str) -> str:
        return self.rx.sub(self.pseudonym, value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace")).encode()
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        return value

    def mentions(self, value: Any) -> bool:
        return bool(self.value(value) != value)


def _without_words(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_words(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_words(v) for k, v in value.items() if k not in WORDS}
    return value


def _mentioned(table: Table, columns: Iterable[str], scrub: _Scrubber) -> ColumnElement[bool]:
    """A cheap SQL prefilter (substring, any case); the scrubber decides on whole words."""
    terms: list[ColumnElement[bool]] = []
    for name in columns:
        col: Column[Any] = table.c[name]
        if col.type.python_type is bytes:
            continue  # binary: looked at in Python (see the caller)
        as_text = cast(col, Text) if not isinstance(col.type, String) else col
        terms += [func.lower(as_text).contains(n, autoescape=True) for n in scrub.like]
    return or_(*terms) if terms else false()


def _binary(table: Table, spec: Spec) -> bool:
    return any(table.c[c].type.python_type is bytes for c in spec.texts)


def _erase_table(session: Session, table: Table, spec: Spec, ids: Identities,
                 scrub: _Scrubber, alert_ids: list[int]) -> int:  # fmt: skip
    if spec.why:
        return 0
    keys = sorted(ids.keys)
    pk = list(table.primary_key.columns)
    changed = 0
    if spec.merge:
        return _merge(session, table, spec.merge, keys, scrub.pseudonym)
    if spec.delete_if:
        where = or_(*(table.c[c].in_(keys) for c in spec.delete_if))
        if table.name == "slack_people":  # keyed by email in any case the caller gave
            where = or_(where, func.lower(table.c.key).in_(keys))
        changed += _rows(session.execute(delete(table).where(where)))
    about = [table.c[c].in_(keys) for c in spec.people]
    if spec.alert is not None and alert_ids:
        about.append(table.c[spec.alert].in_(alert_ids))
    cond = or_(*about, _mentioned(table, spec.texts, scrub)) if not _binary(table, spec) else None
    rows = session.execute(select(table).where(cond) if cond is not None else select(table))
    for row in rows.mappings().all():
        values: dict[str, Any] = {}
        is_about = spec.alert is not None and row[spec.alert] in alert_ids
        for c in spec.people:
            if row[c] is not None and row[c] in ids.keys:
                values[c] = scrub.pseudonym
                is_about = True
        mentioned = False
        for c in spec.texts:
            if row[c] is None:
                continue
            new = scrub.value(row[c])
            if is_about and isinstance(new, dict | list):
                new = _without_words(new)
            if new != row[c]:
                values[c] = new
                mentioned = mentioned or scrub.mentions(row[c])
        match = [col == row[col.name] for col in pk]
        if spec.delete_if_mentioned and mentioned:
            session.execute(delete(table).where(*match))
            changed += 1
            continue
        if is_about:
            values.update({c: None for c in spec.clear if row[c] is not None})
        if values:
            session.execute(update(table).where(*match).values(**values))
            changed += 1
    return changed


def _merge(session: Session, table: Table, column: str, keys: list[str], pseudonym: str) -> int:
    """A counter keyed by user: the person's rows summed into rows keyed by the pseudonym."""
    rows = session.execute(select(table).where(table.c.user_id.in_(keys))).mappings().all()
    if not rows:
        return 0
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    pk = [c.name for c in table.primary_key.columns]
    for row in rows:
        new = {**row, "user_id": pseudonym}
        key = tuple(new[c] for c in pk)
        if key in merged:
            merged[key][column] += row[column]
        else:
            merged[key] = new
    session.execute(delete(table).where(table.c.user_id.in_(keys)))
    session.execute(insert(table), list(merged.values()))
    return len(rows)


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def check_erasable(session: Session, ids: Identities, hold: RetentionConfig | None) -> None:
    keys = sorted(ids.keys)
    open_alerts = session.scalar(
        select(func.count()).select_from(Alert)
        .where(or_(Alert.user_given.in_(keys), Alert.user_id.in_(keys)),
               Alert.status.not_in(sorted(FINISHED)))
    )  # fmt: skip
    if open_alerts:
        raise EraseRefused(f"the person has {open_alerts} open alert(s): finish them first")
    if hold is not None:
        held = {p.lower() if "@" in p else p for p in hold.hold.people}
        if held & ids.keys:
            raise EraseRefused("the person is under a legal hold (retention.hold.people)")


def erase_person(db: Database, email: str, *, actor: str, via: str,
                 retention: RetentionConfig | None = None) -> Erasure:  # fmt: skip
    """Erase ``email`` everywhere; the audit row says who did it and how many rows, not whom."""
    with db.write() as session:
        ids = resolve(session, email)
        check_erasable(session, ids, retention)
        erasure = Erasure(
            pseudonym=f"erased-{secrets.token_hex(5)}",
            forgotten=sorted(k for k in ids.keys if "@" not in k),
        )
        scrub = _Scrubber(ids, erasure.pseudonym)
        keys = sorted(ids.keys)
        alert_ids = list(session.scalars(
            select(Alert.id).where(or_(Alert.user_given.in_(keys), Alert.user_id.in_(keys)))
        ))  # fmt: skip
        for name, table in all_tables().items():
            n = _erase_table(session, table, TABLES[name], ids, scrub, alert_ids)
            if n:
                erasure.rows[name] = n
        session.add(AuditLog(actor=actor, action=ACTION, details={
            "pseudonym": erasure.pseudonym, "rows": erasure.rows, "via": via,
        }))  # fmt: skip
    return erasure


def untracked_tables() -> set[str]:
    """Tables with no erasure rule (a new table must say what it keeps about people)."""
    return set(all_tables()) ^ set(TABLES)
