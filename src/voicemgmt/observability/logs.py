"""Logs: plain text or one JSON object per line (``VM_LOG_FORMAT``), with the call id.

The call a piece of work is about is a context variable: the routing service and the switches
set it where a call's input or command is handled (``about_call``), and tasks or timers
started for one call run in its context (``call_context``); work for no call in particular
(an account's timer, its outbox) runs in ``no_call()``. Every line logged meanwhile, by any
logger, carries ``id_call``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

current_call: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "voicemgmt_call", default=None
)


@contextmanager
def about_call(call_id: str) -> Iterator[None]:
    """Lines logged inside are about ``call_id``."""
    token = current_call.set(call_id)
    try:
        yield
    finally:
        current_call.reset(token)


def call_context(call_id: str | None) -> contextvars.Context:
    """A copy of the current context about ``call_id`` (or no call), for a task or a timer:
    ``loop.create_task(job, context=call_context(id))``."""
    context = contextvars.copy_context()
    context.run(current_call.set, call_id)
    return context


def no_call() -> contextvars.Context:
    """For work that outlives the call it was started from (tasks copy their creator's
    context): an account's timer, its outbox's worker."""
    return call_context(None)


class CallIdFilter(logging.Filter):
    """Adds ``id_call`` (or None) to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "id_call", None) is None:
            record.id_call = current_call.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, ``id_call``
    (when the line is about a call), ``exception`` (a traceback, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        id_call = getattr(record, "id_call", None)
        if id_call is not None:
            line["id_call"] = id_call
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message [id_call=…]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        id_call = getattr(record, "id_call", None)
        if id_call is None:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} [id_call={id_call}]{newline}{rest}"


# Their INFO lines are noise in a server's log: httpx a line per request (the demo's caller),
# alembic two per start whether or not a migration runs.
_CHATTY = ("httpx", "alembic")


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Send every logger's lines to stderr in ``log_format``, from ``level`` up.

    In JSON, uvicorn's own loggers are routed here too (run uvicorn with ``log_config=None``),
    so that every line of the process is JSON.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(CallIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if root.level > logging.DEBUG:
        for chatty in _CHATTY:
            logging.getLogger(chatty).setLevel(logging.WARNING)
    if log_format == "json":
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
            uvicorn_logger = logging.getLogger(name)
            uvicorn_logger.handlers.clear()
            uvicorn_logger.propagate = True


def uvicorn_log_config(log_format: LogFormat) -> dict[str, Any] | None:
    """What to pass uvicorn as ``log_config`` after ``configure_logging``: its own text setup,
    or none at all in JSON (its lines then reach the root logger's JSON handler)."""
    if log_format == "json":
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
