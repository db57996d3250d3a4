"""Why AER decided what it did, as a message template and its values (pure).

A :class:`Reason` reads in English exactly as AER has always recorded it (the anomaly's
``reason``: stored, returned by the API, logged) and, where the team reads it in Slack, in the
team's language: the template is translated (trusted text, like every message of ours) and the
values (anomaly types, rules, user, session and org ids, times) are escaped.

It travels beside the English in outbox payloads and notification rows as JSON
(:meth:`Reason.to_json`); :meth:`Reason.from_json` accepts only templates of this module, so a
payload or row written by another version (or without it, before it existed) shows its stored
English instead.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from securitybot.i18n import ENGLISH, N_, Translator
from securitybot.slack import mrkdwn as md

# The anomaly a reason is about: "tor (tor_exit_node) for UALICE".
WHAT = N_("{type} ({rule}) for {user}")
DISABLED = N_("{what}: AER is disabled for org {org}")
EXCLUDED_USER = N_("{what}: the user is excluded from AER")
EXCLUDED_GROUP = N_("{what}: the user is in excluded group {groups}")
ALREADY_RESET = N_("{what}: session {session} was already reset at {at}")
ALREADY_RESET_LAST = N_("{what}: session {session} was already reset at the last reset")
ALREADY_ESCALATED = N_("{what}: session {session} was already escalated for persistence")
# {action} is the configured response as config names it: notify_only, ask_user, reset_sessions.
RESPONSE = N_("{what}: the org's response to {type} is {action}")
PERSISTENCE = N_(
    "{what}: persistence after reset at {at}: new session {session} {ago} after the user's "
    "sessions were reset; escalating to humans instead of resetting again"
)
COOLDOWN = N_(
    "{what}: sessions were reset {ago} ago at {at}, within the {cooldown} cool-down; notifying "
    "instead of resetting again"
)
HELD = N_(
    "{reason}; held: org {org}'s reset budget ({budget}) is spent, so a responder must release "
    "or discard this reset"
)
RELEASED = N_("{reason}; released by {actor}")
# An org's reset budget: "3 per 1 h" (the span in unit symbols, the same in every language).
BUDGET = N_("{count} per {span}")

TEMPLATES = frozenset(
    {
        WHAT, DISABLED, EXCLUDED_USER, EXCLUDED_GROUP, ALREADY_RESET, ALREADY_RESET_LAST,
        ALREADY_ESCALATED, RESPONSE, PERSISTENCE, COOLDOWN, HELD, RELEASED, BUDGET,
    }
)  # fmt: skip
# One value's longest shown form in Slack (ids, rules, ISO times are far shorter).
_VALUE_LIMIT = 200
_MAX_DEPTH = 8

Value: TypeAlias = "str | int | float | Reason"


@dataclass(frozen=True, slots=True)
class Reason:
    """``template`` (one of :data:`TEMPLATES`, English) filled with ``args``; an arg may be
    another reason (``held`` wraps the decision it holds back)."""

    template: str
    args: Mapping[str, Value] = field(default_factory=dict)

    def english(self) -> str:
        """The reason as recorded and returned by the API: plain text, nothing escaped."""
        return self.template.format(
            **{k: v.english() if isinstance(v, Reason) else v for k, v in self.args.items()}
        )

    def text(self, t: Translator = ENGLISH) -> str:
        """mrkdwn in ``t``'s language: the template as trusted text, every value escaped."""
        values = {
            k: v.text(t) if isinstance(v, Reason) else md.inline(v, _VALUE_LIMIT)
            for k, v in self.args.items()
        }
        return t.gettext(self.template).format(**values)

    def to_json(self) -> dict[str, Any]:
        args = {k: v.to_json() if isinstance(v, Reason) else v for k, v in self.args.items()}
        return {"template": self.template, "args": args}

    @classmethod
    def from_json(cls, data: Any, _depth: int = 0) -> Reason | None:
        """The reason ``to_json`` wrote; None for anything else (absent, another version's
        template, missing or extra values), so the caller shows the stored English."""
        if not isinstance(data, Mapping) or _depth > _MAX_DEPTH:
            return None
        template, raw = data.get("template"), data.get("args")
        if template not in TEMPLATES or not isinstance(raw, Mapping):
            return None
        args: dict[str, Value] = {}
        for key, value in raw.items():
            if isinstance(value, Mapping):
                nested = cls.from_json(value, _depth + 1)
                if nested is None:
                    return None
                args[str(key)] = nested
            elif isinstance(value, str | int | float) and not isinstance(value, bool):
                args[str(key)] = value
            else:
                return None
        reason = cls(str(template), args)
        try:
            reason.english()
        except (KeyError, IndexError, ValueError):
            return None
        if set(args) != _fields(reason.template):
            return None
        return reason


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def shown(english: str, data: Any, t: Translator, limit: int = 500) -> str:
    """What Slack shows of a recorded reason: ``data`` (its JSON) in ``t``'s language when it
    says what ``english`` says, else the stored ``english`` escaped as before. The check keeps
    a row or payload that an older replica changed (its English only) from showing a stale
    message during a rolling upgrade."""
    reason = Reason.from_json(data)
    if reason is None or reason.english() != english:
        return md.inline(english, limit)
    return md.clip(reason.text(t), limit)
