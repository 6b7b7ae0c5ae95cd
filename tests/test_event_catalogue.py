"""The event catalogue: the served schema, a stream that sends every kind it lists, the docs.

Every frame any test produces is also checked against the schema (``tests/conftest.py``);
here one scenario through the public API makes the stream send every catalogued kind, so a
kind that is catalogued but never sent, or sent but not catalogued, fails.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from websockets.sync.client import ClientConnection

from tests.support import LiveServer, SeededAccount, live_server, make_settings, token_for
from tests.test_calls_api import FAST, Operator, events, place_call
from voicemgmt.config import Settings
from voicemgmt.web import events_ws
from voicemgmt.web.event_schema import (
    FRAMES,
    INTERNAL_EVENTS,
    SCHEMA_PATH,
    event_schema,
    internal_event_schema,
)

DOCS = Path(__file__).parent.parent / "docs" / "events.md"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", **FAST)


@pytest.fixture
def calls_server(
    settings: Settings, seeded: tuple[SeededAccount, SeededAccount]
) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running


def served_schema(server: LiveServer) -> dict[str, Any]:
    with server.client() as client:  # no credentials: public, like /cnx.d.ts
        answer = client.get(SCHEMA_PATH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/schema+json")
    assert answer.headers["access-control-allow-origin"] == "*"
    document: dict[str, Any] = answer.json()
    return document


def test_the_schema_is_served_and_is_valid_json_schema(calls_server: LiveServer) -> None:
    document = served_schema(calls_server)
    Draft202012Validator.check_schema(document)
    assert document == event_schema()
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    kinds = {
        document["$defs"][branch["$ref"].rsplit("/", 1)[-1]]["properties"]["kind"]["const"]
        for branch in document["oneOf"]
    }
    assert kinds == set(FRAMES)
    assert not kinds & set(INTERNAL_EVENTS)  # never sent: not in the clients' document


def test_the_schema_refuses_an_undocumented_field_and_a_bad_value(
    calls_server: LiveServer,
) -> None:
    validator = Draft202012Validator(served_schema(calls_server))
    held = {"seq": 3, "kind": "call.held", "at": "2026-12-07T10:00:00.5Z"}
    assert validator.is_valid({**held, "data": {"id_call": "c1", "id_op": 2}})
    assert not validator.is_valid({**held, "data": {"id_call": "c1", "id_op": 2, "x": 1}})
    assert not validator.is_valid({**held, "data": {"id_call": "c1"}})
    assert not validator.is_valid({**held, "data": {"id_call": "c1", "id_op": "2"}})
    assert not validator.is_valid({**held, "extra": True, "data": {"id_call": "c1", "id_op": 2}})
    assert not validator.is_valid({**held, "at": "2026-12-07 10:00", "data": {}})
    withdrawn = {"seq": 4, "kind": "call.offer_withdrawn", "at": "2026-12-07T10:00:00Z"}
    data = {"id_call": "c1", "id_op": 2, "reason": "timeout"}
    assert validator.is_valid({**withdrawn, "data": data})
    assert not validator.is_valid({**withdrawn, "data": {**data, "reason": "bored"}})
    assert validator.is_valid({"kind": "ping"})
    assert not validator.is_valid({"kind": "pong"})
    assert not validator.is_valid({"kind": "hello", "seq": -1})


def test_the_openapi_document_describes_the_schema_endpoint(calls_server: LiveServer) -> None:
    with calls_server.client() as client:
        openapi = client.get("/openapi.json").json()
    ok = openapi["paths"][SCHEMA_PATH]["get"]["responses"]["200"]["content"]
    described = ok["application/schema+json"]["schema"]
    assert described == {"$ref": "#/components/schemas/SchemaDocument"}
    # The description holds for the document served, down to each keyword of each schema
    # (the models refuse what they do not name).
    validator = Draft202012Validator({**described, "components": openapi["components"]})
    assert not list(validator.iter_errors(served_schema(calls_server)))


class Recorder:
    """Reads a stream's frames, keeping each (kind → first frame) it has seen."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: dict[str, dict[str, Any]] = {}

    def until(self, kind: str, timeout: float = 10.0, **data: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            self.seen.setdefault(frame["kind"], frame)
            got = frame.get("data", {})
            if frame["kind"] == kind and all(got.get(k) == v for k, v in data.items()):
                found: dict[str, Any] = frame
                return found


def test_the_stream_sends_every_catalogued_kind(
    calls_server: LiveServer, acme: SeededAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One working day in miniature, watched by a supervisor; each frame as the schema says."""
    monkeypatch.setattr(events_ws, "HEARTBEAT_SECONDS", 0.5)
    http = calls_server.client(auth=acme.auth)
    ivr = {
        "start": "order",
        "steps": {
            "order": {
                "type": "collect",
                "prompt": {"text": "Your order number, then hash"},
                "variable": "order_number",
                "min_length": 2,
                "max_length": 6,
                "next": {"group": acme.id_group},
            }
        },
    }
    assert http.patch(f"/api/v1/numbers/{acme.number}", json={"ivr": ivr}).status_code == 200
    ana = Operator(calls_server, acme, acme.id_agent)
    bob = Operator(calls_server, acme, acme.other_id_agent)
    supervisor = token_for(calls_server, acme, id_admin=acme.id_admin)
    validator = Draft202012Validator(served_schema(calls_server))
    try:
        with events(calls_server, supervisor) as ws:
            stream = Recorder(ws)
            stream.until("hello")
            stream.until("ping")
            ana.status("online")
            stream.until("operator.status", id_op=acme.id_agent, status="online")
            first = place_call(calls_server, acme, dtmf="42#")  # arrived, ivr_variable, queued
            stream.until("call.offered", id_call=first)
            assert ana.act(first, "decline").status_code == 200
            stream.until("call.offer_withdrawn", id_call=first, reason="declined")
            stream.until("call.offered", id_call=first)  # Ana is the only one online
            assert ana.act(first, "answer").status_code == 200
            assert ana.act(first, "hold").status_code == 200
            assert ana.act(first, "unhold").status_code == 200
            bob.status("online")
            transfer = ana.act(first, "transfer", id_op=acme.other_id_agent)
            assert transfer.status_code == 200, transfer.text
            stream.until("call.offered", id_call=first, id_op=acme.other_id_agent)
            assert bob.act(first, "answer").status_code == 200
            assert bob.act(first, "hangup").status_code == 200
            stream.until("call.ended")
            outbound = ana.http.post("/api/v1/me/calls", json={"to": "33618220000"})
            assert outbound.status_code == 201, outbound.text
            second = outbound.json()["id_call"]
            stream.until("call.outbound", id_call=second)
            assert ana.act(second, "hangup").status_code == 200
            # Nobody left to answer: the next call waits 0.3 s, then goes to another number.
            ana.status("offline")
            bob.status("offline")
            settings = {"max_wait": 0.3, "overflow_number": "33170200999"}
            patched = http.patch(f"/api/v1/groups/{acme.id_group}", json={"settings": settings})
            assert patched.status_code == 200, patched.text
            third = place_call(calls_server, acme, dtmf="77#")
            stream.until("call.overflowed", id_call=third, to_number="33170200999")
            stream.until("call.ended")
    finally:
        for person in (ana, bob):
            person.http.close()
        http.close()
    # A webhook disabled after days of failures is produced by the webhook delivery tests.
    assert set(stream.seen) == set(FRAMES) - {"webhook.disabled"}
    for kind, frame in stream.seen.items():
        assert validator.is_valid(frame), (kind, frame)


def _sections() -> dict[str, str]:
    """docs/events.md's reference sections, by the kind in their heading (### `kind`)."""
    text = DOCS.read_text(encoding="utf-8")
    parts = re.split(r"^### `([a-z_.]+)`.*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _names(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """Every property name and enum value under ``schema``, following $refs."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if "$ref" in node:
            stack.append(defs[node["$ref"].rsplit("/", 1)[-1]])
        found.update(str(value) for value in node.get("enum", ()))
        for name, sub in node.get("properties", {}).items():
            found.add(name)
            stack.append(sub)
        stack.extend(node.get("anyOf", ()))
        if isinstance(node.get("items"), dict):
            stack.append(node["items"])
    return found


def test_the_docs_name_every_kind_field_and_value_of_the_schema() -> None:
    document = event_schema()
    defs = document["$defs"]
    sections = _sections()
    assert set(sections) == set(FRAMES) | set(INTERNAL_EVENTS)
    for branch in document["oneOf"]:
        frame = defs[branch["$ref"].rsplit("/", 1)[-1]]
        kind = frame["properties"]["kind"]["const"]
        data = frame["properties"].get("data")
        names = _names(data, defs) if data else _names(frame, defs) - {kind}
        missing = sorted(n for n in names if f"`{n}`" not in sections[kind])
        assert not missing, f"docs/events.md, {kind}: {missing} not described"
    for kind in INTERNAL_EVENTS:
        internal = internal_event_schema(kind)
        names = _names(internal["properties"]["data"], internal["$defs"])
        missing = sorted(n for n in names if f"`{n}`" not in sections[kind])
        assert not missing, f"docs/events.md, {kind}: {missing} not described"
    text = DOCS.read_text(encoding="utf-8")
    for name in ("seq", "kind", "at", "data", SCHEMA_PATH):
        assert f"`{name}`" in text
