"""What the platform acknowledged survives a kill -9 (issue 14, item 1).

``voicemgmt serve`` runs as a real process; calls are placed through the public API, one is
answered by an operator, the others wait in the queue; the process is killed with SIGKILL and
started again on the same database. Every call whose ``201`` came back has exactly one record
afterwards: ``answered`` by its operator with the talk time up to the crash, or ``failed``;
``disconnect_reason`` ``node_died``. The operator is back in their status, nothing stays live,
and the stream tells ``call.ended`` for each.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support import (
    LiveServer,
    SeededAccount,
    bearer,
    free_port,
    live_server,
    make_settings,
    run_on,
    seed_two_accounts,
)
from tests.test_calls_api import FAST, Operator, eventually, token_for
from tests.test_cli import VOICEMGMT, cli_env
from voicemgmt.adapters.sql.tables import live_calls
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings


@contextmanager
def serve(
    settings: Settings, tmp_path: Path, node: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``voicemgmt serve`` in its own process; yields its base URL and the process, killed
    (SIGKILL) by the caller or at the end."""
    port = free_port()
    assert settings.secret_key is not None
    env = cli_env(
        Path(settings.data_dir),
        VM_SECRET_KEY=settings.secret_key.get_secret_value(),
        VM_PORT=str(port),
        VM_NODE=node,
        VM_NODE_HEARTBEAT_SECONDS=str(settings.node_heartbeat_seconds),
        VM_SIM_PROMPT_SECONDS="0.05",
        VM_SIM_DIGIT_INTERVAL="0.01",
    )
    log = (tmp_path / f"serve-{port}.log").open("w")
    process = subprocess.Popen(
        [str(VOICEMGMT), "serve"], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / f"serve-{port}.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "voicemgmt serve did not start"
            time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def session_token(base: str, account: SeededAccount, id_agent: int) -> str:
    answer = httpx.post(
        f"{base}/vm/token", auth=account.auth, json={"id_agent": id_agent}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def place(base: str, account: SeededAccount) -> str:
    answer = httpx.post(
        f"{base}/api/v1/sim/calls",
        auth=account.auth,
        json={"from": "33612345678", "to": account.number},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    call_id: str = answer.json()["id_call"]
    return call_id


def records(server: LiveServer, account: SeededAccount) -> dict[str, dict[str, Any]]:
    with server.client() as client:
        answer = client.get("/api/v1/call-records?limit=1000", auth=account.auth)
    assert answer.status_code == 200, answer.text
    return {r["id_call"]: r for r in answer.json()["items"]}


def traces_left(settings: Settings) -> int:
    async def count(container: Container) -> int:
        async with container.engine.connect() as connection:
            return len((await connection.execute(live_calls.select())).all())

    return run_on(settings, count)


def test_calls_acknowledged_before_a_kill_9_all_get_their_record(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, node="node-a", node_heartbeat_seconds=0.1, **FAST)
    acme, _globex = seed_two_accounts(settings)
    with serve(settings, tmp_path, "node-a") as (base, process):
        token = session_token(base, acme, acme.id_agent)
        with httpx.Client(base_url=base, headers=bearer(token), timeout=10) as ana:
            assert ana.put("/api/v1/me/status", json={"status": "online"}).status_code == 200
            talking = place(base, acme)
            eventually(lambda: any(ana.get("/api/v1/me/state").json()["calls"]))
            assert ana.post(f"/api/v1/me/calls/{talking}/answer").status_code == 200
        queued = [place(base, acme) for _ in range(5)]  # Ana is busy: they wait
        time.sleep(0.6)  # some talk and some wait to account for, over several heartbeats
        kill(process)
    with live_server(settings) as server:  # the same database, the same node name
        found = records(server, acme)
        assert set(found) == {talking, *queued}
        answered = found[talking]
        assert (answered["outcome"], answered["id_op"]) == ("answered", acme.id_agent)
        assert answered["disconnect_reason"] == "node_died"
        assert answered["ended_by"] == "system"
        assert answered["duration_comm"] >= 0.3
        for call_id in queued:
            assert found[call_id]["outcome"] == "failed"
            assert found[call_id]["disconnect_reason"] == "node_died"
            assert found[call_id]["duration_wait"] >= 0.3
        assert traces_left(settings) == 0
        ana_again = Operator(server, acme, acme.id_agent)
        with ana_again.http:
            state = ana_again.state()
            assert state["operator"]["status"] == "online"  # back in her last status
            assert state["calls"] == []  # nothing stays open
    with live_server(settings) as server:  # and a second restart closes nothing again
        assert set(records(server, acme)) == {talking, *queued}


def test_under_load_every_acknowledged_call_has_one_record_after_a_kill_9(
    tmp_path: Path,
) -> None:
    """Calls placed from four threads, operators answering, until the server is killed at an
    instant nobody chose: acknowledged ⊆ records ⊆ attempted, each once."""
    settings = make_settings(tmp_path, node="node-a", **FAST)
    acme, _globex = seed_two_accounts(settings)
    acknowledged: list[str] = []
    attempted = 0
    stop = threading.Event()
    lock = threading.Lock()

    def caller(base: str) -> None:
        nonlocal attempted
        with httpx.Client(base_url=base, auth=acme.auth, timeout=5) as client:
            while not stop.is_set():
                with lock:
                    attempted += 1
                try:
                    answer = client.post(
                        "/api/v1/sim/calls", json={"from": "33612345678", "to": acme.number}
                    )
                except httpx.HTTPError:
                    return  # the server died under this request
                if answer.status_code == 201:
                    with lock:
                        acknowledged.append(answer.json()["id_call"])

    def answering(base: str, token: str) -> None:
        with httpx.Client(base_url=base, headers=bearer(token), timeout=5) as client:
            try:
                client.put("/api/v1/me/status", json={"status": "online"})
                while not stop.is_set():
                    for call in client.get("/api/v1/me/state").json()["calls"]:
                        client.post(f"/api/v1/me/calls/{call['id_call']}/answer")
                    time.sleep(0.02)
            except (httpx.HTTPError, json.JSONDecodeError):
                return

    with serve(settings, tmp_path, "node-a") as (base, process):
        tokens = [session_token(base, acme, op) for op in (acme.id_agent, acme.other_id_agent)]
        threads = [threading.Thread(target=answering, args=(base, t)) for t in tokens]
        threads += [threading.Thread(target=caller, args=(base,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        eventually(lambda: len(acknowledged) >= 60, timeout=30)
        kill(process)
        stop.set()
        for thread in threads:
            thread.join()
    with live_server(settings) as server:
        found = records(server, acme)
        assert set(acknowledged) <= set(found), "an acknowledged call has no record"
        assert len(found) <= attempted
        died = [r for r in found.values() if r["disconnect_reason"] == "node_died"]
        assert died, "the kill caught no call in progress: the test proves nothing"
        assert traces_left(settings) == 0


def test_a_graceful_stop_leaves_no_trace_and_no_orphan(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, node="node-a", **FAST)
    acme, _globex = seed_two_accounts(settings)
    with live_server(settings) as server:
        token = token_for(server, acme, id_agent=acme.id_agent)
        with server.client(headers=bearer(token)) as ana:
            ana.put("/api/v1/me/status", json={"status": "online"})
        with server.client() as client:
            answer = client.post(
                "/api/v1/sim/calls",
                auth=acme.auth,
                json={"from": "33612345678", "to": acme.number},
            )
        call_id = answer.json()["id_call"]
        assert traces_left(settings) == 1  # ringing Ana: in the database
    assert traces_left(settings) == 0
    with live_server(settings) as server:
        assert records(server, acme)[call_id]["disconnect_reason"] == "platform_shutdown"
