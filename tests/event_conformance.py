"""Every event the test suite produces, checked against the served event schema.

``tests/conftest.py`` installs :class:`Conformance` for the whole session: it wraps both event
bus adapters' ``publish_many`` (every event published, as its frame on the wire) and the
WebSocket's ``send_text`` / ``send_json`` (every frame sent: ``hello``, ``ping``, events).
Each is validated with ``jsonschema`` against ``GET /events.schema.json``'s document (the
branch of its ``kind``, then the whole ``oneOf``); a frame that does not conform fails the
test during which it was produced. Tests of the bus itself publish made-up events on purpose:
they are marked ``arbitrary_events`` and left unchecked.

The kinds produced by passing checks are collected over the session, so that a run of the
whole suite can tell a catalogued kind that no test produces.
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
from voicemgmt.web.event_schema import INTERNAL_EVENTS, event_schema, internal_event_schema


def _frame_kind(branch: dict[str, Any]) -> str:
    ref = branch["$ref"].rsplit("/", 1)[-1]
    kind: str = event_schema()["$defs"][ref]["properties"]["kind"]["const"]
    return kind


class Conformance:
    """Checks frames and events against the schema; collects problems and kinds seen."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft202012Validator.check_schema(schema)
        self.whole = Draft202012Validator(schema)
        self.by_kind = {
            _frame_kind(branch): Draft202012Validator(
                {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": branch["$ref"]}
            )
            for branch in schema["oneOf"]
        }
        self.internal = {
            kind: Draft202012Validator(internal_event_schema(kind)) for kind in INTERNAL_EVENTS
        }
        self.kinds_produced: set[str] = set()
        self.enabled = True  # off during a test marked arbitrary_events
        self._problems: list[str] = []
        self._lock = threading.Lock()

    def check_frame(self, frame: Any, where: str) -> None:
        """A frame as a client receives it (decoded JSON)."""
        if not self.enabled:
            return
        kind = frame.get("kind") if isinstance(frame, dict) else None
        validator = self.by_kind.get(kind) if isinstance(kind, str) else None
        if validator is None or not isinstance(kind, str):
            self._problem(f"{where}: a frame of no catalogued kind: {_short(frame)}")
            return
        first = best_match(validator.iter_errors(frame)) or best_match(
            self.whole.iter_errors(frame)
        )
        if first is not None:
            path = "/".join(str(p) for p in first.absolute_path) or "(frame)"
            self._problem(f"{where}: {kind} at {path}: {first.message}; {_short(frame)}")
            return
        with self._lock:
            self.kinds_produced.add(kind)

    def check_published(self, event: Event) -> None:
        if not self.enabled:
            return
        if event.kind in self.internal:
            errors = list(self.internal[event.kind].iter_errors(dict(event.data)))
            if errors:
                self._problem(f"published {event.kind}: {errors[0].message}")
            else:
                with self._lock:
                    self.kinds_produced.add(event.kind)
            return
        self.check_frame(json.loads(event.frame()), "published")

    def take_problems(self) -> list[str]:
        with self._lock:
            problems, self._problems = self._problems, []
        return problems

    def _problem(self, text: str) -> None:
        with self._lock:
            self._problems.append(text)

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
                    self.check_published(event)
                return events

            return publish_many

        def sent_text(original: Any) -> Any:
            async def send_text(websocket: WebSocket, data: str) -> None:
                self.check_frame(json.loads(data), "sent")
                await original(websocket, data)

            return send_text

        def sent_json(original: Any) -> Any:
            async def send_json(websocket: WebSocket, data: Any, mode: str = "text") -> None:
                self.check_frame(json.loads(json.dumps(data)), "sent")
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
