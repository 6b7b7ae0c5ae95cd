"""``voicemgmt sim``: the real console script, in a subprocess, against a real server on loopback.

``sim call`` places one call; ``sim load`` drives traffic through the public API (operators'
tokens, the supervisor's event stream) and summarizes what became of the calls, which must
match the server's own call records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import LiveServer, free_port, live_server, make_settings, run_on
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings
from voicemgmt.domain.directory import Membership

VOICEMGMT = Path(sys.executable).with_name("voicemgmt")
FAST: dict[str, Any] = {
    "sim_prompt_seconds": 0.05,
    "sim_digit_interval": 0.01,
    "sim_customer_answer_after": 0.05,
}
OPERATORS = 12
PLAIN, WITH_IVR = "33170200200", "33170200201"
STRANGER = "33170200299"  # the other account's number
OUTCOMES = ("answered", "abandoned", "missed", "overflowed", "failed")
# Quick operators, so that a 3-second load ends within a second or two.
QUICK = ["--answer-delay", "0.02-0.15", "--talk", "0.05-0.3", "--patience", "0.05-0.5"]


@dataclass(frozen=True)
class Seeded:
    login: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.login, self.password)


async def seed(container: Container) -> Seeded:
    """Acme: 12 operators in one group without wrap-up, a supervisor, two numbers (one with an
    IVR menu: 1 → the group, 2 → an order number then the group, nothing → hang up).
    Globex: a number, no supervisor."""
    directory = container.directory
    acme = await directory.create_account(login="acme", name="Acme", password="acme-password")
    group = await directory.create_group(acme.id, name="Support", settings={"wrap_up": 0})
    for n in range(OPERATORS):
        await directory.create_operator(
            acme.id,
            name=f"Operator {n}",
            email=f"op{n}@acme.example",
            memberships=[Membership(group.id, 1)],
        )
    await directory.create_supervisor(acme.id, name="Sam", email="sam@acme.example")
    await directory.create_number(acme.id, e164=PLAIN, group_id=group.id)
    menu = {
        "start": "menu",
        "steps": {
            "menu": {
                "type": "menu",
                "prompt": {"text": "For support press 1, for an order press 2"},
                "options": {"1": {"group": group.id}, "2": {"step": "order"}},
                "timeout": 0.5,
                "attempts": 1,
            },
            "order": {
                "type": "collect",
                "prompt": {"text": "Your order number, then hash"},
                "variable": "order_number",
                "min_length": 6,
                "max_length": 10,
                "timeout": 0.5,
                "next": {"group": group.id},
            },
        },
    }
    await directory.create_number(acme.id, e164=WITH_IVR, group_id=group.id, ivr=menu)
    globex = await directory.create_account(
        login="globex", name="Globex", password="globex-password"
    )
    other = await directory.create_group(globex.id, name="Sales")
    await directory.create_number(globex.id, e164=STRANGER, group_id=other.id)
    return Seeded("acme", "acme-password")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", **FAST)


@pytest.fixture
def acme(settings: Settings) -> Seeded:
    return run_on(settings, seed)


@pytest.fixture
def server(settings: Settings, acme: Seeded) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running


def env_for(server_url: str, account: Seeded) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VM_") and k != "FORCE_COLOR"}
    env.update(VM_URL=server_url, VM_API_LOGIN=account.login, VM_API_PASSWORD=account.password)
    return env


def start(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(VOICEMGMT), "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str], timeout: float = 40) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, out, err


def sim(*args: str, env: dict[str, str], timeout: float = 40) -> tuple[int, str, str]:
    return finish(start(args, env), timeout)


def records(server: LiveServer, account: Seeded, **params: str) -> list[dict[str, Any]]:
    with server.client() as client:
        answer = client.get(
            "/api/v1/call-records", auth=account.auth, params={"limit": "1000", **params}
        )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


# sim call


def test_sim_call_places_a_call_that_ends_in_the_records(server: LiveServer, acme: Seeded) -> None:
    code, out, err = sim(
        "call", "--from", "33612345678", "--to", PLAIN, "--hangup-after", "0.2", "--json",
        env=env_for(server.base_url, acme),
    )  # fmt: skip
    assert (code, err) == (0, "")
    placed = json.loads(out)
    assert (placed["from"], placed["to"]) == ("33612345678", PLAIN)
    deadline = time.monotonic() + 10
    while not (found := [r for r in records(server, acme) if r["id_call"] == placed["id_call"]]):
        assert time.monotonic() < deadline, "the call never ended"
        time.sleep(0.05)
    assert (found[0]["outcome"], found[0]["ended_by"]) == ("abandoned", "caller")
    assert found[0]["caller_number"] == "33612345678"


def test_sim_call_prints_a_table_by_default(server: LiveServer, acme: Seeded) -> None:
    code, out, _ = sim(
        "call", "--from", "+33 6 12 34 56 78", "--to", PLAIN, "--hangup-after", "0.1",
        env=env_for(server.base_url, acme),
    )  # fmt: skip
    assert code == 0
    assert "id_call" in out
    assert "33612345678" in out


def test_sim_errors_are_one_line_and_exit_2(server: LiveServer, acme: Seeded) -> None:
    """Run side by side: each start of the console script costs about a second."""
    env = env_for(server.base_url, acme)
    nowhere = f"http://127.0.0.1:{free_port()}"
    call = ["call", "--from", "33612345678", "--to", PLAIN]
    load = ["load", "--rate", "1", "--duration", "1"]
    cases = {
        "wrong password": (
            [*call, "--password", "not-the-password"],
            "error: wrong API login or password",
        ),
        "unknown number": (
            ["call", "--from", "33612345678", "--to", STRANGER],
            f"error: no number {STRANGER} in this account",
        ),
        "server not listening": ([*call, "--url", nowhere], f"error: cannot reach {nowhere} ("),
        "bad caller": (
            ["call", "--from", "not-a-number", "--to", PLAIN],
            "error: a phone number must be E.164 digits",
        ),
        "load without a supervisor": (
            [*load, "--login", "globex", "--password", "globex-password"],
            "error: the account has no supervisor",
        ),
        "load with a bad range": (
            [*load, "--talk", "5-1"],
            "error: --talk takes SECONDS or MIN-MAX with 0 <= MIN <= MAX",
        ),
        "load with a range not in plain digits": (
            [*load, "--talk", "1_0"],
            "error: --talk takes SECONDS or MIN-MAX (e.g. 1-4), not '1_0'",
        ),
        "load with operators in other digits": (
            [*load, "--operators", "\u0661\u0662"],  # Arabic-Indic 12: int() reads it
            "error: --operators takes 'all' or a number",
        ),
    }
    running = {name: start(args, env) for name, (args, _) in cases.items()}
    for name, process in running.items():
        code, out, err = finish(process)
        expected = cases[name][1]
        assert (code, out) == (2, ""), name
        assert len(err.splitlines()) == 1, (name, err)
        assert err.startswith(expected), (name, err)


# sim load


def test_sim_load_summary_adds_up_and_matches_the_records(server: LiveServer, acme: Seeded) -> None:
    code, out, err = sim(
        "load", "--rate", "20", "--duration", "3", "--seed", "1", "--json",
        "--dtmf-choices", "1,2123456#,", "--abandon", "0.15", *QUICK,
        env=env_for(server.base_url, acme),
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    placed = summary["placed"]
    assert 30 <= placed <= 60  # Poisson around 60, at most rate x duration
    assert summary["unfinished"] == 0
    assert placed == sum(summary[k] for k in OUTCOMES)
    assert summary["answered"] > 0
    assert summary["missed"] > 0  # callers who keyed nothing in the IVR menu
    assert summary["api_errors"] == 0, summary["api_error_kinds"]
    assert summary["operators"] == OPERATORS
    latency = summary["offer_latency_ms"]
    assert latency["samples"] > 0
    assert 0 < latency["p50"] <= latency["p99"]
    # The server's figures and records for the window say the same.
    assert summary["server_agrees"] is True
    assert summary["server"] == {"offered": placed, **{k: summary[k] for k in OUTCOMES}}
    stored = records(server, acme, since=summary["since"], until=summary["until"])
    assert len(stored) == placed
    assert Counter(r["outcome"] for r in stored) == Counter(
        {k: summary[k] for k in OUTCOMES if summary[k]}
    )
    assert any(r["variables"] == {"order_number": "123456"} for r in stored)
    # The operators are back to the status they had before: offline.
    token = _supervisor_token(server, acme)
    with server.client() as client:
        live = client.get("/api/v1/supervision/live", headers=token).json()
    assert {o["status"] for o in live["operators"]} == {"offline"}


def test_ctrl_c_stops_the_load_with_the_summary_so_far(server: LiveServer, acme: Seeded) -> None:
    process = start(
        ["load", "--rate", "20", "--duration", "60", "--seed", "2", "--json", *QUICK],
        env_for(server.base_url, acme),
    )
    try:
        deadline = time.monotonic() + 20
        while not records(server, acme):  # the load is under way once calls have ended
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no call ended"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        code, out, err = finish(process, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert code == 130, err
    summary = json.loads(out)
    assert summary["interrupted"] is True
    assert 0 < summary["placed"] < 1200
    assert summary["placed"] == summary["unfinished"] + sum(summary[k] for k in OUTCOMES)


def _supervisor_token(server: LiveServer, account: Seeded) -> dict[str, str]:
    with server.client() as client:
        admins = client.get("/api/v1/supervisors", auth=account.auth).json()["items"]
        answer = client.post(
            "/vm/token", auth=account.auth, json={"id_admin": admins[0]["id_admin"]}
        )
    return {"Authorization": f"Bearer {answer.json()['token']}"}
