"""What the person reads, in every shipped language: Block Kit's limits hold with the longest
translation and the worst alert; untrusted values stay inert; the translated templates' own
markup (code spans, bold) stays markup; the date token keeps its fallback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securitybot.domain import DM_TEXTS
from securitybot.i18n import LANGUAGES, translator
from securitybot.slack import app_home, limits, messages
from securitybot.slack.listeners import pushed_text
from securitybot.slack.messages import DM_HINT
from securitybot.store.models import Alert
from tests.slack.helpers import make_alert, mrkdwn_of
from tests.slack.test_block_limits_properties import (
    KINDS,
    alerts,
    check,
    grouped,
    untrusted,
)
from tests.slack.test_block_limits_properties import (
    SETTINGS as SETTINGS_EN,
)

AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
# Fewer examples than tests/slack's English ones: the random alerts are the same, and each
# language only changes the product's own (fixed) text around them.
SETTINGS = settings(parent=SETTINGS_EN, max_examples=8)


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(alert=alerts(), group=grouped, name=untrusted, greet=st.booleans())
def test_the_dm_fits_and_stays_inert(
    lang: str, alert: Alert, group: list[Alert], name: str, greet: bool
) -> None:
    text, blocks = messages.dm_message(alert, KINDS.get(alert.kind), first_name=name,
                                       greet=greet, grouped=group, t=translator(lang))  # fmt: skip
    check(text, blocks)


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(alert=alerts(), outcome=st.sampled_from(sorted(DM_TEXTS.values())), snooze=st.booleans())
def test_the_answered_dm_fits(lang: str, alert: Alert, outcome: str, snooze: bool) -> None:
    t = translator(lang)
    text, blocks = messages.answered_message(
        alert, KINDS.get(alert.kind), t.gettext(outcome), offer_snooze=snooze, t=t
    )
    check(text, blocks)


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(alert=alerts(), minutes=st.one_of(st.none(), st.integers(1, 10**6)))
def test_the_reminder_fits(lang: str, alert: Alert, minutes: int | None) -> None:
    check(messages.reminder_text(alert, minutes, translator(lang), KINDS.get(alert.kind)))


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(mine=st.lists(alerts(parent_id=None), max_size=12, unique_by=lambda a: a.id),
       history=st.lists(alerts(), max_size=12))  # fmt: skip
def test_the_app_home_fits(lang: str, mine: list[Alert], history: list[Alert]) -> None:
    view = app_home.home_view(mine, history, None, translator(lang))
    assert limits.view_problems(view) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_templates_markup_survives_and_values_are_escaped(lang: str) -> None:
    t = translator(lang)
    alert = make_alert(
        description="<!channel> look", occurred_at=AT, created_at=AT,
        details={"host": "<https://evil|Re-verify>", "command": "rm -rf / `whoami` &"},
    )  # fmt: skip
    text, blocks = messages.dm_message(alert, KINDS.get("sensitive_command"),
                                       first_name="<@U0EVIL>", greet=True, t=t)  # fmt: skip
    shown = "\n".join(mrkdwn_of(text, blocks))  # what Slack parses as markup
    # The values: escaped, never markup.
    for raw in ("<!channel>", "<https://evil", "<@U0EVIL>", "rm -rf / `whoami` &"):
        assert raw not in shown
    assert "&lt;!channel&gt;" in shown and "&lt;@U0EVIL&gt;" in shown
    # The template's own markup stays: the command in a code span, the answer words too.
    assert "`rm -rf / ˋwhoamiˋ &amp;`" in shown
    hint = t.gettext(DM_HINT)
    assert hint in shown and "&lt;" not in hint
    # Slack's date token, with its UTC fallback for clients that cannot show it.
    assert "<!date^1767323040^{date_short_pretty} at {time}|2026-01-02 03:04 UTC>" in shown


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_push_reply_names_the_provider(lang: str) -> None:
    for provider in ("Duo", "Okta Verify"):
        assert provider in pushed_text(translator(lang), provider)


def test_the_buttons_and_the_dialog_are_translated() -> None:
    alert = make_alert()
    labels: dict[str, Any] = {}
    for lang in LANGUAGES:
        actions = messages.answer_actions(alert, translator(lang))
        labels[lang] = [e["text"]["text"] for e in actions["elements"]]
        assert limits.problems([actions]) == []
        assert actions["elements"][1]["confirm"]["title"]["text"] == translator(lang).gettext(
            "It wasn't you?"
        )
    assert labels["en"] == ["Yes, this was me", "No, this wasn't me", "Wrong person"]
    assert labels["de"] == ["Ja, das war ich", "Nein, das war ich nicht", "Falsche Person"]
    assert labels["ja"] == ["はい、私です", "いいえ、私ではありません", "人違いです"]
    assert len({tuple(v) for v in labels.values()}) == len(LANGUAGES)


def test_the_reminder_names_the_alert_as_the_dm_did_in_the_persons_language() -> None:
    """The reminder's headline is the DM's: the kind's title in the reader's language (the
    tool's own title only where the kind shows that), not the tool's English title."""
    ran = {"host": "accountingserver01", "command": "flurb -export"}
    alert = make_alert(kind="sensitive_command", title="flurb -export on accountingserver01",
                       details=ran)  # fmt: skip
    kind = KINDS.get("sensitive_command")
    german = messages.reminder_text(alert, 5, translator("de"), kind)
    assert "Sensibler Befehl auf accountingserver01" in german, german
    assert "flurb -export on accountingserver01" not in german
    english = messages.reminder_text(alert, 5, translator("en"), kind)
    assert "(Sensitive command on accountingserver01)" in english, english
    # The default kind shows the tool's title, escaped, as before.
    tool = make_alert(kind="default", title="<!channel> disk full")
    shown = messages.reminder_text(tool, None, translator("de"), KINDS.get("default"))
    assert "&lt;!channel&gt; disk full" in shown and "<!channel>" not in shown
