"""``VM_LOG_FORMAT=json``: a real ``voicemgmt serve`` writes one JSON object per line, and
every line about a call carries its ``id_call``; the call-id filter on its own, at the
handler level, for lines of work started for one call."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import free_port, make_settings, run_on, seed_account
from tests.test_calls_api import eventually
from tests.test_cli import VOICEMGMT, cli_env
from voicemgmt.bootstrap import Container
from voicemgmt.observability.logs import (
    CallIdFilter,
    JsonFormatter,
    TextFormatter,
    about_call,
    call_context,
    no_call,
)

SECRET = "test-secret-key-of-at-least-32-characters"


def test_a_served_call_is_logged_as_json_with_its_call_id(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, secret_key=SECRET)

    async def seed(container: Container) -> Any:
        return await seed_account(container, "acme", "33170200200")

    acme = run_on(settings, seed)
    port = free_port()
    env = cli_env(
        tmp_path,
        VM_SECRET_KEY=SECRET,
        VM_PORT=str(port),
        VM_LOG_FORMAT="json",
        VM_LOG_LEVEL="debug",
        VM_SIM_PROMPT_SECONDS="0.05",
        VM_SIM_DIGIT_INTERVAL="0.01",
        VM_SIM_CUSTOMER_ANSWER_AFTER="0.05",
    )
    log_file = tmp_path / "server.log"  # a file, not a pipe: debug lines never block it
    with log_file.open("w") as stderr:
        server = subprocess.Popen(
            [str(VOICEMGMT), "serve"], stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            eventually(lambda: _up(client), timeout=30)
            token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent})
            ana = {"Authorization": f"Bearer {token.json()['token']}"}
            assert client.put("/api/v1/me/status", headers=ana, json={"status": "online"})
            calls = []
            for caller in ("33612345678", "33698765432"):
                placed = client.post(
                    "/api/v1/sim/calls",
                    auth=acme.auth,
                    json={"from": caller, "to": acme.number},
                )
                assert placed.status_code == 201, placed.text
                call_id = placed.json()["id_call"]
                calls.append(call_id)

                def ringing(call_id: str = call_id) -> bool:
                    state = client.get("/api/v1/me/state", headers=ana).json()
                    return any(c["id_call"] == call_id for c in state["calls"])

                eventually(ringing, timeout=20)  # after the first call's wrap-up (10 s)
                answered = client.post(f"/api/v1/me/calls/{call_id}/answer", headers=ana)
                assert answered.status_code == 200, answered.text
                hung_up = client.post(f"/api/v1/me/calls/{call_id}/hangup", headers=ana)
                assert hung_up.status_code == 200, hung_up.text
            time.sleep(0.3)  # the records written, their lines logged
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    err = log_file.read_text()

    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # all JSON
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # its lines too
    for call_id in calls:
        # the product's lines and the server's (a database driver's thread writing a batch of
        # records, whatever the calls, is about no call in particular)
        about = [
            line
            for line in lines
            if call_id in line["message"] and line["logger"].startswith(("voicemgmt", "uvicorn"))
        ]
        tagged = [line for line in lines if line.get("id_call") == call_id]
        messages = {line["message"] for line in tagged}
        assert any(m.startswith("call from") for m in messages), messages
        assert "call ended answered (operator_hung_up)" in messages or any(
            m.startswith("call ended answered") for m in messages
        ), messages
        for line in about:  # a line that names the call is tagged with it
            assert line.get("id_call") == call_id, line
    first, second = calls
    assert not [
        line for line in lines if line.get("id_call") == first and second in line["message"]
    ]


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(JsonFormatter())
        self.addFilter(CallIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_work_started_for_a_call_keeps_its_id_and_other_work_does_not() -> None:
    handler = _Lines()
    log = logging.getLogger("voicemgmt.tests.json_logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        with about_call("c1"):
            log.info("inside")
            loop.call_soon(lambda: log.info("a timer of c1's"), context=call_context("c1"))
            task = loop.create_task(_log_later(log, "a worker for every call"), context=no_call())
            loop.call_soon(done.set)
        log.info("outside")
        await task
        await done.wait()
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            with about_call("c2"):
                log.exception("failed")

    try:
        asyncio.run(main())
    finally:
        log.removeHandler(handler)
    by_message = {line["message"]: line for line in handler.lines}
    assert by_message["inside"]["id_call"] == "c1"
    assert by_message["a timer of c1's"]["id_call"] == "c1"
    assert "id_call" not in by_message["a worker for every call"]
    assert "id_call" not in by_message["outside"]
    assert by_message["failed"]["id_call"] == "c2"
    assert "RuntimeError: boom" in by_message["failed"]["exception"]


async def _log_later(log: logging.Logger, message: str) -> None:
    await asyncio.sleep(0)
    log.info(message)


def test_the_text_format_appends_the_call_id() -> None:
    formatter, tag = TextFormatter(), CallIdFilter()
    with about_call("c9"):
        about = logging.LogRecord("voicemgmt.x", logging.INFO, __file__, 1, "rang", (), None)
        tag.filter(about)
    other = logging.LogRecord("voicemgmt.x", logging.INFO, __file__, 1, "idle", (), None)
    tag.filter(other)
    assert formatter.format(about).endswith(" INFO voicemgmt.x: rang [id_call=c9]")
    assert formatter.format(other).endswith(" INFO voicemgmt.x: idle")
