"""Side effects the alert state machine asks for, as plain data.

The machine never performs I/O: it returns these and the caller turns them into outbox rows
in the same database transaction as the state change, so a crash can neither lose an effect
nor perform one for a state that was never committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from securitybot.i18n import N_


class EscalationReason(StrEnum):
    """Why the security team was pulled in; stored and shown, so the strings are a contract."""

    NOT_ME = "not_me"
    DUO_DENIED = "duo_denied"
    DUO_TIMEOUT = "duo_timeout"
    DUO_NOT_ENROLLED = "duo_not_enrolled"
    DUO_ERROR = "duo_error"
    NO_RESPONSE = "no_response"
    UNKNOWN_USER = "unknown_user"
    # On Enterprise Grid: the person is in the org, but in no workspace the app was added to,
    # so the bot cannot DM them; the team asks them another way (or adds the app there).
    NOT_REACHABLE = "not_reachable"
    # The alert names nobody Slack could look up (no user, or a login such as "root"): the
    # team decides, and nothing is asked of anyone.
    NO_USER = "no_user"
    ALWAYS_ESCALATE = "always_escalate"
    USER_EXEMPT = "user_exempt"
    DM_FAILED = "dm_failed"
    # The user reported the push as not theirs: the strongest compromise signal there is.
    DUO_FRAUD = "duo_fraud"
    # The bot's question or the user's reply vanished from the DM: whoever holds the session
    # may be covering their tracks.
    DM_DELETED = "dm_deleted"
    # The alert names someone else: the team fixes the mapping and looks at it themselves.
    WRONG_PERSON = "wrong_person"
    # One detection was about to DM more people than ``storm.max_people``: its DMs were held
    # (status ``held``) and a responder escalated the whole storm.
    STORM = "storm"


@dataclass(frozen=True)
class SendDM:
    """Ask the implicated user, in a DM with "yes, that was me" / "no" buttons."""


@dataclass(frozen=True)
class StartDuoPush:
    """Send the user a Duo push; its result comes back as a ``duo_*`` event."""


@dataclass(frozen=True)
class UpdateDM:
    """Replace the DM's buttons with ``text`` so the user sees the outcome and cannot re-click."""

    text: str


@dataclass(frozen=True)
class PostEscalation:
    """Post the alert to the security team's channel."""

    reason: EscalationReason


@dataclass(frozen=True)
class UpdateEscalation:
    """Re-render the existing channel post in place (claim, close, late answers)."""


@dataclass(frozen=True)
class ResetSessions:
    """Sign the implicated user out everywhere (``admin.users.session.reset``)."""


Effect = SendDM | StartDuoPush | UpdateDM | PostEscalation | UpdateEscalation | ResetSessions

CONFIRMED_DM_TEXT = N_("✅ Confirmed with Duo. Thanks!")

# What the user reads in place of the buttons once we stop waiting for them (English msgids:
# flows/conversation.update_dm shows them in the person's language). Reasons that
# arise before a DM exists (no user, unknown user, exempt, DM failed) have no entry on purpose.
DM_TEXTS: Mapping[EscalationReason, str] = MappingProxyType(
    {
        EscalationReason.NOT_ME: N_(
            "🚨 You said this wasn't you. The security team has been notified."
        ),
        EscalationReason.WRONG_PERSON: N_(
            "🔀 You said this alert is about someone else. The security team has been notified "
            "and will look into it."
        ),
        EscalationReason.NO_RESPONSE: N_(
            "⏰ No answer in time; the security team has been notified."
        ),
        EscalationReason.DUO_DENIED: N_(
            "❌ The Duo push was denied. The security team has been notified."
        ),
        EscalationReason.DUO_TIMEOUT: N_(
            "⏰ The Duo push wasn't answered in time. The security team has been notified."
        ),
        EscalationReason.DUO_ERROR: N_(
            "⚠️ We couldn't verify you with Duo. The security team has been notified."
        ),
        EscalationReason.DUO_NOT_ENROLLED: N_(
            "⚠️ You aren't enrolled in Duo, so we couldn't verify you. "
            "The security team has been notified."
        ),
        EscalationReason.DUO_FRAUD: N_(
            "🚨 You reported the Duo push as fraudulent. The security team has been notified."
        ),
        EscalationReason.ALWAYS_ESCALATE: N_(
            "✅ Confirmed with Duo. Thanks! Alerts of this kind are always reviewed by the "
            "security team, so they may follow up."
        ),
    }
)
