"""What every configuration section shares: the error, the strict base model, durations, times."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# Re-exported: parse_duration was defined in the configuration first.
from securitybot.durations import parse_duration as parse_duration


class ConfigError(Exception):
    """A configuration problem, phrased as one line that names the key."""


def _duration_or_off(value: Any) -> float:
    return parse_duration(value, zero_is_off=True)


Duration = Annotated[float, BeforeValidator(parse_duration)]
# An interval where 0 means "off" (documented so beside each such key).
DurationOrOff = Annotated[float, BeforeValidator(_duration_or_off)]

Severity = Literal["low", "medium", "high", "critical"]

# A Slack user (U…, W…) or user group (S…) id.
SLACK_REF = r"^(U|W|S)[A-Z0-9]{2,30}$"


class _Section(BaseModel):
    # Unknown keys are almost always typos ("ack_timout"); refusing them is kinder than ignoring.
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        # "${SLACK_BOT_TOKEN:-}" yields "", which means "not configured", not "an empty token".
        if isinstance(data, dict):
            return {
                k: v
                for k, v in data.items()
                if not (v == "" and k in cls.model_fields and cls.model_fields[k].default is None)
            }
        return data


def http_url(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return v.rstrip("/")


def unquoted_time(value: Any) -> Any:
    """Refuse a time of day YAML read as a number, with the quoted form to write instead."""
    # YAML 1.1 reads an unquoted 10:00 as the base-60 number 600 (PyYAML does).
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        raise ValueError(
            f"YAML read an unquoted time as the number {value}: quote it, as in "
            f'"{value // 60:02d}:{value % 60:02d}"'
        )
    return value


# A time of day, HH:MM (24 h).
ClockTime = Annotated[
    str, BeforeValidator(unquoted_time), Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
]
