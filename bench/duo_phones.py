"""The fake Duo and the people's phones for bench/duo.py, in a process of their own.

Beside the fake Slack, the clickers and the bench's own polling, the fake Duo's thousands of
held ``auth_status`` threads waited seconds for the GIL before an approval's answer left them:
the benchmark measured its own harness. Here FakeDuo (unchanged: the tests use the same class)
and the phones run alone; approved_at (the phone's tap) and answered_at (the fake's
``auth_status`` answer) are both taken in this process, on one clock.

Spoken to over stdin/stdout, one JSON object a line, each command answered by one line:

    {"cmd": "enroll", "names": [...]}     -> {"ok": true}
    {"cmd": "due", "due": {name: epoch}}  -> {"ok": true}   (the phones start)
    {"cmd": "started"}                    -> {"started": <pushes started so far>}
    {"cmd": "report", "timeout": s}       -> {"approved_at": {...}, "answered_at": {...},
                                              "held_at_approval": {...}, "late": [...],
                                              "connections": n}
    {"cmd": "stop"}                       -> {"ok": true}

The first line it writes is the fake's address: {"ikey", "skey", "api_host", "ca_path"}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from securitybot.demo import FakeDuo
from tests.children import die_with_parent


class Phones:
    """Each person approves their push at their own moment; when, by Duo username."""

    def __init__(self, fd: FakeDuo, due: dict[str, float]) -> None:
        self.fd = fd
        self.due = due  # username -> wall-clock time to approve
        self.approved_at: dict[str, float] = {}
        # Whether the service's auth_status was already held in the fake when the phone
        # answered; if not, the wait for its next call is the service's, not the fake's.
        self.held_at_approval: dict[str, bool] = {}
        self.late: list[str] = []  # pushes that timed out before their approval (none expected)
        self._thread = threading.Thread(target=self._run, name="phones", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        pending = sorted(self.due.items(), key=lambda kv: kv[1])
        pushes: dict[str, Any] = {}  # username -> push, refreshed only when one is missing
        while pending:
            now = time.time()
            if pending[0][1] > now:
                time.sleep(min(pending[0][1] - now, 0.05))
                continue
            if any(user not in pushes for user, at in pending if at <= now):
                pushes = {p.username: p for p in self.fd.started_pushes()}
            rest = []
            for user, at in pending:
                push = pushes.get(user)
                if at > now or push is None:  # not due, or not on the phone yet
                    rest.append((user, at))
                elif push.waiting:
                    self.held_at_approval[user] = push.held > 0  # read under no lock: a hint
                    self.approved_at[user] = time.time()
                    self.fd.answer_push(push.txid, "allow")
                else:
                    self.late.append(user)
            pending = rest
            time.sleep(0.005)


def _serve() -> None:
    out = sys.stdout
    with FakeDuo() as fd:
        phones: Phones | None = None

        def say(obj: dict[str, Any]) -> None:
            out.write(json.dumps(obj) + "\n")
            out.flush()

        say({"ikey": fd.ikey, "skey": fd.skey, "api_host": fd.api_host, "ca_path": fd.ca_path})
        for line in sys.stdin:
            msg = json.loads(line)
            cmd = msg["cmd"]
            if cmd == "enroll":
                for name in msg["names"]:
                    fd.enroll(name)
                say({"ok": True})
            elif cmd == "due":
                phones = Phones(fd, {k: float(v) for k, v in msg["due"].items()})
                phones.start()
                say({"ok": True})
            elif cmd == "started":
                say({"started": len(fd.started_pushes())})
            elif cmd == "report":
                if phones is not None:
                    phones.join(float(msg.get("timeout", 0)))
                answered = {
                    p.username: p.answered_at
                    for p in fd.started_pushes()
                    if p.answered_at is not None
                }
                polls = [r for r in fd.requests if r.path == "/auth/v2/auth_status"]
                say({
                    "auth_status_calls": len(polls),
                    "approved_at": dict(phones.approved_at) if phones else {},
                    "held_at_approval": dict(phones.held_at_approval) if phones else {},
                    "late": list(phones.late) if phones else [],
                    "answered_at": answered,
                    "connections": fd.connections,
                })  # fmt: skip
            elif cmd == "stop":
                say({"ok": True})
                break
    # Held polls and kept-alive connections are joined by FakeDuo.stop(); nothing else left.


class FakeDuoProcess:
    """bench/duo.py's handle on the runner: the fake's address (what ``serve`` needs) and
    the commands above as methods."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.ikey = self.skey = self.api_host = self.ca_path = ""
        self.pid = 0

    def __enter__(self) -> FakeDuoProcess:
        self._proc = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        self.pid = self._proc.pid
        first = self._read()
        self.ikey, self.skey = first["ikey"], first["skey"]
        self.api_host, self.ca_path = first["api_host"], first["ca_path"]
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            self._ask({"cmd": "stop"})
            proc.wait(timeout=30)
        except Exception:
            proc.kill()
            proc.wait(timeout=10)

    def _read(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake Duo process ended")
        data: dict[str, Any] = json.loads(line)
        return data

    def _ask(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(msg) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def enroll(self, names: list[str]) -> None:
        self._ask({"cmd": "enroll", "names": names})

    def approve_at(self, due: dict[str, float]) -> None:
        self._ask({"cmd": "due", "due": due})

    def started(self) -> int:
        return int(self._ask({"cmd": "started"})["started"])

    def report(self, timeout: float) -> dict[str, Any]:
        return self._ask({"cmd": "report", "timeout": timeout})


if __name__ == "__main__":
    _serve()
