"""The rules a service item's definition must keep: a valid form, a sound process template, and
materials that name real dataset fields. Each broken rule is a field error of one 422 problem."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import FieldError, InvalidInput
from services.catalog.datasets import repository as datasets_repository
from services.catalog.items.schemas import MAX_FORM_BYTES, ItemDefinition, Material, ProcessTemplate


def _error(loc: Sequence[str | int], msg: str) -> FieldError:
    return FieldError(loc=["body", *loc], msg=msg, type="value_error")


def form_errors(form: dict[str, Any]) -> list[FieldError]:
    """What is wrong with an application form (a JSON Schema, draft 2020-12, of an object)."""
    try:
        size = len(json.dumps(form, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return [_error(["form"], "the form is not JSON")]
    if size > MAX_FORM_BYTES:
        return [_error(["form"], f"the form is {size} bytes; at most {MAX_FORM_BYTES}")]
    try:
        Draft202012Validator.check_schema(form)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        return [_error(["form"], f"not a valid JSON Schema (2020-12) at '{where}': {exc.message}")]
    errors = []
    if form.get("type") != "object":
        errors.append(_error(["form", "type"], "the form's top level must be of type 'object'"))
    properties = form.get("properties", {})
    if not isinstance(properties, dict) or not properties:
        errors.append(_error(["form", "properties"], "the form must declare its properties"))
    return errors


def template_errors(template: ProcessTemplate) -> list[FieldError]:
    """What is wrong with a process template: unknown or unreachable states, no end."""
    errors: list[FieldError] = []
    keys = [s.key for s in template.states]
    if len(set(keys)) != len(keys):
        errors.append(_error(["template", "states"], "state keys must be unique"))
    action_keys = [a.key for a in template.actions]
    if len(set(action_keys)) != len(action_keys):
        errors.append(_error(["template", "actions"], "action keys must be unique"))
    known = set(keys)
    ends = {s.key for s in template.states if s.end}
    if template.start not in known:
        errors.append(_error(["template", "start"], f"unknown state '{template.start}'"))
    elif template.start in ends:
        errors.append(_error(["template", "start"], "the start state cannot be an end state"))
    if not ends:
        errors.append(_error(["template", "states"], "the template has no end state"))
    for i, action in enumerate(template.actions):
        for side in ("from_states", "to_states"):
            for state in getattr(action, side):
                if state not in known:
                    errors.append(
                        _error(["template", "actions", i, side], f"unknown state '{state}'")
                    )
        leaving_end = sorted(set(action.from_states) & ends)
        if leaving_end:
            errors.append(
                _error(["template", "actions", i, "from_states"],
                       f"an end state has no further steps: {', '.join(leaving_end)}")
            )  # fmt: skip
    supplements = [a.key for a in template.actions if a.supplement]
    if len(supplements) > 1:
        errors.append(
            _error(["template", "actions"],
                   f"at most one 'request supplement' step; found {', '.join(supplements)}")
        )  # fmt: skip
    if errors:
        return errors
    reached = _reachable(template)
    unreachable = [k for k in keys if k not in reached]
    if unreachable:
        errors.append(
            _error(["template", "states"],
                   f"unreachable from '{template.start}': {', '.join(unreachable)}")
        )  # fmt: skip
    if ends and not ends & reached:
        errors.append(
            _error(["template", "states"], f"no end state can be reached from '{template.start}'")
        )
    return errors


def _reachable(template: ProcessTemplate) -> set[str]:
    # A step is possible once every state it leaves from is reached (a join waits for all).
    reached = {template.start}
    grew = True
    while grew:
        grew = False
        for action in template.actions:
            if set(action.from_states) <= reached and not set(action.to_states) <= reached:
                reached |= set(action.to_states)
                grew = True
    return reached


async def material_errors(
    session: AsyncSession, *, materials: Sequence[Material], form: dict[str, Any]
) -> list[FieldError]:
    """What is wrong with sourced materials: an unknown dataset or field, a key not in the form."""
    errors: list[FieldError] = []
    properties = form.get("properties")
    form_fields = set(properties) if isinstance(properties, dict) else set()
    for i, material in enumerate(materials):
        source = material.dataset
        if source is None:
            continue
        loc: list[str | int] = ["materials", i, "dataset"]
        if source.applicant_field not in form_fields:
            errors.append(
                _error([*loc, "applicant_field"],
                       f"'{source.applicant_field}' is not a property of the form")
            )  # fmt: skip
        dataset = await datasets_repository.get(session, dataset_id=source.dataset_id)
        if dataset is None or dataset.published_version is None or dataset.status == "retired":
            errors.append(_error([*loc, "dataset_id"], f"no published dataset {source.dataset_id}"))
            continue
        version = await datasets_repository.get_version(
            session, dataset_id=dataset.id, version=dataset.published_version
        )
        published = (version.definition if version else {}).get("fields", [])
        names = {f.get("name") for f in published if isinstance(f, dict)}
        unknown = [f for f in source.fields if f not in names]
        if unknown:
            errors.append(
                _error([*loc, "fields"],
                       f"not fields of dataset {dataset.code}: {', '.join(unknown)}")
            )  # fmt: skip
    return errors


async def check_definition(session: AsyncSession, *, definition: ItemDefinition) -> None:
    """Raise one 422 problem listing everything wrong with ``definition``."""
    errors = [
        *form_errors(definition.form),
        *template_errors(definition.template),
        *await material_errors(session, materials=definition.materials, form=definition.form),
    ]
    if errors:
        raise InvalidInput(
            f"The service item breaks {len(errors)} rule(s): "
            + "; ".join(e.msg for e in errors[:5]),
            errors=errors,
        )
