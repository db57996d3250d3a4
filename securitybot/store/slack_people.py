"""Queries of the durable Slack people cache (see ``slack_people_models``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from securitybot.store.slack_people_models import SlackPerson

PEOPLE = cast(Table, SlackPerson.__table__)


def _upsert(session: Session, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(PEOPLE)
    stmt = stmt.on_conflict_do_update(
        index_elements=[PEOPLE.c.key], set_={c: stmt.excluded[c] for c in columns}
    )
    session.connection().execute(stmt, rows)


def load_all(
    session: Session,
) -> tuple[dict[str, tuple[dict[str, Any], datetime]], dict[str, str]]:
    """({key: (user, cached at)}, {user id: DM channel}) of the whole cache."""
    users: dict[str, tuple[dict[str, Any], datetime]] = {}
    dms: dict[str, str] = {}
    for key, data, at, channel in session.execute(
        select(SlackPerson.key, SlackPerson.user, SlackPerson.user_cached_at,
               SlackPerson.dm_channel)
    ):  # fmt: skip
        if data is not None and at is not None:
            users[key] = (data, at)
        if channel:
            dms[key] = channel
    return users, dms


def user(session: Session, key: str) -> tuple[dict[str, Any], datetime] | None:
    row = session.execute(
        select(SlackPerson.user, SlackPerson.user_cached_at).where(SlackPerson.key == key)
    ).first()
    if row is None or row.user is None or row.user_cached_at is None:
        return None
    return row.user, row.user_cached_at


def put_users(session: Session, users: list[tuple[list[str], dict[str, Any], datetime]]) -> None:
    """Several people (each under all its keys) in one statement; the latest entry of a key
    wins."""
    rows = {k: {"key": k, "user": data, "user_cached_at": at}
            for keys, data, at in users for k in keys}  # fmt: skip
    if rows:
        _upsert(session, list(rows.values()), ("user", "user_cached_at"))


def forget_user(session: Session, keys: list[str]) -> None:
    session.execute(delete(SlackPerson).where(SlackPerson.key.in_(keys)))


def dm_channel(session: Session, user_id: str) -> str | None:
    return session.scalar(select(SlackPerson.dm_channel).where(SlackPerson.key == user_id))


def put_dm_channels(session: Session, channels: dict[str, str]) -> None:
    rows = [{"key": user_id, "dm_channel": channel} for user_id, channel in channels.items()]
    if rows:
        _upsert(session, rows, ("dm_channel",))


def forget_dm_channel(session: Session, user_id: str) -> None:
    session.execute(update(SlackPerson).where(SlackPerson.key == user_id).values(dm_channel=None))


def locale(session: Session, user_id: str) -> str | None:
    """The language the security team chose for this person, if any."""
    return session.scalar(select(SlackPerson.locale).where(SlackPerson.key == user_id))


def locales(session: Session, user_ids: list[str]) -> dict[str, str | None]:
    """``locale`` of each of ``user_ids`` in one query (None for nobody's choice)."""
    found: dict[str, str | None] = dict.fromkeys(user_ids)
    rows = session.execute(
        select(SlackPerson.key, SlackPerson.locale).where(SlackPerson.key.in_(user_ids))
    )
    found.update({key: value for key, value in rows})
    return found


def put_locale(session: Session, user_id: str, value: str | None) -> None:
    """Choose (or with None, clear) a person's language; the rest of their row stays."""
    _upsert(session, [{"key": user_id, "locale": value}], ("locale",))
