"""``/securitybot``: anyone sees their own alerts; responders manage exemptions, snoozes and
suppression rules from Slack.

Slack signs the request and names the user in ``user_id``, so unlike an API token the person
acting is proven, and every change is audited with that Slack id. Only responders may change or
list anything; a refusal is answered privately and audited. Nobody can exempt themselves.

Ids carry their kind so ``revoke`` is never ambiguous: ``E12`` is exemption 12, ``S7`` snooze 7,
``R3`` suppression rule 3 (``revoke exemption 12``, ``revoke snooze 7`` and ``revoke rule 3``
work too).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from slack_bolt.async_app import AsyncAck, AsyncApp
from sqlalchemy.exc import IntegrityError

from securitybot.config import PolicyConfig
from securitybot.flows import exemptions, snoozes
from securitybot.i18n import ENGLISH, N_, LocaleOf, Translator
from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.kinds import KindRegistry
from securitybot.slack import locale_command as lc
from securitybot.slack import mrkdwn as md
from securitybot.slack import self_service
from securitybot.slack import suppress_command as sc
from securitybot.slack.dates import slack_date
from securitybot.slack.durations import describe, parse_duration
from securitybot.slack.triage import Responders
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import utcnow

logger = logging.getLogger(__name__)

COMMAND = "/securitybot"
VIA = {"via": "slack_command"}
MAX_REASON = 2000

# What everyone may do, in their language; the security team's part in the team's.
HELP_EVERYONE = N_("""*{command}* for everyone:
• `{command} help`: this list
• `{command} status`: your open alerts
• `{command} test`: send yourself a harmless test alert (the real DM and phone push)""")
HELP_TEAM = N_("""For the security team:
• `{command} exempt @user <duration> <reason>`: their alerts go straight to the security \
channel instead of a DM, until the duration (`30m`, `12h`, `7d`, `2w`) has passed
• `{command} exemptions`: active exemptions, with their ids (`E12`)
• `{command} snoozes`: active snoozes, with their ids (`S7`)
• `{command} suppress <kind> [field=value...] <duration> <reason>`: a maintenance window, e.g. \
`suppress sensitive_command host=build-* 4h CI rebuild`; matching new alerts are closed as \
suppressed (still stored, shown and summarised daily)
• `{command} rules`: active suppression rules, with their ids (`R3`)
• `{command} revoke E12`, `S7` or `R3`: end an exemption, a snooze or a suppression rule now
• `{command} locale @user <language>`: the language they are asked in (`de`, `es`, `fr`, `ja`, \
`pt_BR`, `en`; `default` gives Slack's back)
Every change is logged with your Slack account. Nobody can exempt themselves, and your own \
alerts are never suppressed by your rules.""")


def help_text(t: Translator = ENGLISH, team_t: Translator = ENGLISH) -> str:
    """The help: everyone's part in ``t`` (the reader's), the team's in ``team_t``."""
    return (
        t.gettext(HELP_EVERYONE).format(command=COMMAND) + "\n"
        + team_t.gettext(HELP_TEAM).format(command=COMMAND)
    )  # fmt: skip


HELP = help_text()

NOT_RESPONDER = N_("Only the security team can use this command. This attempt was logged.")


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
    what: Literal["exemption", "snooze", "rule"]
    item_id: int


@dataclass(frozen=True)
class Status:
    pass


@dataclass(frozen=True)
class Test:
    pass


Suppress = sc.Suppress
ListRules = sc.ListRules
SetLocale = lc.SetLocale


@dataclass(frozen=True)
class Invalid:
    message: str


Command = (
    Help
    | Exempt
    | ListExemptions
    | ListSnoozes
    | Revoke
    | Status
    | Test
    | Suppress
    | ListRules
    | SetLocale
)
SELF_SERVICE = (Help, Status, Test)  # anyone may; the rest is for responders
DEFAULT_MAX_SUPPRESSION = timedelta(days=7)
_WHAT = {"E": "exemption", "S": "snooze", "R": "rule"}

# With "Escape channels, users, and links" on (should_escape: true in the manifest) Slack sends
# a mention as <@U012AB3CD|name> (or <@U012AB3CD>): api.slack.com/interactivity/slash-commands.
_MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>$")
_REVOKE_RE = re.compile(
    r"^(?:([ESR])(\d{1,18})|(exemption|snooze|rule)\s+#?(\d{1,18}))$", re.IGNORECASE
)


def _parse_user(raw: str) -> str | None:
    m = _MENTION_RE.match(raw)
    if m:
        return m.group(1)
    return raw if SLACK_ID_RE.match(raw) else None


def parse_command(
    text: str, *, max_exemption: timedelta,
    max_suppression: timedelta = DEFAULT_MAX_SUPPRESSION, t: Translator = ENGLISH,
) -> Command | Invalid:  # fmt: skip
    """What ``text`` (everything after ``/securitybot``) asks for, or why it can't be done (in
    ``t``'s language: only responders are told)."""
    verb, _sep, rest = text.strip().partition(" ")
    verb, rest = verb.lower(), rest.strip()
    if verb in ("", "help"):
        return Help()
    if verb == "status" and not rest:
        return Status()
    if verb == "test" and not rest:
        return Test()
    if verb == "rules" and not rest:
        return ListRules()
    if verb == "suppress":
        parsed = sc.parse_suppress(rest, max_suppression, command=COMMAND, t=t)
        return Invalid(parsed) if isinstance(parsed, str) else parsed
    if verb == "exemptions" and not rest:
        return ListExemptions()
    if verb == "snoozes" and not rest:
        return ListSnoozes()
    if verb == "revoke":
        m = _REVOKE_RE.match(rest)
        if m is None:
            return Invalid(t.gettext(
                "Usage: `revoke E12` (an exemption), `revoke S7` (a snooze) or `revoke R3` "
                "(a suppression rule)."
            ))  # fmt: skip
        prefix, num = (m.group(1), m.group(2)) if m.group(1) else (m.group(3)[0], m.group(4))
        what: Literal["exemption", "snooze", "rule"] = _WHAT[prefix.upper()]  # type: ignore[assignment]
        return Revoke(what, int(num))
    if verb == "exempt":
        return _parse_exempt(rest, max_exemption, t)
    if verb == "locale":
        chosen = lc.parse_locale(rest, COMMAND, t)
        return Invalid(chosen) if isinstance(chosen, str) else chosen
    return Invalid(t.gettext("Unknown command {verb}. Try `{command} help`.").format(
        verb=md.code(verb, 42), command=COMMAND))  # fmt: skip


def _parse_exempt(rest: str, max_exemption: timedelta, t: Translator) -> Exempt | Invalid:
    usage = t.gettext(
        "Usage: `{command} exempt @user <duration> <reason>`, e.g. `exempt @bob 7d on leave`."
    ).format(command=COMMAND)
    parts = rest.split(None, 2)
    if len(parts) < 3:
        return Invalid(usage)
    who, raw_duration, reason = parts
    user = _parse_user(who)
    if user is None:
        # A plain "@bob" would need users.list to resolve; Slack escapes real mentions for us.
        return Invalid(lc.not_a_mention(who, t))
    duration = parse_duration(raw_duration)
    if duration is None:
        return Invalid(sc.not_a_duration(raw_duration, t))
    if duration > max_exemption:
        return Invalid(t.gettext("Exemptions last at most {duration}.").format(
            duration=describe(max_exemption)))  # fmt: skip
    if len(reason) > MAX_REASON:
        return Invalid(sc.reason_too_long(t))
    return Exempt(user, duration, reason)


# -- doing it -----------------------------------------------------------------------------------


def _verb(command: Command | Invalid) -> str:
    return {Help: "help", Exempt: "exempt", ListExemptions: "exemptions",
            ListSnoozes: "snoozes", Revoke: "revoke", Status: "status", Test: "test",
            Suppress: "suppress", ListRules: "rules",
            SetLocale: "locale"}.get(type(command), "invalid")  # fmt: skip


def refuse(db: Database, actor: str, reason: str, command: Command | Invalid) -> None:
    details: dict[str, Any] = {"reason": reason, "command": _verb(command), **VIA}
    subject = command.user if isinstance(command, Exempt | SetLocale) else None
    with db.write() as session:
        alert_store.audit(
            session, actor=actor, action="command.refused", subject_user=subject, details=details
        )


def _when(at: datetime | None, t: Translator) -> str:
    if at is None:
        return t.gettext("no end")
    return t.gettext("until {when}").format(when=slack_date(at))


def _exempt(db: Database, cmd: Exempt, actor: str, t: Translator) -> str:
    expires_at = utcnow() + cmd.duration
    try:
        with db.write() as session:
            e = exemptions.create(session, user=cmd.user, reason=cmd.reason, actor=actor,
                                  expires_at=expires_at, via=VIA)  # fmt: skip
            item = e.id
    except IntegrityError:
        return t.gettext("{user} is already exempt; see `{command} exemptions`.").format(
            user=md.user(cmd.user), command=COMMAND)  # fmt: skip
    return t.gettext(
        "Exempted {user} {until} (E{item}): their alerts go straight to the security channel. "
        "Undo with `{command} revoke E{item}`."
    ).format(user=md.user(cmd.user), until=_when(expires_at, t), item=item, command=COMMAND)


def _list_exemptions(db: Database, t: Translator) -> str:
    now = utcnow()
    with db.read() as session:
        active = [
            e for e in exemptions.list_all(session) if e.expires_at is None or e.expires_at > now
        ]
        lines = [
            f"• E{e.id} {md.user(e.user)} {_when(e.expires_at, t)}, "
            + t.gettext("by {user}").format(user=md.user(e.created_by))
            + f": {md.inline(e.reason, 200)}"
            for e in active
        ]
    if not lines:
        return t.gettext("No active exemptions.")
    return "\n".join(["*" + t.gettext("Active exemptions") + "*", *lines])


def _list_snoozes(db: Database, t: Translator) -> str:
    with db.read() as session:
        lines = [
            f"• S{s.id} {md.user(s.user_id)} {md.code(s.kind, 66)} "
            f"{md.inline(', '.join(f'{k}={v}' for k, v in (s.scope or {}).items()))} "
            f"{_when(s.expires_at, t)}"
            for s in snoozes.list_recent(session)
        ]
    if not lines:
        return t.gettext("No active snoozes.")
    return "\n".join(["*" + t.gettext("Active snoozes") + "*", *lines])


# How each kind of revocable item is named in the answer (the team's language).
_REVOKED = {
    "exemption": (N_("Revoked exemption {label}."), N_("There is no active exemption {label}.")),
    "snooze": (N_("Revoked snooze {label}."), N_("There is no active snooze {label}.")),
}


def revoke(
    db: Database, cmd: Revoke, actor: str, via: dict[str, Any] = VIA, t: Translator = ENGLISH
) -> str:
    """End an exemption, snooze or suppression rule now, audited as ``actor`` with ``via``."""
    if cmd.what == "rule":
        return sc.revoke(db, cmd.item_id, actor, via, t)
    with db.write() as session:
        if cmd.what == "exemption":
            done = exemptions.delete(session, exemption_id=cmd.item_id, actor=actor, via=via)
        else:
            done = snoozes.revoke(session, snooze_id=cmd.item_id, actor=actor, via=via)
    label = f"{cmd.what[0].upper()}{cmd.item_id}"
    revoked, missing = _REVOKED[cmd.what]
    return t.gettext(revoked if done else missing).format(label=label)


def execute(
    db: Database, command: Command, actor: str, kinds: KindRegistry | None = None,
    t: Translator = ENGLISH,
) -> str:  # fmt: skip
    """Carry out a responder's command; the reply text (shown only to them, in ``t``'s
    language: the team's)."""
    if isinstance(command, Suppress):
        refusal = sc.kind_refusal(kinds, command.kind, t) if kinds is not None else None
        if refusal:
            refuse(db, actor, "kind cannot be suppressed", command)
            return refusal
        return sc.suppress(db, command, actor, VIA, COMMAND, t)
    if isinstance(command, ListRules):
        return sc.list_rules(db, t)
    if isinstance(command, Exempt):
        if command.user == actor:
            refuse(db, actor, "self", command)
            return t.gettext(
                "Nobody can exempt themselves; ask another responder. This attempt was logged."
            )
        return _exempt(db, command, actor, t)
    if isinstance(command, ListExemptions):
        return _list_exemptions(db, t)
    if isinstance(command, ListSnoozes):
        return _list_snoozes(db, t)
    if isinstance(command, Revoke):
        return revoke(db, command, actor, t=t)
    if isinstance(command, SetLocale):
        return lc.set_locale(db, command, actor, VIA, t)
    return help_text(team_t=t)


def _self_service(
    db: Database, parsed: Command, user: str, kinds: KindRegistry, policy: PolicyConfig,
    t: Translator = ENGLISH, team_t: Translator = ENGLISH,
) -> str:  # fmt: skip
    if isinstance(parsed, Status):
        return self_service.status(db, user, t)
    if isinstance(parsed, Test):
        return self_service.send_test(db, user, kinds, policy, t)
    return help_text(t, team_t)


def register(
    app: AsyncApp, db: Database, responders: Responders, *, max_exemption: timedelta,
    max_suppression: timedelta, kinds: KindRegistry, policy: PolicyConfig,
    wake: Callable[[], None], locale_of: LocaleOf | None = None,
    locale_set: Callable[[str], None] | None = None, team_t: Translator = ENGLISH,
) -> None:  # fmt: skip
    """``locale_of``: the caller's language, for the answers anyone may ask for (and the
    refusal to someone not on the team); ``team_t``: the team's (``i18n.team_locale``), for
    the answers to responders; ``locale_set``: told whose language a responder just chose
    (its cache forgets them)."""

    @app.command(COMMAND)
    async def securitybot(ack: AsyncAck, command: dict[str, Any]) -> None:
        user = str(command.get("user_id", ""))
        parsed = parse_command(
            str(command.get("text", "")), max_exemption=max_exemption,
            max_suppression=max_suppression, t=team_t,
        )  # fmt: skip
        if isinstance(parsed, SELF_SERVICE):
            t = await locale_of(user) if locale_of is not None else ENGLISH
            text = await asyncio.to_thread(_self_service, db, parsed, user, kinds, policy, t,
                                           team_t)  # fmt: skip
            if isinstance(parsed, Test):
                wake()  # the test alert's first job is waiting
            await ack(text=text, response_type="ephemeral")
            return
        if not await responders.contains(user):
            await asyncio.to_thread(refuse, db, user, "not a responder", parsed)
            t = await locale_of(user) if locale_of is not None else ENGLISH
            await ack(text=t.gettext(NOT_RESPONDER), response_type="ephemeral")
            return
        if isinstance(parsed, Invalid):
            await ack(text=parsed.message, response_type="ephemeral")
            return
        # Answered in the acknowledgement itself (within Slack's 3 seconds): the work is one
        # small transaction, and the reply is private to the responder.
        text = await asyncio.to_thread(execute, db, parsed, user, kinds, team_t)
        if isinstance(parsed, SetLocale) and locale_set is not None:
            locale_set(parsed.user)
        logger.info("%s %s by %s", COMMAND, _verb(parsed), user)
        await ack(text=text, response_type="ephemeral")
