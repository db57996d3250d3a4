"""Locale negotiation: Slack's tags (``de-DE``, ``pt-BR``) to the shipped catalogs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from securitybot.config.i18n import I18nConfig
from securitybot.i18n import ENGLISH, negotiate, normalize, translator


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (("de-DE",), "de"), (("de_AT",), "de"), (("DE",), "de"), (("fr-CA",), "fr"),
        (("es-LA",), "es"), (("es-ES",), "es"), (("ja-JP",), "ja"), (("pt-BR",), "pt_BR"),
        (("pt-PT",), "pt_BR"), (("pt",), "pt_BR"), (("en-GB",), "en"), (("it-IT",), "en"),
        ((None,), "en"), (("",), "en"), (("not a tag!",), "en"),
        # The first that a catalog serves wins; an unserved one falls through.
        (("it-IT", "de-DE"), "de"), ((None, None, "ja"), "ja"), (("fr", "de"), "fr"),
    ],
)  # fmt: skip
def test_negotiate(wanted: tuple[str | None, ...], expected: str) -> None:
    assert negotiate(*wanted) == expected


def test_normalize() -> None:
    assert normalize("pt-br") == "pt_BR"
    assert normalize("zh-Hant-TW") == "zh"
    assert normalize("en_US.UTF-8") == "en_US"
    assert normalize("<!channel>") is None


def test_english_is_the_source_text() -> None:
    assert translator("en-US").gettext("Yes, this was me") == "Yes, this was me"
    assert translator("it") is ENGLISH or translator("it").gettext("Cancel") == "Cancel"
    assert translator("de-DE").gettext("Cancel") == "Abbrechen"
    assert translator("ja").gettext("a message nobody translated") == "a message nobody translated"


def test_config_refuses_a_language_without_a_catalog() -> None:
    assert I18nConfig(default_locale="pt-PT").default_locale == "pt-PT"
    cfg = I18nConfig(locales={"Yuki@Example.com": "ja", "U0HANS": "de-AT"})
    assert cfg.locales == {"yuki@example.com": "ja", "U0HANS": "de-AT"}
    with pytest.raises(ValidationError, match="no catalog for 'it'"):
        I18nConfig(default_locale="it")
    with pytest.raises(ValidationError, match="no catalog"):
        I18nConfig(locales={"U0X": "klingon"})
    assert I18nConfig().team_locale == "en"
    assert I18nConfig(team_locale="de-CH").team_locale == "de-CH"
    with pytest.raises(ValidationError, match="no catalog for 'it'"):
        I18nConfig(team_locale="it")
