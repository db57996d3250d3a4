"""Storms against Slack's own limits (issue #27.6): a fake Slack that enforces Slack's
documented rate limits, scaled in time, and two bad days.

    .venv/bin/python bench/storm.py [--backend sqlite|postgres|both] [--scenario new|misfire|both]
                                    [--scale 10] [--people 600] [--directory N]
                                    [--misfire-people 400] [--timeout 40]

For each backend a real `securitybot serve` runs on a throwaway database (a temp SQLite file,
or a fresh PostgreSQL schema at $SECURITYBOT_TEST_POSTGRES_URL), against bench/storm_slack.py:
a fake Slack Web API that answers HTTP 429 + Retry-After + {"ok": false, "error":
"ratelimited"} past each method's tier per workspace (Tier 2 20/min, Tier 3 50/min, Tier 4
100/min, with `securitybot.slack.tiers.Limits`' burst), past one post a second per channel,
and past the workspace-wide post ceiling (300/min), all of it --scale times faster (at 60 a
Slack-minute lasts one real second; every duration below is in Slack time). The bot's own
copy of Slack's rates is scaled alike (bench/storm_shim.py); its other timers (outbox backoff,
polling) run in real time, so keep --scale modest (default 10: a Slack-minute is 6 s).

--scenario new: --people alerts (default 600) for as many people the bot has never seen (the
fake's directory has them, and --directory more people in all, default as many; the bot's
cache is empty), posted at once. Printed: the time until everyone is DMed, the lower bound for
the best call pattern Slack's documentation allows under the same limits (users.list pages of
1,000, then one chat.postMessage to each user id, computed by replaying that pattern against
the same limits), their ratio beside the goal (within 1.2x), the calls per method, the 429s,
and the median/p90 wait per person (alert POST to DM). The storm guard is set out of the way
(storm.max_people 1,000,000): this is a real incident that reaches everyone.

--scenario misfire: one detection (same kind and source) fires for --misfire-people people
(default 400) within one Slack-minute, with the storm guard at its defaults. Printed: people
DMed and channel posts beside the goal (at most storm.max_people DMs, one channel message),
the chat.update calls to that message, and the alerts held.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import latency
from bench.common import database, percentile
from bench.latency import _email, _load, _post_all, _user_id
from bench.storm_slack import USERS_LIST_MAX, WORKSPACE_POSTS_PER_MINUTE, StormLimits, StormSlack
from securitybot.config import StormConfig
from securitybot.demo import FakeDuo
from securitybot.slack.tiers import POST

GOAL_RATIO = 1.2
SECURITY_CHANNEL = "CSECURITY"


def lower_bound(people: int, directory: int, posts_per_minute: float) -> float:
    """Slack-seconds until the last of ``people`` is DMed by the best call pattern Slack's
    documentation allows: users.list pages of 1,000 one after another (each needs the previous
    cursor), then one chat.postMessage per user id as soon as the limits allow, replayed
    against the same limits as the fake (scale 1: Slack time), every answer instant."""
    limits = StormLimits(1.0, posts_per_minute)

    def call(method: str, channel: str | None, t: float) -> float:
        while (wait := limits.try_call(method, channel, t)) > 0:
            t += wait + 1e-9  # past the float rounding of the refill
        return t

    t, known_at = 0.0, []
    for page in range(-(-directory // USERS_LIST_MAX)):
        t = call("users.list", None, t)
        known_at += [t] * min(USERS_LIST_MAX, directory - page * USERS_LIST_MAX)
    last = 0.0
    for i, at in enumerate(sorted(known_at[:people])):
        last = call(POST, f"D{i}", max(last, at))
    return last


@contextmanager
def serve(db_url: str, fs: StormSlack, fd: FakeDuo, scale: float,
          storm: dict[str, Any]) -> Iterator[str]:  # fmt: skip
    """bench/latency.py's `serve`, through bench/storm_shim.py (the bot's copy of Slack's
    rates scaled as the fake's are) and with Slack's limits left in; yields its URL."""
    shim = (sys.executable, "-m", "bench.storm_shim", str(scale))
    with latency.serve(db_url, fs, fd, extra={"storm": storm}, command=shim,
                       lift_slack_limits=False) as (base, _pid):  # fmt: skip
        yield base


def _post(base: str, people: int, rate: float, run_id: str) -> dict[str, Any]:
    """POST one alert per person (bench/latency.py's load: kind sensitive_command, source
    bench); from a separate process unless the load is tiny (the smoke test)."""
    if people <= 100:
        return asyncio.run(_post_all(base, list(range(people)), rate, 16, run_id))
    return _load(base, list(range(people)), rate, 16, run_id)


def _directory(fs: StormSlack, n: int) -> None:
    for i in range(n):
        fs.add_user(_user_id(i), _email(i), f"Bench User{i}")
    fs.add_channel(SECURITY_CHANNEL)


def run_new(backend: str, people: int, directory: int, scale: float,
            timeout: float) -> dict[str, Any]:  # fmt: skip
    minute = 60.0 / scale  # one Slack-minute in real seconds
    with StormSlack(scale) as fs, FakeDuo() as fd:
        _directory(fs, max(people, directory))
        with database(backend) as url, serve(url, fs, fd, scale, {"max_people": 1_000_000}) as base:
            res = _post(base, people, 200.0, "storm")
            started: dict[str, float] = res["started"]
            deadline = time.monotonic() + timeout * minute
            while len(fs.dm_at) < people and time.monotonic() < deadline:
                time.sleep(0.1)
            dm_at = dict(fs.dm_at)
            # fs.dm_at is monotonic; the POST starts are wall-clock: bring both to one clock.
            offset = time.time() - time.monotonic()
            # Every call from serve's start: a directory sync at start-up counts too.
            records = list(fs.records)
    # From the first alert POST (the load generator's process takes a while to start).
    t0 = min(started.values())
    reached = {u: at + offset for u, at in dm_at.items() if u in started}
    waits = [(reached[u] - started[u]) / minute for u in reached]
    calls: dict[str, int] = {}
    limited: dict[str, int] = {}
    for r in records:
        calls[r.method] = calls.get(r.method, 0) + 1
        if r.status == 429:
            limited[r.method] = limited.get(r.method, 0) + 1
    took = (max(reached.values()) - t0) / minute if reached else float("nan")
    bound = lower_bound(people, max(people, directory), WORKSPACE_POSTS_PER_MINUTE) / 60.0
    return {
        "reached": len(reached), "people": people, "errors": len(res["errors"]),
        "minutes": took, "bound": bound, "ratio": took / bound if bound > 0 else float("inf"),
        "calls": dict(sorted(calls.items())), "limited": dict(sorted(limited.items())),
        "p50": percentile(waits, 50), "p90": percentile(waits, 90),
        "per_minute": _per_minute(sorted(reached.values()), t0, minute),
    }  # fmt: skip


def _per_minute(times: list[float], t0: float, minute: float) -> list[int]:
    """DMs reached in each Slack-minute from the first alert."""
    if not times:
        return []
    out = [0] * (int((times[-1] - t0) / minute) + 1)
    for at in times:
        out[int((at - t0) / minute)] += 1
    return out


def _alert_statuses(url: str) -> dict[str, int]:
    from securitybot.store.models import Alert

    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            rows = c.execute(sa.select(Alert.status, sa.func.count()).group_by(Alert.status))
            return {str(s): int(n) for s, n in rows}
    finally:
        eng.dispose()


def run_misfire(backend: str, people: int, scale: float, timeout: float) -> dict[str, Any]:
    minute = 60.0 / scale
    max_people = StormConfig().max_people
    with StormSlack(scale) as fs, FakeDuo() as fd:
        _directory(fs, people)
        with database(backend) as url, serve(url, fs, fd, scale, {}) as base:
            # One detection for everyone within one Slack-minute (same kind, same source).
            res = _post(base, people, people / minute, "misfire")
            # Settled: no alert still `new` (each one DMed or held), a channel post, and no
            # new DM or post for two Slack-minutes.
            deadline = time.monotonic() + timeout * minute
            last, quiet_since = (-1, -1), time.monotonic()
            while time.monotonic() < deadline:
                now = (len(fs.dm_at), fs.posts_to(SECURITY_CHANNEL))
                if now != last:
                    last, quiet_since = now, time.monotonic()
                elif (now[1] > 0 and time.monotonic() - quiet_since > 2 * minute
                      and not _alert_statuses(url).get("new")):  # fmt: skip
                    break
                time.sleep(0.5)
            records = list(fs.records)  # from serve's start
            statuses = _alert_statuses(url)
            dms, posts = len(fs.dm_at), fs.posts_to(SECURITY_CHANNEL)
    updates = sum(1 for r in records if r.method == "chat.update" and r.status == 200)
    limited: dict[str, int] = {}
    for r in records:
        if r.status == 429:
            limited[r.method] = limited.get(r.method, 0) + 1
    return {"people": people, "errors": len(res["errors"]), "dms": dms, "posts": posts,
            "updates": updates, "limited": limited, "max_people": max_people,
            "statuses": statuses}  # fmt: skip


def _print_new(backend: str, r: dict[str, Any], scale: float) -> None:
    ok = r["ratio"] <= GOAL_RATIO and r["reached"] == r["people"]
    print(f"new people {backend:8s} (scale x{scale:g}: a Slack-minute lasts {60 / scale:g} s): "
          f"{r['reached']}/{r['people']} people DMed in {r['minutes']:.2f} Slack-minutes; "
          f"lower bound {r['bound']:.2f} (users.list pages, then chat.postMessage per user id, "
          f"same limits); ratio {r['ratio']:.2f}x, goal within {GOAL_RATIO:g}x: "
          f"{'OK' if ok else 'ABOVE GOAL'}", flush=True)  # fmt: skip
    print(f"    wait per person (alert POST to DM): median {r['p50']:.2f}, p90 {r['p90']:.2f} "
          f"Slack-minutes; {sum(r['limited'].values())} answers were 429; "
          f"{r['errors']} POST errors", flush=True)  # fmt: skip
    print("    calls from serve's start: " + ", ".join(f"{m} {n}" + (f" ({r['limited'][m]} x 429)"
                                                  if r["limited"].get(m) else "")
                                  for m, n in r["calls"].items()), flush=True)  # fmt: skip
    print(f"    DMs per Slack-minute: {r['per_minute']}", flush=True)


def _print_misfire(backend: str, r: dict[str, Any], scale: float) -> None:
    ok = r["dms"] <= r["max_people"] and r["posts"] == 1
    print(f"misfire    {backend:8s} (scale x{scale:g}): {r['people']} people hit by one "
          f"detection within a Slack-minute: {r['dms']} DMed (goal at most storm.max_people "
          f"= {r['max_people']}), {r['posts']} security-channel post(s) (goal 1), "
          f"{r['updates']} chat.update; {'OK' if ok else 'ABOVE GOAL'}", flush=True)  # fmt: skip
    by_method = ", ".join(f"{m} {n}" for m, n in sorted(r["limited"].items()))
    print(f"    alerts by status: {r['statuses']}; {sum(r['limited'].values())} answers were "
          f"429 ({by_method or 'none'}); "
          f"{r['errors']} POST errors", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--scenario", choices=["new", "misfire", "both"], default="both")
    ap.add_argument(
        "--scale",
        type=float,
        default=10.0,
        help="Slack's time runs this many times faster (60: a minute per second)",
    )
    ap.add_argument("--people", type=int, default=600, help="--scenario new: people hit")
    ap.add_argument("--directory", type=int, default=0,
                    help="people in the workspace (default: --people)")  # fmt: skip
    ap.add_argument("--misfire-people", type=int, default=400)
    ap.add_argument("--timeout", type=float, default=40.0,
                    help="give up after this many Slack-minutes")  # fmt: skip
    args = ap.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    scenarios = ["new", "misfire"] if args.scenario == "both" else [args.scenario]
    print(f"fake Slack: Tier 2 20/min, Tier 3 50/min, Tier 4 100/min per method, 1 post/s per "
          f"channel, {WORKSPACE_POSTS_PER_MINUTE:g} posts/min per workspace; scale x"
          f"{args.scale:g} (one Slack-minute = {60 / args.scale:g} s)", flush=True)  # fmt: skip
    for b in backends:
        if "new" in scenarios:
            r = run_new(b, args.people, args.directory, args.scale, args.timeout)
            _print_new(b, r, args.scale)
        if "misfire" in scenarios:
            _print_misfire(b, run_misfire(b, args.misfire_people, args.scale, args.timeout),
                           args.scale)  # fmt: skip


if __name__ == "__main__":
    main()
