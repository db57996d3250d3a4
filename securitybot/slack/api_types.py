"""What the Slack gateway speaks in: its errors ("retry later" or permanent), the person it
returns (built from a Slack user object: users.info, users.lookupByEmail, users.list members,
user_change and team_join events), and slack_sdk's retry handlers minus blind re-posts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState


class SlackRetryLater(Exception):
    """Try again later. ``refused``: Slack answered that it did nothing (rate limited), as
    opposed to a dropped connection or a server error, after which a post may have landed."""

    def __init__(
        self, method: str, reason: str, retry_after: float | None = None, *, refused: bool = False
    ) -> None:
        super().__init__(f"{method}: {reason}")
        self.retry_after = retry_after
        self.refused = refused
        self.spends_attempt = True


# A workspace's token does not work (revoked before its app_uninstalled reached us, expired,
# its account deactivated, ...): Slack's documented auth errors (docs.slack.dev/reference/
# methods/users.list, "Errors"). That workspace cannot answer; others still can.
AUTH_ERRORS = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked",
                         "token_expired", "no_permission", "org_login_required",
                         "ekm_access_denied", "team_access_not_granted"})  # fmt: skip


class SlackPermanentError(Exception):
    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method}: {error}")
        self.error = error


class WorkspaceUnusable(SlackPermanentError):
    """No call can go to workspace ``team_id``: its bot token expired and Slack refused to
    refresh it for good (``error``: oauth.v2.access's, e.g. ``invalid_client_id``). Like an
    auth error, it is that workspace's problem; the others still answer."""

    def __init__(self, method: str, error: str, team_id: str) -> None:
        super().__init__(method, error)
        self.team_id = team_id


def workspace_unusable(exc: SlackPermanentError) -> bool:
    """Whether ``exc`` says its workspace cannot answer at all (skip it, ask the others)."""
    return exc.error in AUTH_ERRORS or isinstance(exc, WorkspaceUnusable)


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str
    real_name: str
    first_name: str
    email: str | None
    tz: str | None
    is_bot: bool
    deleted: bool
    # Enterprise Grid: the workspaces the person belongs to (users.info's enterprise_user.teams),
    # and whether any of them is one the app was added to (False: nobody can DM them).
    teams: tuple[str, ...] = ()
    reachable: bool = True
    enterprise: str | None = None  # enterprise_user.enterprise_id: the person's Grid org
    # Slack's language for them ("de-DE"): users.info and users.list answer it with
    # include_locale=true; users.lookupByEmail never does (None: not asked yet).
    locale: str | None = None


class _NoBlindRepost(AsyncConnectionErrorRetryHandler):
    """slack_sdk's one retry after a dropped connection, except for chat.postMessage: the
    dropped post may well have landed. The outbox retries it instead, looking first."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if request.url.split("?", 1)[0].endswith("/chat.postMessage"):
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


def retry_handlers() -> list[AsyncRetryHandler]:
    """For AsyncWebClient(retry_handlers=...): the defaults, minus blind re-posts."""
    return [_NoBlindRepost()]


def is_user_id(channel: str) -> bool:
    return channel[:1] in ("U", "W")


def user_from(data: dict[str, Any]) -> SlackUser:
    profile = data.get("profile") or {}
    real = profile.get("real_name") or data.get("real_name") or data.get("name") or data["id"]
    first = profile.get("first_name") or real.split(" ")[0]
    org = data.get("enterprise_user") or {}
    teams = org.get("teams") or ([data["team_id"]] if data.get("team_id") else [])
    return SlackUser(
        id=data["id"],
        name=data.get("name") or data["id"],
        real_name=real,
        first_name=first,
        email=profile.get("email"),
        tz=data.get("tz"),
        is_bot=bool(data.get("is_bot")),
        deleted=bool(data.get("deleted")),
        teams=tuple(str(t) for t in teams),
        enterprise=org.get("enterprise_id"),
        locale=data.get("locale") or None,
    )
