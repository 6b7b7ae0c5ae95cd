"""docs/platform-api.md: every curl example, as written, against a real server on loopback.

Each ``sh`` block of the page is one command; it is run with bash and curl once its
placeholders are filled and its host pointed at the test server. The ``json`` block that
follows an example is its documented answer: the real answer must have the same fields.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.platform_support import history, other_history, store
from tests.support import LiveServer, SeededAccount

DOC = Path(__file__).resolve().parent.parent / "docs" / "platform-api.md"
DOC_HOST = "http://127.0.0.1:8000"
_BLOCK = re.compile(r"^```(sh|json)\n(.*?)^```$", re.S | re.M)


def examples() -> list[tuple[str, str | None]]:
    """Each command of the page, with the JSON answer documented after it, if any."""
    found: list[tuple[str, str | None]] = []
    for kind, text in _BLOCK.findall(DOC.read_text(encoding="utf-8")):
        if kind == "sh":
            found.append((text.strip(), None))
        elif found and found[-1][1] is None:
            found[-1] = (found[-1][0], text)
    return found


def run(command: str, server: LiveServer, values: dict[str, Any]) -> tuple[int, Any]:
    command = command.replace(DOC_HOST, server.base_url)
    for name, value in values.items():
        command = command.replace(f"<{name}>", str(value))
    assert "<" not in command, f"unfilled placeholder in {command!r}"
    result = subprocess.run(
        ["bash", "-c", command + " --show-error --write-out '\\n%{http_code}'"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body)


def request_of(command: str) -> tuple[str, str]:
    """The method and path a command sends, as curl would."""
    method = re.search(r"-X (\w+)", command)
    url = re.search(r"https?://\S+?(?=[\"'\s]|$)", command)
    assert url is not None, command
    verb = method.group(1) if method else ("POST" if " -d " in command else "GET")
    return verb, urlsplit(url.group(0)).path


def same_shape(real: Any, documented: Any, where: str = "") -> None:
    """The real answer has the documented fields, at every level the page shows."""
    if isinstance(documented, dict):
        assert isinstance(real, dict), where
        assert set(real) == set(documented), f"{where}: {sorted(real)} != {sorted(documented)}"
        for key, value in documented.items():
            same_shape(real[key], value, f"{where}.{key}")
    elif isinstance(documented, list) and documented:
        assert isinstance(real, list), where
        assert real, where
        same_shape(real[0], documented[0], f"{where}[0]")


def test_every_example_of_the_page_runs_as_documented(
    server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    made = history(acme, globex)
    store(server, acme, *made.values())
    store(server, globex, *other_history())
    values = {
        "login": acme.login,
        "pass": acme.password,
        "id": acme.id_agent,
        "email": acme.agent_email,
        "id_group": acme.id_group,
        "id_appel": "c-in-1",
        "id_appel_2": "c-in-2",
    }

    def calls_in(status: int, body: Any) -> None:
        assert status == 200
        assert [c["id_appel"] for c in body["calls"]] == ["c-in-2", "c-in-1"]
        assert body["total"] == 2
        first = body["calls"][1]
        assert first["date"] == "2026-12-02T09:15:00.000Z"
        assert (first["service_number"], first["caller_number"]) == ("33170200200", "33612345678")
        assert (first["duration_svi"], first["duration_wait"], first["post_appel"]) == (
            12.5,
            20.0,
            10.0,
        )

    def calls_out(status: int, body: Any) -> None:
        assert status == 200
        assert [c["id_appel"] for c in body["calls"]] == ["c-out-1"]
        call = body["calls"][0]
        assert (call["service_number"], call["caller_number"]) == ("33170200200", "33612345678")

    def operator_list(status: int, body: Any) -> None:
        assert status == 200
        assert [o["id"] for o in body["operators"]] == [acme.id_agent, acme.other_id_agent]

    def one_operator(status: int, body: Any) -> None:
        assert status == 200
        assert body == {
            "id": acme.id_agent,
            "email": acme.agent_email,
            "realname": "Ana",
            "login": acme.agent_email,
        }

    def found_operator(status: int, body: Any) -> None:
        assert status == 200
        assert [o["id"] for o in body["operators"]] == [acme.id_agent]

    def statuses(status: int, body: Any) -> None:
        assert status == 200
        assert {o["id"]: o["status"] for o in body["operators"]} == {
            acme.id_agent: "offline",
            acme.other_id_agent: "offline",
        }

    def numbers(status: int, body: Any) -> None:
        assert status == 200
        assert [(n["service_number"], n["state"]) for n in body["service_numbers"]] == [
            (acme.number, "active")
        ]

    def new_number(status: int, body: Any) -> None:
        assert status == 201
        assert body == {
            "service_number": "33170200300",
            "state": "active",
            "record": False,
            "id_group": acme.id_group,
            "label": "Sales",
        }

    def changed_number(status: int, body: Any) -> None:
        assert status == 200
        assert (body["service_number"], body["state"], body["record"]) == (
            "33170200300",
            "suspended",
            True,
        )

    def both_variables(status: int, body: Any) -> None:
        assert status == 200
        assert body["calls"] == [
            {"id_appel": "c-in-1", "variables": {"order_number": "123456"}, "live": False},
            {
                "id_appel": "c-in-2",
                "variables": {"order_number": "654321", "langue": "fr"},
                "live": False,
            },
        ]

    def one_variables(status: int, body: Any) -> None:
        assert status == 200
        assert [c["id_appel"] for c in body["calls"]] == ["c-in-1"]

    checks: dict[tuple[str, str], list[Callable[[int, Any], None]]] = {
        ("POST", "/vm/calls/in"): [calls_in],
        ("POST", "/vm/calls/out"): [calls_out],
        ("GET", "/vm/operators"): [operator_list],
        ("GET", "/vm/operators/<id>"): [one_operator],
        ("POST", "/vm/operators"): [found_operator],
        ("GET", "/vm/operators_init"): [statuses],
        ("GET", "/vm/service_numbers"): [numbers],
        ("POST", "/vm/service_numbers"): [new_number],
        ("PUT", "/vm/service_numbers"): [changed_number],
        ("GET", "/voice-management/variables"): [both_variables],
        ("POST", "/voice-management/variables"): [one_variables],
    }
    page = examples()
    assert len(page) == sum(len(c) for c in checks.values())
    for command, documented in page:
        check = checks[request_of(command)].pop(0)
        status, body = run(command, server, values)
        check(status, body)
        if documented is not None:
            same_shape(body, json.loads(documented), command.splitlines()[-1].strip())
    assert not any(checks.values()), "an example the test expects is missing from the page"
