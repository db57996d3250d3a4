"""What the console and the attack scenario take of the running demo (``app.Demo``), so that
``app`` can import them and they need not import ``app``."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from securitybot.demo.cast import Person
from securitybot.demo.fake_duo import FakeDuo
from securitybot.demo.fake_okta import FakeOkta
from securitybot.demo.fake_pagerduty import FakePagerDuty
from securitybot.demo.fake_slack import FakeSlack


class World(Protocol):
    fs: FakeSlack
    pd: FakePagerDuty
    ack_timeout: float
    duo_timeout: float
    signing_secret: str
    push_answers: dict[str, str]
    scenario_running: bool
    dashboard_password: str
    narration: list[dict[str, Any]]

    @property
    def fake(self) -> FakeDuo | FakeOkta: ...

    @property
    def base_url(self) -> str: ...

    @property
    def enterprise(self) -> str | None: ...

    def team_of(self, user_id: str) -> str: ...

    def push_user(self, email: str) -> str: ...

    def dm_history(self, person: Person) -> list[dict[str, Any]]: ...

    def person(self, user_id: str) -> Person | None: ...

    def say(self, text: str) -> None: ...

    def start_attack(self) -> None: ...

    def post_alert(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def get_alert(self, alert_id: int) -> dict[str, Any]: ...

    def record_typed(self, person: Person, text: str) -> str: ...

    def slack_post(self, body: str) -> httpx.Response: ...
