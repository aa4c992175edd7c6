"""The merged form and the union of materials of a bundle's items (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from libs.common.errors import FieldError, InvalidInput
from services.catalog.bundles.schemas import BundleItemRef, BundleMerge, FieldSource, MergedMaterial
from services.catalog.items.schemas import ItemSnapshot

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _canonical(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _error(loc: Sequence[str | int], msg: str) -> FieldError:
    return FieldError(loc=["body", *loc], msg=msg, type="value_error")


def merge(
    *,
    name: str,
    items: Sequence[tuple[ItemSnapshot, int]],
    field_mapping: Mapping[str, Mapping[str, str]],
) -> BundleMerge:
    """Merge the items' forms (a property asked once when defined identically) and materials.

    Raises a 422 problem listing each property defined differently by two items, and each
    mapping that names an item or property the bundle does not have.
    """
    errors: list[FieldError] = []
    ids = {snapshot.item_id for snapshot, _ in items}
    for item_id, renames in field_mapping.items():
        if item_id not in ids:
            errors.append(_error(["field_mapping", item_id], "not one of the bundle's items"))
            continue
        snapshot = next(s for s, _ in items if s.item_id == item_id)
        declared = snapshot.form.get("properties", {})
        for field in renames:
            if field not in declared:
                errors.append(
                    _error(["field_mapping", item_id, field],
                           f"'{field}' is not a property of {snapshot.code}'s form")
                )  # fmt: skip
    properties: dict[str, Any] = {}
    owners: dict[str, str] = {}
    sources: dict[str, list[FieldSource]] = {}
    required: set[str] = set()
    for snapshot, _ in items:
        renames = field_mapping.get(snapshot.item_id, {})
        for field, schema in snapshot.form.get("properties", {}).items():
            merged_name = renames.get(field, field)
            if merged_name in properties:
                if _canonical(properties[merged_name]) != _canonical(schema):
                    errors.append(
                        _error(["item_ids"],
                               f"'{merged_name}' is defined differently by {owners[merged_name]} "
                               f"and {snapshot.code}; rename one in field_mapping")
                    )  # fmt: skip
                    continue
            else:
                properties[merged_name] = schema
                owners[merged_name] = snapshot.code
            sources.setdefault(merged_name, []).append(
                FieldSource(item_id=snapshot.item_id, field=field)
            )
        required.update(renames.get(f, f) for f in snapshot.form.get("required", []))
    if errors:
        raise InvalidInput(
            "The bundle's forms cannot be merged: " + "; ".join(e.msg for e in errors[:5]),
            errors=errors,
        )
    form: dict[str, Any] = {
        "$schema": DRAFT_2020_12,
        "type": "object",
        "title": name,
        "properties": properties,
        "required": sorted(required),
    }
    return BundleMerge(
        items=[
            BundleItemRef(
                item_id=s.item_id, version=v, code=s.code, name=s.name, owner_org_id=s.owner_org_id
            )
            for s, v in items
        ],  # fmt: skip
        merged_form=form,
        field_sources=sources,
        materials=_union_of_materials(items, field_mapping),
    )


def _union_of_materials(
    items: Sequence[tuple[ItemSnapshot, int]], field_mapping: Mapping[str, Mapping[str, str]]
) -> list[MergedMaterial]:
    # Deduplicated by key and source: the same upload, or the same dataset keyed by the same
    # (merged) applicant field; a dataset material's fields are the union of what each needs.
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for snapshot, _ in items:
        renames = field_mapping.get(snapshot.item_id, {})
        for material in snapshot.materials:
            body = material.model_dump(mode="json")
            if material.dataset is not None:
                field = renames.get(material.dataset.applicant_field,
                                    material.dataset.applicant_field)  # fmt: skip
                body["dataset"]["applicant_field"] = field
                identity: tuple[str, ...] = ("dataset", material.key,
                                             material.dataset.dataset_id, field)  # fmt: skip
            else:
                identity = ("upload", material.key)
            found = merged.get(identity)
            if found is None:
                merged[identity] = {**body, "item_ids": [snapshot.item_id]}
                continue
            if snapshot.item_id not in found["item_ids"]:
                found["item_ids"].append(snapshot.item_id)
            if material.dataset is not None:
                wanted = found["dataset"]["fields"]
                wanted.extend(f for f in material.dataset.fields if f not in wanted)
    return [MergedMaterial.model_validate(m, strict=False) for m in merged.values()]
