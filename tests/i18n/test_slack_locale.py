"""Slack's locale for a person: asked with users.info include_locale, cached with the person in
the people cache (across restarts), and never in the way of a DM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from securitybot.config.i18n import I18nConfig
from securitybot.demo import FakeSlack
from securitybot.flows.locales import Locales
from securitybot.slack.locale_command import SetLocale, set_locale
from securitybot.store import slack_people
from securitybot.store.db import Database
from tests.perf.counting import counted
from tests.slack.gateways import attached_gateway


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UHANS", "hans@example.com", first_name="Hans", locale="de-DE")
        fake.add_user("UNONE", "none@example.com", locale=None)  # Slack answers no locale
        yield fake


async def test_users_info_asks_for_the_locale(fs: FakeSlack, db: Database) -> None:
    gateway, directory = await attached_gateway(fs, db)
    user = await gateway.lookup_user("UHANS")
    assert user is not None and user.locale == "de-DE"
    [call] = fs.calls_to("users.info")
    assert str(call.params.get("include_locale")).lower() in ("1", "true")
    assert await gateway.locale_of("UHANS") == "de-DE"
    assert len(fs.calls_to("users.info")) == 1  # from the cache
    await directory.close()


async def test_found_by_email_then_one_users_info_then_cached_across_restarts(
    fs: FakeSlack, db: Database
) -> None:
    first, directory = await attached_gateway(fs, db)
    found = await first.lookup_user("hans@example.com")
    assert found is not None and found.locale is None  # users.lookupByEmail has no locale
    assert await first.locale_of("UHANS") == "de-DE"
    assert await first.locale_of("UHANS") == "de-DE"
    assert len(fs.calls_to("users.info")) == 1
    await directory.close()
    with db.read() as session:
        stored = slack_people.user(session, "UHANS")
    assert stored is not None and stored[0]["locale"] == "de-DE"

    second, directory = await attached_gateway(fs, db)
    assert await second.locale_of("UHANS") == "de-DE"
    assert len(fs.calls_to("users.info")) == 1  # the durable cache answered
    await directory.close()


async def test_a_person_slack_gives_no_locale_is_asked_once(fs: FakeSlack, db: Database) -> None:
    gateway, directory = await attached_gateway(fs, db)
    await gateway.lookup_user("none@example.com")
    assert not await gateway.locale_of("UNONE")
    assert not await gateway.locale_of("UNONE")
    assert len(fs.calls_to("users.info")) == 1
    await directory.close()


async def test_the_order_team_config_slack_default(fs: FakeSlack, db: Database) -> None:
    gateway, directory = await attached_gateway(fs, db)
    locales = Locales(I18nConfig(default_locale="fr"), db, gateway)
    assert await locales.locale_for("UHANS") == "de"  # Slack's
    assert await locales.locale_for("UNONE") == "fr"  # no Slack locale: the default
    assert await locales.locale_for(None) == "fr"
    by_config = Locales(I18nConfig(locales={"hans@example.com": "es"}), db, gateway)
    assert await by_config.locale_for("UHANS") == "es"  # config over Slack, found by email
    with db.write() as session:
        slack_people.put_locale(session, "UHANS", "ja")
    by_config.forget("UHANS")  # as the /securitybot locale command does
    assert await by_config.locale_for("UHANS") == "ja"  # the team's choice over both
    off = Locales(I18nConfig(use_slack_locale=False), None, gateway)
    calls = len(fs.calls_to("users.info"))
    assert await off.locale_for("UHANS") == "en"
    assert len(fs.calls_to("users.info")) == calls
    await directory.close()


async def test_a_slack_error_falls_back_to_the_default(fs: FakeSlack, db: Database) -> None:
    gateway, directory = await attached_gateway(fs, db)
    fs.fail_next("users.info", error="internal_error", times=2)
    locales = Locales(I18nConfig(default_locale="pt-BR"), db, gateway)
    assert await locales.locale_for("UHANS") == "pt_BR"
    await directory.close()


async def test_the_teams_choice_is_read_once_for_a_burst_and_a_new_choice_at_once(
    fs: FakeSlack, db: Database
) -> None:
    gateway, directory = await attached_gateway(fs, db)
    locales = Locales(I18nConfig(), db, gateway)
    set_locale(db, SetLocale("UHANS", "fr"), "USEC", {"via": "test"})
    with counted(db) as seen:
        # The push lines, the DM update, the answer: one person, several messages at once.
        for _ in range(5):
            assert await locales.locale_for("UHANS") == "fr"
    assert seen["transactions"] == 1, seen
    set_locale(db, SetLocale("UHANS", "es"), "USEC", {"via": "test"})
    locales.forget("UHANS")  # as the /securitybot locale command does on its replica
    assert await locales.locale_for("UHANS") == "es"
    await directory.close()


async def test_a_batch_of_people_has_its_languages_read_in_one_query(
    fs: FakeSlack, db: Database
) -> None:
    gateway, directory = await attached_gateway(fs, db)
    locales = Locales(I18nConfig(use_slack_locale=False), db, gateway)
    set_locale(db, SetLocale("UHANS", "fr"), "USEC", {"via": "test"})
    people = ["UHANS", "UNONE", *(f"UMANY{i:03d}" for i in range(50))]
    with counted(db) as seen:
        await locales.prefetch(people)  # as a batch of DMs does before sending them
        said = [await locales.locale_for(person) for person in people]
    assert seen["transactions"] == 1, seen
    assert said[0] == "fr" and set(said[1:]) == {"en"}
    await directory.close()
