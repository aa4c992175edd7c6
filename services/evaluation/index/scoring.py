"""Scores of the composite index: indicator -> dimension -> composite, with contributions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.evaluation.index.schemas import IndexSystemDefinition

Values = Mapping[str, float | None]


def indicator_score(value: float | None, *, target: float, floor: float) -> float | None:
    """0-100: ``floor`` scores 0, ``target`` scores 100, linear in between, clamped."""
    if value is None:
        return None
    fraction = (value - floor) / (target - floor)
    return max(0.0, min(1.0, fraction)) * 100


def score(
    system: IndexSystemDefinition, values: Values
) -> tuple[float | None, dict[str, float | None], list[dict[str, Any]]]:
    """(composite, dimension scores, each indicator's part) for one scope's values.

    An indicator without a value (no data in the period) leaves its dimension and its weight is
    shared by the others; a dimension without any value leaves the composite likewise. Each
    contribution is the points the indicator adds, so the contributions sum to the composite.
    """
    dimensions: dict[str, float | None] = {}
    parts: list[dict[str, Any]] = []
    # dimension -> [(indicator, score, weight share inside the dimension)]
    inside: dict[str, list[tuple[int, float]]] = {}
    for dimension in system.dimensions:
        scored = []
        for weighted in dimension.indicators:
            value = values.get(weighted.indicator)
            s = indicator_score(value, target=weighted.target, floor=weighted.floor)
            # Plain dicts (IndicatorScore's fields): the response validates them once, in bulk.
            parts.append(
                {"dimension": dimension.key, "indicator": weighted.indicator, "value": value,
                 "score": s, "weight": weighted.weight, "contribution": 0.0}
            )  # fmt: skip
            if s is not None:
                scored.append((len(parts) - 1, weighted.weight, s))
        total = sum(w for _, w, _ in scored)
        dimensions[dimension.key] = sum(w * s for _, w, s in scored) / total if total else None
        inside[dimension.key] = [(i, w / total) for i, w, _ in scored] if total else []
    present = [d for d in system.dimensions if dimensions[d.key] is not None]
    weight_total = sum(d.weight for d in present)
    if not weight_total:
        return None, dimensions, parts
    composite = 0.0
    for dimension in present:
        share = dimension.weight / weight_total
        for index, inner in inside[dimension.key]:
            part = parts[index]
            part["contribution"] = share * inner * part["score"]
            composite += part["contribution"]
    return composite, dimensions, parts
