"""Forms validated against an item's JSON Schema (2020-12), errors named field by field."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]

from libs.common.errors import FieldError, InvalidInput
from services.workflow.applications.schemas import MAX_FORM_BYTES

_MAX_ERRORS = 50
_CACHE_SIZE = 512
_validators: OrderedDict[str, Draft202012Validator] = OrderedDict()
_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property")


def validator_for(cache_key: str, schema: dict[str, Any]) -> Draft202012Validator:
    """The compiled validator of a published version's form (cached: versions never change)."""
    found = _validators.get(cache_key)
    if found is not None:
        _validators.move_to_end(cache_key)
        return found
    made = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    _validators[cache_key] = made
    while len(_validators) > _CACHE_SIZE:
        _validators.popitem(last=False)
    return made


def _location(error: ValidationError) -> list[str | int]:
    path: list[str | int] = [p for p in error.absolute_path if isinstance(p, str | int)]
    if error.validator == "required":
        match = _REQUIRED.match(error.message)
        if match:
            path.append(match.group("name"))
    return ["body", "form", *path]


def check_form(
    *, cache_key: str, schema: dict[str, Any], form: dict[str, Any], complete: bool
) -> None:
    """Raise a 422 problem naming each bad field; a draft (not ``complete``) may miss fields."""
    if len(json.dumps(form, ensure_ascii=False)) > MAX_FORM_BYTES:
        raise InvalidInput.for_field("form", f"the form is larger than {MAX_FORM_BYTES} bytes")
    errors: list[FieldError] = []
    declared = schema.get("properties")
    if isinstance(declared, dict):
        errors += [
            FieldError(loc=["body", "form", name], msg="not a field of this form",
                       type="extra_forbidden")
            for name in form
            if name not in declared
        ]  # fmt: skip
    for error in validator_for(cache_key, schema).iter_errors(form):
        if not complete and error.validator == "required":
            continue
        errors.append(
            FieldError(loc=_location(error), msg=error.message[:300], type=str(error.validator))
        )
        if len(errors) >= _MAX_ERRORS:
            break
    if errors:
        names = ", ".join(".".join(str(p) for p in e.loc[2:]) or "form" for e in errors[:10])
        raise InvalidInput(f"The form is not valid: {names}.", errors=errors)
