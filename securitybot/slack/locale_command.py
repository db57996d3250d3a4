"""``/securitybot locale @user <language>``: the security team chooses the language a person is
asked in (``default`` clears the choice, so Slack's locale and the config decide again).

Stored with the person in ``slack_people.locale`` and audited as ``person.locale_set``; it wins
over config ``i18n.locales`` and Slack's own locale (``flows/locales.py``, docs/i18n.md). The
admin API (``PUT /api/v1/people/locale``, ``api/people.py``) stores it the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from securitybot.i18n import ENGLISH, LANGUAGES, Translator, negotiate, served
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


def usage(command: str, t: Translator = ENGLISH) -> str:
    return t.gettext(
        "Usage: `{command} locale @user <language>` ({languages}; `{clear}` clears the "
        "choice), e.g. `locale @bob de`."
    ).format(command=command, languages=", ".join(LANGUAGES), clear=CLEAR)


def not_a_mention(who: str, t: Translator = ENGLISH) -> str:
    return t.gettext(
        "Mention the person so Slack links it (pick them from the list after typing `@`); "
        "{who} is not a Slack user mention."
    ).format(who=md.code(who, 82))


def parse_locale(rest: str, command: str, t: Translator = ENGLISH) -> SetLocale | str:
    """The command, or why it can't be done (in ``t``'s language: the team's)."""
    parts = rest.split()
    if len(parts) != 2:
        return usage(command, t)
    who, lang = parts
    m = _MENTION_RE.match(who)
    user = m.group(1) if m else (who if _ID_RE.match(who) else None)
    if user is None:
        return not_a_mention(who, t)
    if lang.lower() == CLEAR:
        return SetLocale(user, None)
    if served(lang) is None:
        no_catalog = t.gettext("There is no catalog for {language}.")
        return no_catalog.format(language=md.code(lang, 40)) + " " + usage(command, t)
    return SetLocale(user, negotiate(lang))


def store_locale(db: Database, cmd: SetLocale, actor: str, via: dict[str, str]) -> str | None:
    """Keep the team's choice with the person and audit it (``person.locale_set``), the same
    for the slash command and the API; the choice it replaced."""
    with db.write() as session:
        before = slack_people.locale(session, cmd.user)
        slack_people.put_locale(session, cmd.user, cmd.locale)
        alert_store.audit(
            session, actor=actor, action="person.locale_set", subject_user=cmd.user,
            details={"locale": cmd.locale, "before": before, **via},
        )  # fmt: skip
    return before


def set_locale(
    db: Database, cmd: SetLocale, actor: str, via: dict[str, str], t: Translator = ENGLISH
) -> str:
    store_locale(db, cmd, actor, via)
    if cmd.locale is None:
        return t.gettext(
            "{user} is asked in their Slack language again (or the configured default)."
        ).format(user=md.user(cmd.user))
    return t.gettext("{user} is now asked in `{locale}`.").format(
        user=md.user(cmd.user), locale=cmd.locale
    )
