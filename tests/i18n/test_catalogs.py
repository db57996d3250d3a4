"""Catalog checks (issue 33, docs/i18n.md): every message of the code and of the shipped kind
catalog is in every shipped catalog, translated, with the same placeholders; the compiled
``.mo`` files are what their ``.po`` files compile to."""

from __future__ import annotations

import io
import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from securitybot import i18n

REPO = Path(__file__).resolve().parents[2]
LOCALE = REPO / "securitybot" / "locale"
# Where a translation may read exactly like the English: nothing but placeholders, and words
# the language borrows as they are.
SAME_AS_ENGLISH = {("de", "Host"), *((lang, "{title}") for lang in i18n.SHIPPED)}


def _po(lang: str) -> Catalog:
    with open(LOCALE / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po", "rb") as f:
        return read_po(f, locale=lang)


def _extracted() -> set[str]:
    """What `pybabel extract -F babel.cfg -k N_` finds in the source tree today."""
    kinds = "securitybot.i18n.extract:extract_kinds"
    method_map = [("securitybot/**.py", "python"), ("securitybot/alerts/kinds/*.yaml", kinds)]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(REPO), method_map, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_the_template_holds_every_message_the_code_and_the_kinds_use() -> None:
    with open(LOCALE / f"{i18n.DOMAIN}.pot", "rb") as f:
        pot = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    extracted = _extracted()
    assert extracted - pot == set(), "run pybabel extract (docs/i18n.md)"
    assert pot - extracted == set(), "messages no longer used: run pybabel extract"
    assert len(pot) > 70


@pytest.mark.parametrize("lang", i18n.SHIPPED)
def test_every_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    with open(LOCALE / f"{i18n.DOMAIN}.pot", "rb") as f:
        pot = read_po(f)
    catalog = _po(lang)
    for message in pot:
        if not message.id:
            continue
        entry = catalog.get(message.id)
        assert entry is not None, f"{lang}: missing {message.id!r}"
        assert not entry.fuzzy, f"{lang}: fuzzy {message.id!r}"
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert len(strings) == catalog.num_plurals or not isinstance(message.id, tuple)
        for s in strings:
            assert s.strip(), f"{lang}: untranslated {ids[0]!r}"
            assert _fields(s) == _fields(ids[-1]), f"{lang}: placeholders of {ids[0]!r}: {s!r}"
            if (lang, s) not in SAME_AS_ENGLISH:
                assert s not in ids, f"{lang}: {ids[0]!r} reads as English"
            # Product markup must still pair up: code spans and bold.
            assert s.count("`") % 2 == 0, f"{lang}: unbalanced ` in {s!r}"
            assert "<" not in s and ">" not in s, f"{lang}: Slack control characters in {s!r}"


@pytest.mark.parametrize("lang", i18n.SHIPPED)
def test_the_compiled_catalogs_are_up_to_date(lang: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, _po(lang))
    shipped = (LOCALE / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.mo").read_bytes()
    assert shipped == compiled.getvalue(), (
        "run pybabel compile -d securitybot/locale -D securitybot"
    )


@pytest.mark.parametrize("lang", i18n.SHIPPED)
def test_plural_forms_are_the_languages_own(lang: str) -> None:
    catalog = _po(lang)
    assert catalog.num_plurals == {"ja": 1, "de": 2}.get(lang, 3)  # CLDR: fr/es/pt add "many"
    t = i18n.translator(lang)
    one = t.ngettext("…and {more} more", "…and {more} more", 1)
    two = t.ngettext("…and {more} more", "…and {more} more", 2)
    assert (one == two) is (lang in ("ja", "es", "pt_BR"))


def test_the_docs_tell_contributors_how_to_add_a_language() -> None:
    doc = (REPO / "docs" / "i18n.md").read_text()
    for step in ("pybabel extract", "pybabel update", "pybabel init", "pybabel compile"):
        assert step in doc
    for lang in i18n.LANGUAGES:
        assert re.search(rf"`{lang}`", doc), lang
    assert "docs/i18n.md" in (REPO / "README.md").read_text()
