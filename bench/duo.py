"""The Duo path at scale: thousands of people answer "it was me" at once and approve their
pushes at random times over the next minute (issue #25.5).

    .venv/bin/python bench/duo.py [--alerts 2000] [--window 60] [--backend sqlite|postgres|both]

For each backend `securitybot serve` runs as in bench/latency.py, with the fake Slack and the
fake Duo (which long-polls `auth_status` as Duo documents: a push's first status at once, then
held until it changes, and pushes time out after 60 s). --alerts alerts for as many people are
posted and DMed; then every person clicks "Yes, it was me" at once (signed Slack block actions,
32 in flight). Each person approves their push at a random moment, uniform over the --window
seconds after the clicks (at once if their push has not reached Duo by then). Printed:

- how long until every push reached Duo, and the pushes started per second;
- for every alert, the time from its approval to its `resolved` (its `updated_at`; both ends
  use this machine's wall clock): p50/p99/max, beside the limit: p99 within 1 s;
- the server's CPU (cores, user + system) from the clicks until the last alert resolved, and
  how many TLS connections the fake Duo accepted (connection reuse keeps this near the number
  of pushes held at once, not the number of calls).

Every waiting push holds its own `auth_status` long-poll (a coroutine and a kept-alive
connection), so a late answerer never delays anyone else's approval.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import TOKEN, database, percentile
from bench.duo_phones import FakeDuoProcess
from bench.latency import SIGNING_SECRET, _cpu_seconds, _email, _user_id, _wait_dms, serve
from securitybot.demo import FakeSlack, block_action_body, sign
from securitybot.slack.messages import CONFIRM_ACTION
from securitybot.store.db import Database
from securitybot.store.models import Alert

TARGET_P99_S = 1.0


def _post_alerts(base: str, users: list[int]) -> dict[str, int]:
    """{user id: alert id}, posted 32 at a time."""

    async def go() -> dict[str, int]:
        gate = asyncio.Semaphore(32)
        out: dict[str, int] = {}
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:

            async def one(i: int) -> None:
                body = {"kind": "sensitive_command", "user": _email(i), "title": "flurb -export",
                        "details": {"host": f"host{i}", "command": "flurb -export"}}  # fmt: skip
                async with gate:
                    resp = await http.post("/api/v1/alerts", json=body, headers=headers)
                resp.raise_for_status()
                out[_user_id(i)] = int(resp.json()["id"])

            await asyncio.gather(*(one(i) for i in users))
        return out

    return asyncio.run(go())


def _click_all(base: str, fs: FakeSlack, alerts: dict[str, int]) -> int:
    """Every person clicks "Yes, it was me" on their DM, 32 clicks in flight; the errors."""

    async def go() -> int:
        gate = asyncio.Semaphore(32)
        errors = 0
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:

            async def one(user: str, alert_id: int) -> None:
                nonlocal errors
                body = block_action_body(user=user, action_id=CONFIRM_ACTION, value=str(alert_id),
                                         channel=f"D{user}", message_ts="1.0",
                                         response_url=fs.response_url())  # fmt: skip
                async with gate:
                    resp = await http.post("/slack/events", content=body.encode(),
                                           headers=sign(SIGNING_SECRET, body))  # fmt: skip
                errors += resp.status_code != 200

            await asyncio.gather(*(one(u, a) for u, a in alerts.items()))
        return errors

    return asyncio.run(go())


def _own_cpu() -> float:
    """CPU seconds of this process: the fake Slack and the clickers."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _wait(predicate: Any, timeout: float, every: float = 0.05) -> float:
    """Seconds until ``predicate()`` holds (or the timeout passed)."""
    started = time.monotonic()
    while not predicate() and time.monotonic() - started < timeout:
        time.sleep(every)
    return time.monotonic() - started


def run(backend: str, alerts: int, window: float, py_spy: Path | None) -> dict[str, Any]:
    # The fake Duo and the phones run in a process of their own (bench/duo_phones.py).
    with FakeSlack() as fs, FakeDuoProcess() as fd:
        users = list(range(alerts))
        names = {_email(i).split("@")[0]: _user_id(i) for i in users}
        for i in users:
            fs.add_user(_user_id(i), _email(i), real_name=f"Bench User{i}", first_name="Bench")
        fd.enroll(list(names))
        fs.add_channel("CSECURITY")
        with database(backend) as url, serve(url, fs, fd, py_spy, backend) as (base, pid):  # type: ignore[arg-type]
            ids = _post_alerts(base, users)
            _wait_dms(fs, set(ids), timeout=60 + alerts / 10)
            rng = random.Random(25)
            clicked_at = time.time()
            due = {n: clicked_at + rng.uniform(0, window) for n in names}
            cpu0, t0 = _cpu_seconds(pid), time.monotonic()
            fakes0 = _own_cpu() + _cpu_seconds(fd.pid)
            fd.approve_at(due)
            click_errors = _click_all(base, fs, ids)
            to_push = _wait(lambda: fd.started() >= alerts, 60 + alerts / 10, every=0.25)
            pushes = fd.started()
            db = Database.from_url(url, pool_size=1)
            # Through the model: its UTCDateTime column reads both stores' times as aware UTC.
            query = select(Alert.id, Alert.updated_at).where(Alert.status == "resolved")

            def resolved() -> list[tuple[int, datetime]]:
                with db.read() as session:
                    return [(r.id, r.updated_at) for r in session.execute(query)]

            _wait(lambda: time.time() > clicked_at + window, window + 120, every=0.25)
            _wait(lambda: len(resolved()) >= alerts, 120 + alerts / 5, every=0.25)
            done = resolved()
            took = time.monotonic() - t0
            fakes = _own_cpu() + _cpu_seconds(fd.pid) - fakes0
            cores, fake_cores = (_cpu_seconds(pid) - cpu0) / took, fakes / took
            db.dispose()
            phones = fd.report(timeout=120)
            connections = phones["connections"]
    name_of = {uid: n for n, uid in names.items()}
    person = {alert_id: name_of[user] for user, alert_id in ids.items()}
    approved: dict[str, float] = phones["approved_at"]
    lat = [at.timestamp() - approved[person[a]] for a, at in done if person[a] in approved]
    # The two parts of that: the fake Duo's (approval -> its auth_status answer left) and the
    # service's (that answer -> resolved).
    answered: dict[str, float] = phones["answered_at"]
    held: dict[str, bool] = phones["held_at_approval"]
    # Only where the service's poll was already held is approval -> answer the fake's own
    # delay; otherwise it is the wait for the service's next auth_status call.
    fake_part = [answered[u] - approved[u] for u in approved if u in answered and held.get(u)]
    unasked = [answered[u] - approved[u] for u in approved if u in answered and not held.get(u)]
    ours = [at.timestamp() - answered[person[a]] for a, at in done if person[a] in answered]
    return {
        "alerts": alerts, "pushes": pushes, "click_errors": click_errors,
        "to_push_s": to_push, "cores": cores, "fake_cores": fake_cores,
        "resolved": len(done), "late": len(phones["late"]),
        "p50_s": percentile(lat, 50), "p99_s": percentile(lat, 99),
        "max_s": max(lat, default=float("nan")), "connections": connections,
        "fake_p99_s": percentile(fake_part, 99), "ours_p99_s": percentile(ours, 99),
        "ours_p50_s": percentile(ours, 50), "unasked": len(unasked),
        "unasked_p99_s": percentile(unasked, 99), "polls": phones["auth_status_calls"],
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--alerts", type=int, default=2000)
    ap.add_argument("--window", type=float, default=60.0,
                    help="seconds over which the people approve their pushes")  # fmt: skip
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--py-spy", type=Path, default=None,
                    help="record py-spy profiles of the server into this directory")  # fmt: skip
    args = ap.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for b in backends:
        r = run(b, args.alerts, args.window, args.py_spy)
        ok = r["resolved"] == r["alerts"] and r["p99_s"] <= TARGET_P99_S
        print(
            f"duo {b:8s}: {r['pushes']}/{r['alerts']} pushes in {r['to_push_s']:.1f} s "
            f"({r['pushes'] / max(r['to_push_s'], 1e-9):.0f}/s, {r['click_errors']} click "
            f"errors); approved over {args.window:g} s: {r['resolved']}/{r['alerts']} resolved "
            f"({r['late']} timed out first), approval->resolved p50 {r['p50_s']:.2f} s "
            f"p99 {r['p99_s']:.2f} s max {r['max_s']:.2f} s = {r['p99_s'] / TARGET_P99_S:.2f}x "
            f"the {TARGET_P99_S:g} s p99 limit (of which the fake Duo's answer to a held poll "
            f"p99 {r['fake_p99_s']:.2f} s; {r['unasked']} approvals came before the server's "
            f"poll was held, its next call p99 {r['unasked_p99_s']:.2f} s later; the fake's "
            f"answer -> resolved p50 {r['ours_p50_s']:.2f} s p99 {r['ours_p99_s']:.2f} s); "
            f"server CPU {r['cores']:.2f} cores (the fakes and "
            f"phones: {r['fake_cores']:.2f}); fake Duo accepted {r['connections']} TLS "
            f"connections, answered {r['polls']} auth_status calls  "
            f"{'OK' if ok else 'BELOW TARGET'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
