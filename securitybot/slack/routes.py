"""Which channel an escalation goes to (``escalation.routes``): by the implicated person's
workspace (``team_id``) or Enterprise Grid org (``enterprise_id``), else
``slack.security_channel``.

The person's workspaces and org come from the same ``users.info`` / ``users.lookupByEmail``
answer the DM used (cached): ``team_id``, and on Enterprise Grid ``enterprise_user.teams`` and
``enterprise_user.enterprise_id``. A route by workspace beats one by org; among workspaces, the
first route listed that matches any of the person's workspaces wins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from securitybot.config import EscalationRoute, Settings
from securitybot.slack.gateway import SlackGateway, SlackUser

logger = logging.getLogger(__name__)


def route_for(routes: Sequence[EscalationRoute], user: SlackUser | None) -> EscalationRoute | None:
    """The route for ``user``, or None (the default channel)."""
    if user is None:
        return None
    teams = set(user.teams)
    for route in routes:
        if route.team_id is not None and route.team_id in teams:
            return route
    for route in routes:
        if route.enterprise_id is not None and route.enterprise_id == user.enterprise:
            return route
    return None


async def escalation_channel(
    settings: Settings, slack: SlackGateway | None, user_id: str | None
) -> str | None:
    """The channel an escalation about ``user_id`` goes to. A person Slack cannot look up
    right now goes to the default channel: an escalation is never held up by routing."""
    default = settings.slack.security_channel
    routes = settings.escalation.routes
    if not routes or slack is None or not user_id:
        return default
    try:
        user = await slack.lookup_user(user_id)
    except Exception as exc:  # SlackRetryLater, SlackPermanentError, a bug: the default
        logger.warning("escalation routing: cannot look up %s (%s); default channel",
                       user_id, exc)  # fmt: skip
        return default
    route = route_for(routes, user)
    return route.channel if route is not None else default
