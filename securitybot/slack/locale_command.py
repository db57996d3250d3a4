"""``/securitybot locale @user <language>``: the security team chooses the language a person is
asked in (``default`` clears the choice, so Slack's locale and the config decide again).

Stored with the person in ``slack_people.locale`` and audited as ``person.locale_set``; it wins
over config ``i18n.locales`` and Slack's own locale (``flows/locales.py``, docs/i18n.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from securitybot.i18n import LANGUAGES, negotiate, served
from securitybot.slack import mrkdwn as md
from securitybot.store import alerts as alert_store
from securitybot.store import slack_people
from securitybot.store.db import Database

_MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>$")
_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,30}$")
CLEAR = "default"


@dataclass(frozen=True)
class SetLocale:
    user: str  # a Slack user id
    locale: str | None  # a shipped language (negotiated: "pt_BR"), None to clear


def usage(command: str) -> str:
    return (
        f"Usage: `{command} locale @user <language>` ({', '.join(LANGUAGES)}; `{CLEAR}` "
        "clears the choice), e.g. `locale @bob de`."
    )


def parse_locale(rest: str, command: str) -> SetLocale | str:
    """The command, or why it can't be done."""
    parts = rest.split()
    if len(parts) != 2:
        return usage(command)
    who, lang = parts
    m = _MENTION_RE.match(who)
    user = m.group(1) if m else (who if _ID_RE.match(who) else None)
    if user is None:
        return (
            f"Mention the person so Slack links it (pick them from the list after typing `@`); "
            f"{md.code(who, 82)} is not a Slack user mention."
        )
    if lang.lower() == CLEAR:
        return SetLocale(user, None)
    if served(lang) is None:
        return f"There is no catalog for {md.code(lang, 40)}. " + usage(command)
    return SetLocale(user, negotiate(lang))


def set_locale(db: Database, cmd: SetLocale, actor: str, via: dict[str, str]) -> str:
    with db.write() as session:
        before = slack_people.locale(session, cmd.user)
        slack_people.put_locale(session, cmd.user, cmd.locale)
        alert_store.audit(
            session, actor=actor, action="person.locale_set", subject_user=cmd.user,
            details={"locale": cmd.locale, "before": before, **via},
        )  # fmt: skip
    if cmd.locale is None:
        return (
            f"{md.user(cmd.user)} is asked in their Slack language again (or the configured "
            "default)."
        )
    return f"{md.user(cmd.user)} is now asked in `{cmd.locale}`."
