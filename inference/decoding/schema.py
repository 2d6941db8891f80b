"""JSON-schema checks shared by the request validation and the engines' output validation."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as _JsonSchemaError
from jsonschema.exceptions import ValidationError

from inference.errors import SchemaError


def check_schema(schema: dict[str, Any]) -> None:
    """Raise `SchemaError` unless `schema` is a valid JSON schema (draft 2020-12)."""
    try:
        Draft202012Validator.check_schema(schema)
    except _JsonSchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise SchemaError(f"invalid JSON schema at {where}: {exc.message}") from None


def parse_and_validate(text: str, schema: dict[str, Any] | None) -> Any:
    """Parse `text` as JSON and validate it; raise `SchemaError` saying what is wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"not valid JSON: {exc.msg} at position {exc.pos}") from None
    if schema is not None:
        try:
            Draft202012Validator(schema).validate(value)
        except ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise SchemaError(f"does not match the schema at {where}: {exc.message}") from None
    return value
