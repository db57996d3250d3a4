"""Who may post alerts and events (tokens, scopes, rate limits) and the adapters' templates."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from securitybot.config.base import Duration, _Section

Scope = Literal["ingest", "admin", "events"]
# ``ingest.tokens[].orgs`` entry that lets an events source speak for every org.
ALL_ORGS = "*"


class IngestToken(_Section):
    source: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    token: SecretStr | None = None
    hmac_secret: SecretStr | None = None
    # What the credential may do: "ingest" posts alerts and reads them; "admin" manages
    # exemptions and snoozes. A leaked monitoring token must not be able to silence anyone.
    # "events" posts AER activity events (POST /api/v1/events), which can sign people out.
    scopes: list[Scope] = Field(default=["ingest"], min_length=1)
    # The orgs an "events" credential may post events for ("*": every org); required with it.
    orgs: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> IngestToken:
        if not self.token and not self.hmac_secret:
            raise ValueError(f"source {self.source!r} needs a 'token' or an 'hmac_secret'")
        for name, secret in (("token", self.token), ("hmac_secret", self.hmac_secret)):
            if secret is not None and len(secret.get_secret_value()) < 16:
                raise ValueError(f"source {self.source!r}: {name} must be at least 16 characters")
        if "events" in self.scopes and not self.orgs:
            raise ValueError(
                f"source {self.source!r} has the 'events' scope but no 'orgs': list the org ids "
                f"it may post events for (or [{ALL_ORGS!r}] for every org)"
            )
        if self.orgs and "events" not in self.scopes:
            raise ValueError(
                f"source {self.source!r}: 'orgs' binds the 'events' scope, which it lacks"
            )
        if self.orgs and ALL_ORGS in self.orgs and len(self.orgs) > 1:
            raise ValueError(f"source {self.source!r}: orgs is either [{ALL_ORGS!r}] or org ids")
        return self


class RateLimit(_Section):
    # Token bucket per source: `rate` requests per second on average, bursts up to `burst`.
    rate: float = Field(default=50.0, gt=0, le=1_000_000)
    burst: int = Field(default=200, ge=1, le=1_000_000)


class IngestConfig(_Section):
    tokens: list[IngestToken] = Field(default_factory=list)
    replay_window: Duration = 300.0
    rate_limit: RateLimit = RateLimit()
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)

    @field_validator("rate_limits")
    @classmethod
    def _limits_name_sources(
        cls, v: dict[str, RateLimit], info: ValidationInfo
    ) -> dict[str, RateLimit]:
        known = {t.source for t in info.data.get("tokens", [])}
        for source in v:
            if source not in known:
                raise ValueError(f"{source!r} is not a source in ingest.tokens")
        return v

    def event_orgs(self, source: str) -> frozenset[str]:
        """The orgs ``source`` may post events for (``{"*"}``: any); empty: none."""
        for t in self.tokens:
            if t.source == source and t.orgs:
                return frozenset(t.orgs)
        return frozenset()

    @field_validator("tokens")
    @classmethod
    def _unique(cls, v: list[IngestToken]) -> list[IngestToken]:
        orgs: dict[str, frozenset[str]] = {}
        for t in v:
            if t.orgs is None:
                continue
            if orgs.setdefault(t.source, frozenset(t.orgs)) != frozenset(t.orgs):
                raise ValueError(
                    f"source {t.source!r} is listed twice with different orgs: an events "
                    "source is bound to one set of orgs, whichever credential it uses"
                )
        seen: set[str] = set()
        for t in v:
            for secret in (t.token, t.hmac_secret):
                if secret is None:
                    continue
                value = secret.get_secret_value()
                if value in seen:
                    raise ValueError("the same token or secret is used twice")
                seen.add(value)
        return v


class AdapterTemplates(_Section):
    """Templates (sandboxed Jinja2) that map a tool's item onto alert fields; unset: built-in."""

    user: str | None = None
    kind: str | None = None
    title: str | None = None
    description: str | None = None
    dedup_key: str | None = None
    occurred_at: str | None = None

    @field_validator("user", "kind", "title", "description", "dedup_key", "occurred_at")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from securitybot.ingest.adapters.templates import TemplateProblem, compile_template

        try:
            compile_template(v)
        except TemplateProblem as exc:
            raise ValueError(f"template does not compile: {exc}") from None
        return v


class AdapterConfig(AdapterTemplates):
    # Per-source overrides: the same tool fed by two teams may name the user differently.
    sources: dict[str, AdapterTemplates] = Field(default_factory=dict)
