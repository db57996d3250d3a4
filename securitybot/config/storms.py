"""The storm guard: how many people one detection may DM in a window."""

from __future__ import annotations

from pydantic import Field

from securitybot.config.base import Duration, _Section


class StormLimit(_Section):
    """One kind's storm limit; unset fields take ``storm.max_people`` / ``storm.window``."""

    max_people: int | None = Field(default=None, ge=0, le=1_000_000)
    window: Duration | None = Field(default=None, gt=0, le=7 * 86400.0)


class StormConfig(_Section):
    """The storm guard: one detection (same kind and source) DMs at most ``max_people``
    distinct people in any ``window`` (counted in the database, so across replicas); the rest
    are held for a responder to release, discard or escalate. ``kinds.<kind>`` overrides."""

    max_people: int = Field(default=25, ge=0, le=1_000_000)
    window: Duration = Field(default=600.0, gt=0, le=7 * 86400.0)
    kinds: dict[str, StormLimit] = Field(default_factory=dict)

    def limit(self, kind: str) -> tuple[int, float]:
        """(max_people, window seconds) for ``kind``."""
        own = self.kinds.get(kind)
        people = own.max_people if own is not None and own.max_people is not None else None
        window = own.window if own is not None and own.window is not None else None
        return (self.max_people if people is None else people,
                self.window if window is None else window)  # fmt: skip
