"""Run ``securitybot`` in a Slack whose time runs ``scale`` times faster (bench/storm.py only).

    python -m bench.storm_shim SCALE serve --config PATH

The fake Slack of bench/storm_slack.py grants Slack's documented rates ``scale`` times a real
second. So that the bot paces itself in the same time frame (as it would against a real Slack
at scale 1), its own copy of Slack's figures is scaled alike before it starts: every rate in
``securitybot.slack.tiers`` (the module constants whose names contain ``PER_``) is multiplied
by ``scale``, the burst of every ``tiers.Limits`` the bot builds is kept the same number of calls
(``burst_seconds`` divided by ``scale``), and every duration in ``securitybot.slack.gateway``
counted in seconds of Slack's limits (``PACE_FOR``, if present) is divided by it. Nothing else
is touched: the outbox's backoffs, polling intervals and deadlines run in real time, so at a
high scale they weigh more than they would against the real Slack.
"""

from __future__ import annotations

import runpy
import sys
from typing import Any


def scale_slack_figures(scale: float) -> list[str]:
    """Scale the bot's copy of Slack's limits; the names scaled, for the printout."""
    from securitybot.slack import gateway, tiers

    scaled: list[str] = []
    for name in dir(tiers):
        value: Any = getattr(tiers, name)
        if not name.isupper() or "PER_" not in name:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            setattr(tiers, name, value * scale)
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, int | float) for v in value.values())
        ):
            setattr(tiers, name, {k: v * scale for k, v in value.items()})
        else:
            continue
        scaled.append(f"tiers.{name}")
    # Limits' burst is seconds of the rate: keep it the same number of calls at any scale, for
    # every Limits the bot builds (the gateway's default, or one wiring passes it).
    limits_init = tiers.Limits.__init__

    def scaled_init(self: Any, *args: Any, **kw: Any) -> None:
        limits_init(self, *args, **kw)
        self.burst_seconds = self.burst_seconds / scale

    setattr(tiers.Limits, "__init__", scaled_init)  # noqa: B010 (on purpose)
    scaled.append("tiers.Limits.burst_seconds")
    if isinstance(getattr(gateway, "PACE_FOR", None), int | float):
        setattr(gateway, "PACE_FOR", gateway.PACE_FOR / scale)  # noqa: B010
        scaled.append("gateway.PACE_FOR")
    return scaled


def main() -> None:
    scale = float(sys.argv.pop(1))
    names = scale_slack_figures(scale)
    print(f"storm_shim: Slack's figures x{scale:g} in the bot: {', '.join(names)}",
          file=sys.stderr, flush=True)  # fmt: skip
    sys.argv[0] = "securitybot"
    runpy.run_module("securitybot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
