"""``GET /events.schema.json``: the event catalogue (``event_schema``) as JSON Schema.

Public, like ``/cnx.d.ts``: integrators validate what the stream and webhooks send with it.
Its OpenAPI description names every keyword the document uses, so a tool reading
``/openapi.json`` knows its shape down to each property's schema.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from voicemgmt.web.event_schema import SCHEMA_PATH, event_schema

router = APIRouter()


class SchemaNode(BaseModel):
    """A schema within the document: the JSON Schema keywords the catalogue uses."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    ref: str | None = Field(default=None, alias="$ref", description="`#/$defs/<name>`.")
    type: Literal["object", "string", "integer", "number", "array", "null"] | None = None
    title: str | None = None
    description: str | None = None
    properties: dict[str, SchemaNode] | None = None
    required: list[str] | None = None
    additional_properties: bool | SchemaNode | None = Field(
        default=None, alias="additionalProperties"
    )
    any_of: list[SchemaNode] | None = Field(default=None, alias="anyOf")
    items: SchemaNode | None = None
    enum: list[str] | None = None
    const: str | None = None
    pattern: str | None = None
    minimum: int | None = None
    min_length: int | None = Field(default=None, alias="minLength")


class Discriminator(BaseModel):
    """OpenAPI's hint (ignored by JSON Schema validators): the branch named by ``kind``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    property_name: Literal["kind"] = Field(alias="propertyName")
    mapping: dict[str, str] = Field(description="Each kind → the `$ref` of its frame.")


class SchemaDocument(BaseModel):
    """A JSON Schema (draft 2020-12) document: one branch of ``oneOf`` per frame kind."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(alias="$schema", description="The JSON Schema dialect.")
    id_: str = Field(alias="$id", description="Where the document is served.")
    title: str
    description: str
    one_of: list[SchemaNode] = Field(alias="oneOf", description="One `$ref` per frame kind.")
    discriminator: Discriminator
    defs: dict[str, SchemaNode] = Field(
        alias="$defs", description="The schema of each frame and of what it carries, by name."
    )


class SchemaResponse(JSONResponse):
    media_type = "application/schema+json"


@router.get(
    SCHEMA_PATH,
    tags=["events"],
    summary="The JSON Schema of every event-stream frame",
    response_model=SchemaDocument,
    response_class=SchemaResponse,
)
async def get_event_schema() -> Response:
    """What `/vm/events` frames (and webhooks' events) look like; public, like `/cnx.d.ts`.

    See docs/events.md for when each kind is sent, and to whom."""
    return SchemaResponse(
        event_schema(), headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
    )
