"""OpenAPI for bodies the routes read themselves (to answer bad JSON with a clear 400): each
body's schema is declared here and its nested models land in `components.schemas`, so every
`$ref` resolves and typed clients can be generated from `/openapi.json`.

Errors are documented as they are sent: every error status an operation declares, and any other
(`default`), is Sidecar's `{"error": {...}}` body, not FastAPI's `HTTPValidationError`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

REF = "#/components/schemas/{model}"
_BODIES: list[type[BaseModel]] = []


class ErrorDetail(BaseModel):
    """What went wrong: `type` for programs, `message` for people, `field` when one is to blame
    (some errors add more, e.g. a timed-out chat's `job_id`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body is `model`."""
    _BODIES.append(model)
    schema = model.model_json_schema(ref_template=REF)
    schema.pop("$defs", None)
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


def _document_errors(schema: dict[str, Any]) -> None:
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = error
            responses["default"] = {"description": "an error", "content": error}
    components = schema["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    error_body = ErrorBody.model_json_schema(ref_template=REF)
    components.update(error_body.pop("$defs"))
    components["ErrorBody"] = error_body


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in _BODIES:
                for name, definition in model.model_json_schema(ref_template=REF).get(
                        "$defs", {}).items():
                    components.setdefault(name, definition)
            _document_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
