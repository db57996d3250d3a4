"""The ``i18n`` config section (docs/i18n.md): which language each person is asked in, and
which one the security team reads."""

from __future__ import annotations

from pydantic import Field, field_validator

from securitybot.config.base import _Section
from securitybot.i18n import LANGUAGES, served


def shipped_locale(value: str) -> str:
    """``value`` if a shipped catalog serves it (``de-AT`` → German); ValueError otherwise."""
    if served(value) is None:
        raise ValueError(f"no catalog for {value!r} (shipped: {', '.join(LANGUAGES)})")
    return value


class I18nConfig(_Section):
    # Whom Slack gives no locale (or one without a catalog) is asked in this language.
    default_locale: str = "en"
    # Per person, by email address or Slack user id: wins over Slack's locale (the security
    # team's own `/securitybot locale` setting wins over both).
    locales: dict[str, str] = Field(default_factory=dict)
    # Ask Slack for each person's locale (users.info include_locale). Off: config decides.
    use_slack_locale: bool = True
    # What the security team reads: escalation posts, triage, storms, held resets, App Home's
    # team part and the answers to responders' commands. One language for the whole team.
    team_locale: str = "en"

    @field_validator("default_locale", "team_locale")
    @classmethod
    def _default(cls, v: str) -> str:
        return shipped_locale(v)

    @field_validator("locales")
    @classmethod
    def _each(cls, v: dict[str, str]) -> dict[str, str]:
        return {(k.lower() if "@" in k else k): shipped_locale(loc) for k, loc in v.items()}
