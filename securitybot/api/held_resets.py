"""``/api/v1/aer/held``: resets held past an org's reset budget, released or discarded by a
responder (``admin`` scope, ``requested_by`` a responder, audited with the token's source)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from securitybot.api import held_groups
from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.slack.held_resets import GROUP


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requested_by: str = Field(pattern=SLACK_ID_RE.pattern)
    # The number of held resets the responder looked at: refused (409) if more were held since.
    resets: int | None = Field(default=None, ge=0, le=1_000_000)


routes = held_groups.routes(GROUP, "/api/v1/aer/held", "held", DecisionIn)
