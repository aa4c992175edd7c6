"""Application forms from JSON Schema: the fields to render, and typed values from what was posted.

The services validate (workflow checks the form against the schema and answers 422 naming each
field); the portal only renders the schema and converts what a browser posts (text) into the
schema's JSON types, leaving anything it cannot convert as text so the 422 names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

_INPUT_TYPES = {"date": "date", "email": "email", "date-time": "datetime-local", "uri": "url"}


@dataclass(frozen=True)
class Field:
    """One input of the form."""

    name: str
    label: str
    control: str  # text, number, date, email, url, checkbox, select, textarea
    required: bool
    value: str
    error: str | None
    hint: str
    options: tuple[str, ...] = ()
    max_length: int | None = None
    step: str | None = None


def _control(schema: dict[str, Any]) -> tuple[str, str | None]:
    kind = schema.get("type")
    if "enum" in schema:
        return "select", None
    if kind == "boolean":
        return "checkbox", None
    if kind in {"integer", "number"}:
        return "number", "1" if kind == "integer" else "any"
    if kind == "string" and schema.get("format") in _INPUT_TYPES:
        return _INPUT_TYPES[schema["format"]], None
    if kind == "string" and int(schema.get("maxLength", 0)) > 200:
        return "textarea", None
    return "text", None


def fields_of(
    schema: dict[str, Any], values: dict[str, str], errors: dict[str, str]
) -> list[Field]:
    """The fields of ``schema`` with the values and error messages to show."""
    required = set(schema.get("required", []))
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        control, step = _control(prop)
        fields.append(
            Field(
                name=name,
                label=str(prop.get("title") or name),
                control=control,
                required=name in required,
                value=values.get(name, ""),
                error=errors.get(name),
                hint=str(prop.get("description") or ""),
                options=tuple(str(option) for option in prop.get("enum", ())),
                max_length=prop.get("maxLength"),
                step=step,
            )
        )
    # A field-level error on a property the schema does not list is still shown.
    known = {field.name for field in fields}
    for name, message in errors.items():
        if name not in known:
            fields.append(Field(name, name, "text", False, values.get(name, ""), message, ""))
    return fields


def _typed(prop: dict[str, Any], text: str) -> Any:
    kind = prop.get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            number = float(text)
            return int(number) if number.is_integer() and "." not in text else number
    except ValueError:
        return text  # workflow names the field in its 422
    return text


def values_from(schema: dict[str, Any], posted: FormData) -> dict[str, Any]:
    """The form's JSON from a browser's post: empty fields left out, types from the schema."""
    values: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if prop.get("type") == "boolean":
            if name in posted or name in set(schema.get("required", [])):
                values[name] = posted.get(name) in {"on", "true", "1"}
            continue
        raw = posted.get(name)
        if not isinstance(raw, str) or raw.strip() == "":
            continue
        values[name] = _typed(prop, raw.strip())
    return values


def changed_values(
    schema: dict[str, Any], posted: FormData, current: dict[str, Any]
) -> dict[str, Any]:
    """Only the fields whose posted value differs from the application's (a supplement)."""
    return {k: v for k, v in values_from(schema, posted).items() if current.get(k) != v}
