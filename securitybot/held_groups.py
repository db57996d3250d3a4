"""What held resets and storms share: a group of held work that one responder decides on.

AER holds an org's session resets past its reset budget (``aer.budget``); the storm guard holds
the DMs of one detection that is about to reach too many people (``storms``). Each is a group
with a status, a count the responder looked at, and actions (release, discard, escalate all)
that Slack buttons, the dashboard and the API all take the same way: responders only, nobody on
a group that holds their own account, refused if more was held since the decider looked. This
module names that shape; ``slack.held_group_buttons``, ``dashboard.held_group_views`` and
``api.held_groups`` serve any group that has it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from securitybot.store.db import Database


class NotFound(Exception):
    pass


class AlreadyResolved(Exception):
    def __init__(self, group_id: int, status: str, resolved_by: str | None, message: str) -> None:
        # Plain values: the transaction is rolled back (and the row expired) when this is seen.
        super().__init__(message)
        self.group_id, self.status, self.resolved_by = group_id, status, resolved_by


class Changed(Exception):
    """More was held since the caller looked: it must look again before deciding."""

    def __init__(self, shown: int, now: int, counted: str) -> None:
        super().__init__(f"{now} {counted} are held now, not {shown}")
        self.shown, self.now = shown, now


class SelfInvolved(Exception):
    """A responder may not decide on a group that holds their own account."""


Decide = Callable[[Database, int, str, str, dict[str, Any], int | None], object]


@dataclass(frozen=True)
class HeldGroup:
    """One kind of held group, as its three surfaces need it."""

    noun: str  # "held resets", "storm": "no such storm"
    id_param: str  # the group's id in a route's path: "batch_id", "storm_id"
    counted: str  # what the count counts: "resets", "alerts"
    count_field: str  # the form and JSON field with the count the decider saw
    already: str  # "{these} already {status} by {by}" with {id}: "storm {id} was"
    # In Slack, to the clicker, in the team's language (msgids, translated where shown):
    # "This storm was already decided ({status}) by {user}."
    already_here: str
    changed_here: str  # "{now} alerts are held now, not the {shown} this message showed. …"
    self_refusal: str  # also the API's 403 reason (in English there)
    actions: Mapping[str, str]  # action -> its name in the audit log ("release_storm")
    # decide(db, id, action, actor, via, shown), in one transaction; raises the errors above.
    decide: Decide
    refresh: Callable[[Database, int], None]  # queue an update of the group's message
    audit_refusal: Callable[[Database, int, str, str, str], None]  # db, id, actor, reason, what
    public: Callable[[Session, int], dict[str, Any]]  # the API's view of one group
    listing: Callable[[Session, bool, int], list[dict[str, Any]]]  # include_all, limit


def parse_value(raw: str) -> tuple[int, int] | None:
    """A decision button's value, ``"<group id>:<count shown>"``; None if it is not one."""
    group, _, shown = raw.partition(":")
    if not (group.isascii() and group.isdigit() and shown.isascii() and shown.isdigit()):
        return None
    if len(group) > 18 or len(shown) > 9:
        return None
    return int(group), int(shown)
