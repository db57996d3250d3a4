"""What a person reads from the bot, in their language: gettext catalogs and locale negotiation.

Pure: no Slack, no database. The catalogs are ``securitybot/locale/<lang>/LC_MESSAGES/
securitybot.mo`` (package data, compiled from the ``.po`` beside them; docs/i18n.md). Every
message's English text is its own msgid, so a missing catalog or entry shows the English.

Templates use ``str.format`` placeholders (``{alert_id}``). A translated template is trusted
text like the English one: callers escape the *values* they substitute (``slack/mrkdwn.py``),
never the template, so its own markup (``*bold*``, `` `ack` ``) stays markup in every language.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Protocol

from babel.support import NullTranslations, Translations

DOMAIN = "securitybot"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
SOURCE = "en"
# The languages shipped with a catalog (besides the English source), as gettext names them.
SHIPPED: tuple[str, ...] = ("de", "es", "fr", "ja", "pt_BR")
LANGUAGES: tuple[str, ...] = (SOURCE, *SHIPPED)

_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,8}))?(?:[-_.@].*)?$")


class Translator(Protocol):
    def gettext(self, message: str, /) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int, /) -> str: ...


def normalize(tag: str | None) -> str | None:
    """``de-DE``/``de_de``/``DE`` → ``de_DE``/``de``; None for anything that is not a tag."""
    m = _TAG.match((tag or "").strip())
    if not m:
        return None
    lang, region = m.group(1).lower(), m.group(2)
    if region and len(region) == 2:
        return f"{lang}_{region.upper()}"
    return lang


def served(tag: str | None) -> str | None:
    """The shipped language for one tag: exact (``pt_BR``), then its language (``de_AT`` →
    ``de``), then any region of that language (``pt_PT`` → ``pt_BR``); None if none."""
    norm = normalize(tag)
    if norm is None:
        return None
    if norm in LANGUAGES:
        return norm
    lang = norm.split("_", 1)[0]
    if lang in LANGUAGES:
        return lang
    return next((s for s in SHIPPED if s.split("_", 1)[0] == lang), None)


def negotiate(*wanted: str | None) -> str:
    """The first of ``wanted`` (most specific first: an override, Slack's locale, the default)
    that a shipped catalog can serve, each with its fallbacks (``pt-BR`` → ``pt`` → ``en``);
    English when none can."""
    for tag in wanted:
        found = served(tag)
        if found is not None:
            return found
    return SOURCE


@cache
def translator(locale: str | None) -> Translator:
    """The catalog of ``locale`` (negotiated), English (the msgids themselves) for ``en``."""
    lang = negotiate(locale)
    if lang == SOURCE:
        return NullTranslations()
    found = Translations.load(str(LOCALE_DIR), [lang], DOMAIN)
    if not isinstance(found, gettext.GNUTranslations):  # a catalog missing from the install
        return NullTranslations()
    return found


ENGLISH: Translator = translator(SOURCE)
# A person's catalog by Slack user id (``securitybot.flows.locales.Locales.for_user``).
LocaleOf = Callable[[str], Awaitable[Translator]]


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message
