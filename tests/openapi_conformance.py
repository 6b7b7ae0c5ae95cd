"""Check real answers against ``/openapi.json``: the status is described for the operation,
the media type is one it names, and a JSON body validates against its schema.

``LiveServer.client()`` runs ``OpenApiConformance.check`` on every answer a test receives,
so every test that talks HTTP also checks the document; an answer that does not match fails
the test with what exactly differs. Paths the document does not name (``/static``, an unknown
path a test tries) are not checked here; ``test_openapi`` walks the document itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import jsonschema

_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return parsed.tzinfo is not None


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template}"


def path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


@dataclass
class OpenApiConformance:
    document: dict[str, Any]
    seen: set[tuple[str, int]] = field(default_factory=set)  # (operation name, status)
    _validators: dict[str, jsonschema.Draft202012Validator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.operations = [
            Operation(method, template, path_pattern(template), spec)
            for template, item in self.document["paths"].items()
            for method, spec in item.items()
        ]
        details = self.document["components"]["schemas"]["ErrorDetails"]
        self.detail_keys = set(details["properties"])

    def operation(self, method: str, path: str) -> Operation | None:
        for operation in self.operations:
            if operation.method == method.lower() and operation.pattern.match(path):
                return operation
        return None

    def validator(self, schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            # "#/components/..." references resolve against a root that holds the components.
            root = {**schema, "components": self.document.get("components", {})}
            self._validators[key] = jsonschema.Draft202012Validator(root, format_checker=_FORMATS)
        return self._validators[key]

    def problems(
        self, method: str, path: str, status: int, content_type: str, body: bytes
    ) -> list[str]:
        operation = self.operation(method, path)
        if operation is None:
            return []
        self.seen.add((operation.name, status))
        where = f"{operation.name} answered {status}"
        described = operation.spec.get("responses", {}).get(str(status))
        if described is None:
            listed = ", ".join(sorted(operation.spec.get("responses", {})))
            return [f"{where}, a status its responses do not describe (they list {listed})"]
        content: dict[str, Any] = described.get("content", {})
        if not content:
            return [] if not body else [f"{where} with a body, but it describes none"]
        given = media_type(content_type)
        declared = {media_type(m): m for m in content}
        if given not in declared:
            return [f"{where} as {given!r}, but it describes only {sorted(declared)}"]
        if given != "application/json" and not given.endswith("+json"):
            return []  # a page, a script, CSV: its media type is what the document says
        try:
            value = json.loads(body)
        except ValueError:
            return [f"{where} with a body that is not JSON: {body[:200]!r}"]
        schema = content[declared[given]].get("schema", {})
        found = [
            f"{where}: {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in self.validator(schema).iter_errors(value)
        ][:10]
        if status >= 400:
            found += self._error_problems(where, status, value)
        return found

    def _error_problems(self, where: str, status: int, value: Any) -> list[str]:
        if not isinstance(value, dict):
            return []
        found = []
        if value.get("status") != status:
            found.append(f"{where} with status {value.get('status')!r} in its body")
        details = value.get("details")
        if isinstance(details, dict):
            unknown = set(details) - self.detail_keys
            if unknown:
                found.append(
                    f"{where} with details keys {sorted(unknown)} that ErrorDetails "
                    "(voicemgmt.web.errors) does not document"
                )
        return found

    def check(self, response: httpx.Response) -> None:
        """An httpx response hook: fail the request that got an answer the document denies."""
        response.read()
        request = response.request
        found = self.problems(
            request.method,
            request.url.path,
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
        )
        if found:
            raise AssertionError("the answer does not match /openapi.json:\n" + "\n".join(found))
