"""``/securitybot``: responders manage exemptions and snoozes from Slack.

Slack signs the request and names the user in ``user_id``, so unlike an API token the person
acting is proven, and every change is audited with that Slack id. Only responders may change or
list anything; a refusal is answered privately and audited. Nobody can exempt themselves.

Ids carry their kind so ``revoke`` is never ambiguous: ``E12`` is exemption 12, ``S7`` snooze 7
(``revoke exemption 12`` and ``revoke snooze 7`` work too).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from slack_bolt.async_app import AsyncAck, AsyncApp
from sqlalchemy.exc import IntegrityError

from securitybot.config import parse_duration as config_duration
from securitybot.flows import exemptions, snoozes
from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.slack import mrkdwn as md
from securitybot.slack.triage import Responders
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import utcnow

logger = logging.getLogger(__name__)

COMMAND = "/securitybot"
VIA = {"via": "slack_command"}
MAX_REASON = 2000

HELP = f"""*{COMMAND}* (responders only, except `help`):
• `{COMMAND} exempt @user <duration> <reason>`: their alerts go straight to the security \
channel instead of a DM, until the duration (`30m`, `12h`, `7d`, `2w`) has passed
• `{COMMAND} exemptions`: active exemptions, with their ids (`E12`)
• `{COMMAND} snoozes`: active snoozes, with their ids (`S7`)
• `{COMMAND} revoke E12` or `{COMMAND} revoke S7`: end an exemption or a snooze now
Every change is logged with your Slack account. Nobody can exempt themselves."""

NOT_RESPONDER = "Only the security team can use this command. This attempt was logged."


# -- parsing (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Exempt:
    user: str  # a Slack user id
    duration: timedelta
    reason: str


@dataclass(frozen=True)
class ListExemptions:
    pass


@dataclass(frozen=True)
class ListSnoozes:
    pass


@dataclass(frozen=True)
class Revoke:
    what: Literal["exemption", "snooze"]
    item_id: int


@dataclass(frozen=True)
class Invalid:
    message: str


Command = Help | Exempt | ListExemptions | ListSnoozes | Revoke

# With "Escape channels, users, and links" on (should_escape: true in the manifest) Slack sends
# a mention as <@U012AB3CD|name> (or <@U012AB3CD>): api.slack.com/interactivity/slash-commands.
_MENTION_RE = re.compile(r"^<@([UW][A-Z0-9_]{2,30})(?:\|[^>]*)?>$")
_REVOKE_RE = re.compile(r"^(?:([ES])(\d{1,18})|(exemption|snooze)\s+#?(\d{1,18}))$", re.IGNORECASE)


def parse_duration(raw: str) -> timedelta | None:
    """A duration such as ``30m``, ``12h``, ``7d`` or ``2w`` (config's syntax, plus weeks).
    A bare number would mean seconds there, which nobody exempting a person means: a unit is
    required."""
    raw = raw.lower()
    if not raw[-1:].isalpha():
        return None
    weeks = raw.endswith("w")  # config has no weeks; people exempting someone on leave do
    try:
        seconds = config_duration(raw[:-1] + "d" if weeks else raw)
        return timedelta(seconds=seconds * 7 if weeks else seconds)
    except (ValueError, OverflowError):
        return None


def describe(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _parse_user(raw: str) -> str | None:
    m = _MENTION_RE.match(raw)
    if m:
        return m.group(1)
    return raw if SLACK_ID_RE.match(raw) else None


def parse_command(text: str, *, max_exemption: timedelta) -> Command | Invalid:
    """What ``text`` (everything after ``/securitybot``) asks for, or why it can't be done."""
    verb, _, rest = text.strip().partition(" ")
    verb, rest = verb.lower(), rest.strip()
    if verb in ("", "help"):
        return Help()
    if verb == "exemptions" and not rest:
        return ListExemptions()
    if verb == "snoozes" and not rest:
        return ListSnoozes()
    if verb == "revoke":
        m = _REVOKE_RE.match(rest)
        if m is None:
            return Invalid("Usage: `revoke E12` (an exemption) or `revoke S7` (a snooze).")
        prefix, num = (m.group(1), m.group(2)) if m.group(1) else (m.group(3)[0], m.group(4))
        return Revoke("exemption" if prefix.upper() == "E" else "snooze", int(num))
    if verb == "exempt":
        return _parse_exempt(rest, max_exemption)
    return Invalid(f"Unknown command {md.code(verb, 42)}. Try `{COMMAND} help`.")


def _parse_exempt(rest: str, max_exemption: timedelta) -> Exempt | Invalid:
    usage = f"Usage: `{COMMAND} exempt @user <duration> <reason>`, e.g. `exempt @bob 7d on leave`."
    parts = rest.split(None, 2)
    if len(parts) < 3:
        return Invalid(usage)
    who, raw_duration, reason = parts
    user = _parse_user(who)
    if user is None:
        # A plain "@bob" would need users.list to resolve; Slack escapes real mentions for us.
        return Invalid(
            f"Mention the person so Slack links it (pick them from the list after typing `@`); "
            f"{md.code(who, 82)} is not a Slack user mention."
        )
    duration = parse_duration(raw_duration)
    if duration is None:
        return Invalid(f"{md.code(raw_duration, 22)} is not a duration: use 30m, 12h, 7d or 2w.")
    if duration > max_exemption:
        return Invalid(f"Exemptions last at most {describe(max_exemption)}.")
    if len(reason) > MAX_REASON:
        return Invalid(f"The reason is limited to {MAX_REASON} characters.")
    return Exempt(user, duration, reason)


# -- doing it -----------------------------------------------------------------------------------


def _verb(command: Command | Invalid) -> str:
    return {Help: "help", Exempt: "exempt", ListExemptions: "exemptions",
            ListSnoozes: "snoozes", Revoke: "revoke"}.get(type(command), "invalid")  # fmt: skip


def _refuse(db: Database, actor: str, reason: str, command: Command | Invalid) -> None:
    details: dict[str, Any] = {"reason": reason, "command": _verb(command), **VIA}
    subject = command.user if isinstance(command, Exempt) else None
    with db.write() as session:
        alert_store.audit(
            session, actor=actor, action="command.refused", subject_user=subject, details=details
        )


def _when(at: datetime | None) -> str:
    return "no end" if at is None else f"until {at:%Y-%m-%d %H:%M} UTC"


def _exempt(db: Database, cmd: Exempt, actor: str) -> str:
    expires_at = utcnow() + cmd.duration
    try:
        with db.write() as session:
            e = exemptions.create(session, user=cmd.user, reason=cmd.reason, actor=actor,
                                  expires_at=expires_at, via=VIA)  # fmt: skip
            item = e.id
    except IntegrityError:
        return f"{md.user(cmd.user)} is already exempt; see `{COMMAND} exemptions`."
    return (
        f"Exempted {md.user(cmd.user)} {_when(expires_at)} (E{item}): their alerts go straight to "
        f"the security channel. Undo with `{COMMAND} revoke E{item}`."
    )


def _list_exemptions(db: Database) -> str:
    now = utcnow()
    with db.read() as session:
        active = [
            e for e in exemptions.list_all(session) if e.expires_at is None or e.expires_at > now
        ]
        lines = [
            f"• E{e.id} {md.user(e.user)} {_when(e.expires_at)}, by {md.user(e.created_by)}: "
            f"{md.inline(e.reason, 200)}"
            for e in active
        ]
    return "\n".join(["*Active exemptions*", *lines]) if lines else "No active exemptions."


def _list_snoozes(db: Database) -> str:
    with db.read() as session:
        lines = [
            f"• S{s.id} {md.user(s.user_id)} {md.code(s.kind, 66)} "
            f"{md.inline(', '.join(f'{k}={v}' for k, v in (s.scope or {}).items()))} "
            f"{_when(s.expires_at)}"
            for s in snoozes.list_recent(session)
        ]
    return "\n".join(["*Active snoozes*", *lines]) if lines else "No active snoozes."


def _revoke(db: Database, cmd: Revoke, actor: str) -> str:
    with db.write() as session:
        if cmd.what == "exemption":
            done = exemptions.delete(session, exemption_id=cmd.item_id, actor=actor, via=VIA)
        else:
            done = snoozes.revoke(session, snooze_id=cmd.item_id, actor=actor, via=VIA)
    label = f"{cmd.what[0].upper()}{cmd.item_id}"
    return f"Revoked {cmd.what} {label}." if done else f"There is no active {cmd.what} {label}."


def execute(db: Database, command: Command, actor: str) -> str:
    """Carry out a responder's command; the reply text (shown only to them)."""
    if isinstance(command, Exempt):
        if command.user == actor:
            _refuse(db, actor, "self", command)
            return "Nobody can exempt themselves; ask another responder. This attempt was logged."
        return _exempt(db, command, actor)
    if isinstance(command, ListExemptions):
        return _list_exemptions(db)
    if isinstance(command, ListSnoozes):
        return _list_snoozes(db)
    if isinstance(command, Revoke):
        return _revoke(db, command, actor)
    return HELP


def register(
    app: AsyncApp, db: Database, responders: Responders, *, max_exemption: timedelta
) -> None:
    @app.command(COMMAND)
    async def securitybot(ack: AsyncAck, command: dict[str, Any]) -> None:
        user = str(command.get("user_id", ""))
        parsed = parse_command(str(command.get("text", "")), max_exemption=max_exemption)
        if isinstance(parsed, Help):
            await ack(text=HELP, response_type="ephemeral")
            return
        if not await responders.contains(user):
            await asyncio.to_thread(_refuse, db, user, "not a responder", parsed)
            await ack(text=NOT_RESPONDER, response_type="ephemeral")
            return
        if isinstance(parsed, Invalid):
            await ack(text=parsed.message, response_type="ephemeral")
            return
        # Answered in the acknowledgement itself (within Slack's 3 seconds): the work is one
        # small transaction, and the reply is private to the responder.
        text = await asyncio.to_thread(execute, db, parsed, user)
        logger.info("%s %s by %s", COMMAND, _verb(parsed), user)
        await ack(text=text, response_type="ephemeral")
