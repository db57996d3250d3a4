"""The demo's web console: every panel is drawn from the fakes' state, every click becomes a
correctly signed Slack request to the bot's real ``/slack/events`` (signed here, server-side,
so the signing secret never reaches the browser) or an answer on the fake Duo phone.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from securitybot.demo.cast import (
    DASHBOARD_USER,
    PAGER_OWNER,
    PEOPLE,
    SECURITY_CHANNEL,
    SEED_ALERTS,
    pagerduty_id,
)
from securitybot.demo.fake_slack import Call
from securitybot.demo.slack_event_bodies import message_event_body
from securitybot.demo.slack_interaction_bodies import block_action_body, view_submission_body
from securitybot.demo.slack_signing import sign
from securitybot.demo.world import World
from securitybot.slack.triage import NOTE_ACTION, NOTE_BLOCK
from securitybot.store.models import Alert

HERE = Path(__file__).parent
_STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


class Console:
    def __init__(self, demo: World) -> None:
        self.demo = demo
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
        )
        self._triggers: dict[str, str] = {}  # trigger_id -> the persona who clicked
        self._modals: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        demo.fs.on_call(self._on_slack_call)

    # ---- watching the fake Slack -----------------------------------------------------------------

    def _on_slack_call(self, call: Call) -> None:
        """A modal the bot opened (views.open) becomes a form in the console."""
        if call.method != "views.open" or not call.response.get("ok"):
            return
        view = call.response["view"]
        with self._lock:
            user = self._triggers.pop(str(call.params.get("trigger_id")), None)
            if user is None:
                return
            label = next(
                (
                    b.get("label", {}).get("text", "")
                    for b in view.get("blocks", [])
                    if b.get("type") == "input"
                ),
                "",
            )
            self._modals[view["id"]] = {
                "view_id": view["id"],
                "user": user,
                "callback_id": view.get("callback_id"),
                "private_metadata": view.get("private_metadata", ""),
                "title": (view.get("title") or {}).get("text", ""),
                "submit": (view.get("submit") or {}).get("text", "Submit"),
                "label": label,
                "error": None,
            }

    # ---- the page and its state ------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        d = self.demo
        html = self.env.get_template("console.html").render(
            ack=int(d.ack_timeout),
            duo=int(d.duo_timeout),
            user=DASHBOARD_USER,
            password=d.dashboard_password,
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response(status_code=404)
        return FileResponse(HERE / "static" / name, media_type=_STATIC[name])

    def _alerts(self, request: Request) -> list[dict[str, Any]]:
        now = time.time()
        with request.app.state.runtime.db.read() as session:
            rows = session.scalars(select(Alert).order_by(Alert.id.desc()).limit(12))
            return [
                {
                    "id": a.id,
                    "user": a.user_name or a.user_given,
                    "user_id": a.user_id,
                    "kind": a.kind,
                    "title": a.title,
                    "status": a.status,
                    "outcome": a.outcome,
                    "reason": a.escalation_reason,
                    "parent_id": a.parent_id,
                    "seconds_left": max(0, int(a.respond_by.timestamp() - now))
                    if a.respond_by
                    else None,
                }
                for a in rows
            ]

    async def state(self, request: Request) -> Response:
        d = self.demo
        pushes = d.fake.pending_pushes()
        ephemeral = list(d.fs.ephemeral)
        employees = []
        for p in (p for p in PEOPLE if p.role == "employee"):
            duo_name = d.push_user(p.email)
            employees.append(
                {
                    "id": p.id,
                    "name": p.name,
                    "email": p.email,
                    "channel": p.dm,
                    "messages": d.dm_history(p),
                    "ephemeral": [e for e in ephemeral if e["channel"] == p.dm][-3:],
                    "pushes": [
                        {"txid": x.txid, "info": x.pushinfo, "age": int(time.time() - x.created_at)}
                        for x in pushes
                        if x.username == duo_name
                    ],
                    "answered": [
                        {"txid": t, "answer": a}
                        for t, a in d.push_answers.items()
                        if t.startswith(duo_name + ":")
                    ][-1:],
                    "sessions_reset": d.fs.session_resets.count(p.id),
                }
            )
        with self._lock:
            modals = list(self._modals.values())
            narration = list(d.narration)
        body = {
            "people": {p.id: {"name": p.name, "role": p.role} for p in PEOPLE},
            "employees": employees,
            "responders": [
                {"id": p.id, "name": p.name, "role": p.role} for p in PEOPLE if p.role != "employee"
            ],
            "channel": {
                "id": SECURITY_CHANNEL,
                "messages": d.fs.messages(SECURITY_CHANNEL),
                "ephemeral": [e for e in ephemeral if e["channel"] == SECURITY_CHANNEL][-3:],
            },
            "modals": modals,
            "session_resets": list(d.fs.session_resets),
            "alerts": await run_in_threadpool(self._alerts, request),
            "narration": narration[-12:],
            "scenario_running": d.scenario_running,
            "pager": self._pager(),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _pager(self) -> dict[str, Any]:
        """The on-call's PagerDuty app: open incidents first, then the last few resolved."""
        pd = self.demo.pd
        owner = self.demo.person(PAGER_OWNER)
        with pd._lock:
            incidents = list(pd.incidents.values()) + list(reversed(pd.closed))[:5]
        return {
            "owner": owner.name if owner else "",
            "incidents": [
                {"dedup_key": i.dedup_key, "number": i.number, "summary": i.summary,
                 "severity": i.severity, "status": i.status}
                for i in incidents
            ],
        }  # fmt: skip

    # ---- actions -------------------------------------------------------------------------------

    async def _json(self, request: Request) -> dict[str, Any] | Response:
        # JSON only: a cross-site form cannot send it without a CORS preflight we never allow.
        if not request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"error": "expected application/json"}, status_code=415)
        try:
            data = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "malformed JSON"}, status_code=400)
        if not isinstance(data, dict):
            return JSONResponse({"error": "expected an object"}, status_code=400)
        return data

    async def _to_bot(self, body: str) -> Response:
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.post(
                f"{self.demo.base_url}/slack/events",
                content=body.encode(),
                headers=sign(self.demo.signing_secret, body),
            )
        payload: Any = resp.text
        with contextlib.suppress(ValueError):
            payload = resp.json() if resp.text else None
        return JSONResponse({"status": resp.status_code, "bot": payload})

    async def click(self, request: Request) -> Response:
        data = await self._json(request)
        if isinstance(data, Response):
            return data
        user, channel, ts = str(data.get("user")), str(data.get("channel")), str(data.get("ts"))
        if self.demo.person(user) is None:
            return JSONResponse({"error": "unknown persona"}, status_code=400)
        message = next((m for m in self.demo.fs.messages(channel) if m["ts"] == ts), None)
        trigger = f"{int(time.time())}.{secrets.randbelow(10**6)}.{secrets.token_hex(8)}"
        with self._lock:
            self._triggers[trigger] = user
        body = block_action_body(
            user=user,
            action_id=str(data.get("action_id")),
            value=str(data.get("value", "")),
            channel=channel,
            message_ts=ts,
            block_id=str(data.get("block_id") or "actions"),
            trigger_id=trigger,
            response_url=self.demo.fs.response_url(),
            message=message,
            team=self.demo.team_of(user),
            enterprise=self.demo.enterprise,
        )
        return await self._to_bot(body)

    async def say(self, request: Request) -> Response:
        data = await self._json(request)
        if isinstance(data, Response):
            return data
        person = self.demo.person(str(data.get("user")))
        text = str(data.get("text") or "").strip()[:2000]
        if person is None or not text:
            return JSONResponse({"error": "need a persona and some text"}, status_code=400)
        ts = self.demo.record_typed(person, text)
        return await self._to_bot(
            message_event_body(
                user=person.id,
                text=text,
                channel=person.dm,
                ts=ts,
                team=self.demo.team_of(person.id),
                enterprise=self.demo.enterprise,
            )
        )

    async def push(self, request: Request) -> Response:
        data = await self._json(request)
        if isinstance(data, Response):
            return data
        txid, answer = str(data.get("txid")), str(data.get("answer"))
        if answer not in ("allow", "deny", "fraud"):
            return JSONResponse({"error": "answer must be allow, deny or fraud"}, status_code=400)
        push = next((p for p in self.demo.fake.pending_pushes() if p.txid == txid), None)
        if push is None:
            return JSONResponse({"error": "that push is no longer waiting"}, status_code=409)
        self.demo.fake.answer_push(txid, answer)
        self.demo.push_answers[f"{push.username}:{txid}"] = answer
        return JSONResponse({"ok": True})

    async def pager(self, request: Request) -> Response:
        """The on-call acts on their pager: PagerDuty sends the bot its signed webhook."""
        data = await self._json(request)
        if isinstance(data, Response):
            return data
        key, action = str(data.get("dedup_key")), str(data.get("action"))
        if action not in ("acknowledge", "resolve"):
            return JSONResponse({"error": "action must be acknowledge or resolve"}, status_code=400)
        if key not in self.demo.pd.incidents:
            return JSONResponse({"error": "that incident is not open"}, status_code=409)
        owner = self.demo.person(PAGER_OWNER)
        assert owner is not None
        act = self.demo.pd.acknowledge if action == "acknowledge" else self.demo.pd.resolve
        resp = await run_in_threadpool(act, key, pagerduty_id(owner))
        self.demo.say(f"{owner.name} {action}d incident {key} on their pager.")
        return JSONResponse({"ok": True, "bot": resp.status_code if resp is not None else None})

    async def modal(self, request: Request) -> Response:
        data = await self._json(request)
        if isinstance(data, Response):
            return data
        view_id = str(data.get("view_id"))
        with self._lock:
            modal = self._modals.get(view_id)
        if modal is None:
            return JSONResponse({"error": "no such modal"}, status_code=404)
        if data.get("cancel"):
            with self._lock:
                self._modals.pop(view_id, None)
            return JSONResponse({"ok": True})
        values = {
            NOTE_BLOCK: {
                NOTE_ACTION: {"type": "plain_text_input", "value": str(data.get("note") or "")}
            }
        }
        body = view_submission_body(
            user=modal["user"],
            callback_id=str(modal["callback_id"]),
            private_metadata=str(modal["private_metadata"]),
            values=values,
            view_id=view_id,
            team=self.demo.team_of(str(modal["user"])),
            enterprise=self.demo.enterprise,
        )
        resp = await self._to_bot(body)
        answer = json.loads(bytes(resp.body))
        bot = answer.get("bot")
        with self._lock:
            if isinstance(bot, dict) and bot.get("response_action") == "errors":
                modal["error"] = "; ".join(str(v) for v in (bot.get("errors") or {}).values())
            else:
                self._modals.pop(view_id, None)
        return resp

    async def new_alert(self, request: Request) -> Response:
        data = await self._json(request)
        if isinstance(data, Response):
            return data
        person = self.demo.person(str(data.get("user")))
        if person is None:
            return JSONResponse({"error": "unknown persona"}, status_code=400)
        template = next((a for a in SEED_ALERTS if a["user"] == person.email), SEED_ALERTS[0])
        body = {**template, "user": person.email, "dedup_key": f"demo-{time.time_ns()}"}
        return JSONResponse(await run_in_threadpool(self.demo.post_alert, body))

    async def scenario(self, request: Request) -> Response:
        if self.demo.scenario_running:
            return JSONResponse({"error": "a scenario is already running"}, status_code=409)
        self.demo.start_attack()
        return JSONResponse({"ok": True})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/demo", self.page, methods=["GET"]),
            Route("/demo/", self.page, methods=["GET"]),
            Route("/demo/static/{name}", self.static, methods=["GET"]),
            Route("/demo/api/state", self.state, methods=["GET"]),
            Route("/demo/api/click", self.click, methods=["POST"]),
            Route("/demo/api/say", self.say, methods=["POST"]),
            Route("/demo/api/push", self.push, methods=["POST"]),
            Route("/demo/api/modal", self.modal, methods=["POST"]),
            Route("/demo/api/pager", self.pager, methods=["POST"]),
            Route("/demo/api/alert", self.new_alert, methods=["POST"]),
            Route("/demo/api/scenario", self.scenario, methods=["POST"]),
        ]
