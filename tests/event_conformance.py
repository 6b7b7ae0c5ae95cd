"""Every event the test suite produces, checked against the served event schema.

``tests/conftest.py`` installs :class:`Conformance` for the whole session: it wraps both event
bus adapters' ``publish_many`` (every event published, as its frame on the wire) and the
WebSocket's ``send_text`` / ``send_json`` (every frame sent: ``hello``, ``ping``, events).
Each frame is validated with ``jsonschema`` against the branch of its ``kind`` in
``GET /events.schema.json``'s document (no other branch admits that kind); one that does not
conform fails the test during which it was produced. Tests of the bus itself publish made-up
events on purpose: they are marked ``arbitrary_events`` and left unchecked.

Frames are only noted while the test runs and validated at its end: validating on the server's
event loop would slow it down, and tests that time operators' answers would see the difference.
The kinds of the frames found good are collected over the session, so that a run of the whole
suite can tell a catalogued kind that no test produces.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from starlette.websockets import WebSocket

from voicemgmt.adapters.events.memory import InMemoryEventBus
from voicemgmt.adapters.events.redis import RedisEventBus
from voicemgmt.services.events import Event
from voicemgmt.web.event_schema import INTERNAL_EVENTS, internal_event_schema


def inlined(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with its ``#/$defs/…`` references replaced by their targets (the catalogue has
    no cycles): the same checks, three times faster than resolving references each time."""
    if isinstance(node, list):
        return [inlined(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = inlined(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {**target, **{k: inlined(v, defs) for k, v in node.items() if k != "$ref"}}
    return {key: inlined(value, defs) for key, value in node.items() if key != "$defs"}


class Conformance:
    """Notes frames and events as they are produced; checks them when asked."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft202012Validator.check_schema(schema)
        defs = schema["$defs"]
        self.by_kind: dict[str, Draft202012Validator] = {}
        for branch in schema["oneOf"]:
            frame = inlined(branch, defs)
            self.by_kind[frame["properties"]["kind"]["const"]] = Draft202012Validator(frame)
        for kind in INTERNAL_EVENTS:  # published as frames too: {"seq", "kind", "at", "data"}
            internal = internal_event_schema(kind)
            self.by_kind[kind] = Draft202012Validator(inlined(internal, internal["$defs"]))
        self.kinds_produced: set[str] = set()
        self.enabled = True  # off during a test marked arbitrary_events
        # frame text → where it was seen ("published and sent"): one event sent to many, once
        self._noted: dict[str, str] = {}
        self._lock = threading.Lock()

    def note(self, text: str, where: str) -> None:
        if self.enabled:
            with self._lock:
                before = self._noted.get(text)
                if before is None:
                    self._noted[text] = where
                elif where not in before:
                    self._noted[text] = f"{before} and {where}"

    def note_frame(self, frame: Any, where: str) -> None:
        if self.enabled:
            self.note(json.dumps(frame, ensure_ascii=False, default=str), where)

    def take_problems(self) -> list[str]:
        """Check what was noted since the last call; forget it; say what does not conform."""
        with self._lock:
            noted, self._noted = self._noted, {}
        problems = []
        for text, where in noted.items():
            problem = self._check(json.loads(text), where)
            if problem is not None:
                problems.append(problem)
        return problems

    def _check(self, frame: Any, where: str) -> str | None:
        kind = frame.get("kind") if isinstance(frame, dict) else None
        validator = self.by_kind.get(kind) if isinstance(kind, str) else None
        if validator is None or not isinstance(kind, str):
            return f"{where}: a frame of no catalogued kind: {_short(frame)}"
        if kind in INTERNAL_EVENTS and "sent" in where:
            return f"{where}: {kind} is internal, never for clients: {_short(frame)}"
        error = best_match(validator.iter_errors(frame))
        if error is not None:
            path = "/".join(str(p) for p in error.absolute_path) or "(frame)"
            return f"{where}: {kind} at {path}: {error.message}; {_short(frame)}"
        self.kinds_produced.add(kind)
        return None

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap the adapters' publishing and the WebSocket's sends while inside."""
        originals: list[tuple[type, str, Any]] = []

        def wrap(owner: type, name: str, make: Callable[[Any], Any]) -> None:
            original = owner.__dict__[name]
            originals.append((owner, name, original))
            setattr(owner, name, wraps(original)(make(original)))

        def published(original: Any) -> Any:
            async def publish_many(bus: Any, *args: Any, **kwargs: Any) -> list[Event]:
                events: list[Event] = await original(bus, *args, **kwargs)
                for event in events:
                    self.note(event.frame(), "published")
                return events

            return publish_many

        def sent_text(original: Any) -> Any:
            async def send_text(websocket: WebSocket, data: str) -> None:
                self.note(data, "sent")
                await original(websocket, data)

            return send_text

        def sent_json(original: Any) -> Any:
            async def send_json(websocket: WebSocket, data: Any, mode: str = "text") -> None:
                self.note_frame(data, "sent")
                await original(websocket, data, mode)

            return send_json

        for bus in (InMemoryEventBus, RedisEventBus):
            wrap(bus, "publish_many", published)
        wrap(WebSocket, "send_text", sent_text)
        wrap(WebSocket, "send_json", sent_json)
        try:
            yield
        finally:
            for owner, name, original in reversed(originals):
                setattr(owner, name, original)


def _short(frame: Any) -> str:
    text = json.dumps(frame, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:300] + "…"
