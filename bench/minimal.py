"""The minimal-insert limit: the least a service can do per alert on this machine and store.

    .venv/bin/python -m bench.minimal --db URL --port PORT

A bare Starlette app on uvicorn that does what ingest must do and nothing else: check the
bearer token, parse and validate the JSON (the same pydantic model), and store the alert, its
audit row and its first outbox job in a group-committed transaction (concurrent requests share
one commit; one writer). No auth scopes, rate limits, metrics, adapters or background work.
The benchmarks run it on the same migrated schema and report the service as a ratio of it,
which holds up when the machine is busy, where absolute figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import uvicorn
from sqlalchemy import Table, create_engine, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.ingest.schema import AlertIn
from securitybot.store.db import _sqlite_pragmas, normalise_url
from securitybot.store.models import Alert, AuditLog, Outbox

TOKEN = "bench-token-0123456789abcdef"
ALERTS = cast(Table, Alert.__table__)
AUDIT = cast(Table, AuditLog.__table__)
OUTBOX = cast(Table, Outbox.__table__)


def build(url: str) -> Starlette:
    url = normalise_url(url)
    engine = create_engine(url, pool_size=4)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    ins = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(ALERTS)
    ins_alert = ins.on_conflict_do_nothing().returning(ALERTS.c.id, sort_by_parameter_order=True)
    queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[int]]] = asyncio.Queue()

    def commit(rows: list[dict[str, Any]]) -> list[int]:
        now = datetime.now(UTC)
        with engine.begin() as conn:
            ids = [int(i) for i in conn.execute(ins_alert, rows).scalars()]
            conn.execute(insert(AUDIT), [
                {"alert_id": i, "actor": "source:bench", "action": "alert.ingested",
                 "details": {}, "created_at": now} for i in ids
            ])  # fmt: skip
            conn.execute(insert(OUTBOX), [
                {"alert_id": i, "effect": "start_conversation", "payload": {},
                 "idempotency_key": f"start:{i}", "status": "pending", "attempts": 0,
                 "next_attempt_at": now, "created_at": now} for i in ids
            ])  # fmt: skip
        return ids

    async def writer() -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < 256 and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                ids = await run_in_threadpool(commit, [r for r, _ in batch])
            except Exception as exc:
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            for (_, fut), i in zip(batch, ids, strict=True):
                fut.set_result(i)

    tasks: list[asyncio.Task[None]] = []

    async def post(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "unauthorized"}, 401)
        payload = AlertIn.model_validate_json(await request.body())
        now = datetime.now(UTC)
        row = {"kind": payload.kind or "default", "severity": "high", "source": "bench",
               "dedup_key": payload.dedup_key, "user_given": payload.user,
               "title": payload.title, "description": payload.description,
               "details": payload.details, "status": "new", "policy": {}, "version": 1,
               "created_at": now, "updated_at": now}  # fmt: skip
        if not tasks:
            tasks.append(asyncio.get_running_loop().create_task(writer()))
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        queue.put_nowait((row, fut))
        return JSONResponse({"id": await fut, "status": "new"}, 201)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/api/v1/alerts", post, methods=["POST"]),
                             Route("/healthz", healthz)])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    uvicorn.run(build(args.db), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
