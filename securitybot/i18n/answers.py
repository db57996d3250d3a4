"""Typed answers in the DM, in every shipped language: pure, text in, (kind, comment) out.

Every language's words are accepted from everyone (a German reader who types "yes" or an
English one who types "ja" means the same); no word means "yes" in one shipped language and
"no" in another. The list per language is in docs/i18n.md ("Typed answers").

A "no" never escalates by itself: the listener asks to ``confirm`` first, so a word taken
wrongly pages nobody.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

# kind -> words, per language (casefolded, NFKC). English first: the source language.
WORDS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "en": {
        "confirm": ("ack", "acknowledge", "acknowledged", "yes", "y"),
        "deny": ("no", "n", "nope", "not me"),
        "confirm_denial": ("confirm",),
        "wrong_person": ("wrong person", "wrong"),
        "help": ("help", "hi", "hello", "?"),
    },
    "de": {
        "confirm": ("ja",),
        "deny": ("nein", "nicht ich", "war ich nicht"),
        "confirm_denial": ("bestätigen", "bestätige"),
        "wrong_person": ("falsche person",),
        "help": ("hilfe", "hallo"),
    },
    "fr": {
        "confirm": ("oui",),
        "deny": ("non", "pas moi", "ce n'était pas moi"),
        "confirm_denial": ("confirmer", "je confirme"),
        "wrong_person": ("mauvaise personne",),
        "help": ("aide", "bonjour"),
    },
    "es": {
        "confirm": ("sí", "si"),
        "deny": ("no", "no fui yo"),
        "confirm_denial": ("confirmar", "confirmo"),
        "wrong_person": ("persona equivocada",),
        "help": ("ayuda", "hola"),
    },
    "pt_BR": {
        "confirm": ("sim",),
        "deny": ("não", "nao", "não fui eu", "nao fui eu"),
        "confirm_denial": ("confirmar", "confirmo"),
        "wrong_person": ("pessoa errada",),
        "help": ("ajuda", "oi", "olá"),
    },
    "ja": {
        "confirm": ("はい",),
        "deny": ("いいえ", "私ではない", "私じゃない"),
        "confirm_denial": ("確認", "確定"),
        "wrong_person": ("人違い",),
        "help": ("ヘルプ",),
    },
}

_PHRASES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        {(w, kind) for words in WORDS.values() for kind, ws in words.items() for w in ws},
        key=lambda pair: -len(pair[0]),  # longest first: "not me" before "no", "no fui yo"…
    )
)
_SEPARATORS = re.compile(r"^[\s,.:;!\-、。!,:;]*", re.S)


def _ends_word(phrase: str, rest: str) -> bool:
    """Whether ``phrase`` is a whole word at the start: "yes" in "yes, it was me", not in
    "yesterday". Japanese writes no spaces, so a phrase in it needs no boundary."""
    return not rest or _cjk(phrase[-1]) or not rest[0].isalnum()


def _cjk(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def parse_reply(text: str) -> tuple[str, str | None]:
    """("confirm"|"deny"|"confirm_denial"|"wrong_person"|"help"|"unknown", comment): the
    first word or phrase of ``text`` in any shipped language, and the reason after it."""
    # NFKC: full-width forms (Japanese keyboards) and composed accents compare equal.
    stripped = unicodedata.normalize("NFKC", (text or "").strip())
    folded = stripped.casefold()
    for phrase, kind in _PHRASES:
        if folded.startswith(phrase) and _ends_word(phrase, folded[len(phrase) :]):
            # casefold keeps lengths for these words, so the comment is cut from the original.
            rest = (
                stripped[len(phrase) :] if len(folded) == len(stripped) else folded[len(phrase) :]
            )
            comment = _SEPARATORS.sub("", rest).strip() or None
            if kind == "help":
                return "help", None
            return kind, comment
    return "unknown", None
