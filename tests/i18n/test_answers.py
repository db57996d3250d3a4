"""Typed answers in every shipped language (docs/i18n.md "Typed answers")."""

from __future__ import annotations

import re

import pytest

from securitybot.i18n import LANGUAGES, translator
from securitybot.i18n.answers import WORDS, parse_reply
from securitybot.slack.messages import CONFIRM_DENIAL_TEXT, DM_HINT, HELP_TEXT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # English, as before.
        ("ack", ("confirm", None)), ("Yes", ("confirm", None)), ("y", ("confirm", None)),
        ("ack running the quarterly export", ("confirm", "running the quarterly export")),
        ("no", ("deny", None)), ("not me, I was asleep", ("deny", "I was asleep")),
        ("confirm", ("confirm_denial", None)), ("wrong person", ("wrong_person", None)),
        ("help", ("help", None)), ("yesterday", ("unknown", None)), ("", ("unknown", None)),
        ("nobody", ("unknown", None)),
        # German, French, Spanish, Portuguese, Japanese.
        ("ja", ("confirm", None)), ("Ja, Quartalsexport", ("confirm", "Quartalsexport")),
        ("nein", ("deny", None)), ("Nicht ich", ("deny", None)),
        ("bestätigen", ("confirm_denial", None)), ("Falsche Person", ("wrong_person", None)),
        ("oui", ("confirm", None)), ("non", ("deny", None)), ("pas moi", ("deny", None)),
        ("confirmer", ("confirm_denial", None)), ("mauvaise personne", ("wrong_person", None)),
        ("sí", ("confirm", None)), ("Si", ("confirm", None)), ("no fui yo", ("deny", None)),
        ("confirmar", ("confirm_denial", None)), ("persona equivocada", ("wrong_person", None)),
        ("sim", ("confirm", None)), ("não", ("deny", None)), ("NÃO", ("deny", None)),
        ("nao fui eu", ("deny", None)), ("pessoa errada", ("wrong_person", None)),
        ("はい", ("confirm", None)), ("はい、私です", ("confirm", "私です")),
        ("ｈｅｌｐ", ("help", None)),  # full-width, as a Japanese keyboard may type it
        ("いいえ", ("deny", None)), ("いいえ。寝ていました", ("deny", "寝ていました")),
        ("確認", ("confirm_denial", None)), ("人違い", ("wrong_person", None)),
        # A word that merely starts like an answer is no answer.
        ("simple", ("unknown", None)), ("nonsense", ("unknown", None)),
        ("jamais", ("unknown", None)), ("ouija", ("unknown", None)),
    ],
)  # fmt: skip
def test_parse_reply(text: str, expected: tuple[str, str | None]) -> None:
    assert parse_reply(text) == expected


def test_no_word_means_yes_in_one_language_and_something_else_in_another() -> None:
    meaning: dict[str, str] = {}
    for words in WORDS.values():
        for kind, ws in words.items():
            for w in ws:
                assert meaning.setdefault(w, kind) == kind, w


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_words_the_bot_suggests_are_the_words_it_understands(lang: str) -> None:
    """Every `word` the help, the DM's hint and the confirm question offer parses to the
    answer that text says it is."""
    t = translator(lang)
    hint = t.gettext(DM_HINT)
    for text in (t.gettext(HELP_TEXT), t.gettext(CONFIRM_DENIAL_TEXT), hint):
        offered = re.findall(r"`([^`]+)`", text)
        assert offered, text
        for word in offered:
            assert parse_reply(word)[0] != "unknown", (lang, word)
    # The confirm question offers, in order: confirm, no, yes.
    confirm, no, yes = re.findall(r"`([^`]+)`", t.gettext(CONFIRM_DENIAL_TEXT))
    assert [parse_reply(w)[0] for w in (confirm, no, yes)] == ["confirm_denial", "deny", "confirm"]
    # The hint offers yes, no, wrong person.
    assert [parse_reply(w)[0] for w in re.findall(r"`([^`]+)`", hint)] == [
        "confirm", "deny", "wrong_person"
    ]  # fmt: skip
