"""The demo's world: its people, their roles and workspaces, and the alerts it starts with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECURITY_CHANNEL = "CSECURITY"
INGEST_TOKEN = "demo-ingest-token-" + "0" * 16
DASHBOARD_USER = "demo"
IKEY = "DIDEMO0000000000000X"
SCENARIOS = ("attack",)


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    name: str
    role: str  # "employee", "responder" or "bystander"

    @property
    def first_name(self) -> str:
        return self.name.split(" ")[0]

    @property
    def dm(self) -> str:
        return "D" + self.id


PEOPLE = (
    Person("UALICE", "alice@example.com", "Alice Liddell", "employee"),
    Person("UBOB", "bob@example.com", "Bob Builder", "employee"),
    Person("UCAROL", "carol@example.com", "Carol Danvers", "employee"),
    Person("USAM", "sam@example.com", "Sam Spade", "responder"),
    Person("URILEY", "riley@example.com", "Riley Reid", "responder"),
    # Not on the security team: shows that triage buttons refuse (and log) outsiders.
    Person("UMALLORY", "mallory@example.com", "Mallory Moe", "bystander"),
)

# `demo --grid`: one Enterprise Grid org with the app installed org-wide and added to two
# workspaces; these people are in the second one (everyone else in the first).
GRID_ORG = "E0DEMO"
GRID_WORKSPACES = ("T1", "T2")
IN_SECOND_WORKSPACE = frozenset({"UBOB", "URILEY"})

# The on-call responder whose pager the console shows, and their PagerDuty user id.
PAGER_OWNER = "USAM"


def pagerduty_id(person: Person) -> str:
    return "P" + person.id.removeprefix("U")


# Posted through the real ingest API once the server is up (the happy path starts from these).
SEED_ALERTS: tuple[dict[str, Any], ...] = (
    {
        "kind": "sensitive_command",
        "user": "alice@example.com",
        "title": "flurb -export on accountingserver01",
        "dedup_key": "demo-seed-alice",
        "details": {"host": "accountingserver01", "command": "flurb -export"},
    },
    {
        "kind": "new_login_location",
        "user": "bob@example.com",
        "title": "Sign-in from Lisbon",
        "dedup_key": "demo-seed-bob",
        "details": {"location": "Lisbon, Portugal", "ip": "198.51.100.23"},
    },
    {
        "kind": "ssh_key_added",
        "user": "carol@example.com",
        "title": "SSH key added",
        "dedup_key": "demo-seed-carol",
        "details": {"host": "buildserver02", "fingerprint": "SHA256:q3Xz…f8"},
    },
    # Nobody in Slack has this address: the bot cannot ask, so the team gets it at once.
    {
        "kind": "mass_download",
        "user": "eve.contractor@example.com",
        "title": "5,000 files downloaded",
        "dedup_key": "demo-seed-unknown",
        "details": {"count": 5000, "service": "Google Drive"},
    },
)
