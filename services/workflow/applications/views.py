"""Applications as the API shows them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.applications import repository as applications_repository
from services.workflow.applications import schemas
from services.workflow.applications.journal import Changes
from services.workflow.applications.models import Application, ApplicationMaterial, HistoryEntry
from services.workflow.tasks import repository as tasks_repository
from services.workflow.tasks.models import Branch, Task

_SUMMARY_FIELDS = set(schemas.ApplicationSummary.model_fields)
_MATERIAL_FIELDS = set(schemas.Material.model_fields)


def summary(application: Application) -> schemas.ApplicationSummary:
    """An application, briefly."""
    return schemas.ApplicationSummary.model_validate(
        {name: getattr(application, name) for name in _SUMMARY_FIELDS}
    )


def material(row: ApplicationMaterial) -> schemas.Material:
    """One material (its storage path stays inside)."""
    return schemas.Material.model_validate({name: getattr(row, name) for name in _MATERIAL_FIELDS})


def for_department(
    materials: Sequence[ApplicationMaterial], branches: Sequence[Branch], org_id: str
) -> list[ApplicationMaterial]:
    """The materials a department's branches need: what its officers may see of a bundle."""
    items = {b.item_id for b in branches if b.department_org_id == org_id}
    return [m for m in materials if items.intersection(m.item_ids or ())]


async def full(
    session: AsyncSession, application: Application, *, department: str | None = None
) -> schemas.Application:
    """An application with its materials, branches, tasks and history, as stored; for an
    officer of ``department``, only the materials that department's branches need."""
    materials = await applications_repository.materials(session, application_id=application.id)
    branches = await tasks_repository.branches(session, application_id=application.id)
    if department is not None:
        materials = for_department(materials, branches, department)
    return _assemble(
        application,
        materials=materials,
        branches=branches,
        tasks=await tasks_repository.tasks(session, application_id=application.id),
        history=await applications_repository.history(session, application_id=application.id),
    )


def created(application: Application, changes: Changes) -> schemas.Application:
    """A new application as ``full`` would read it back, from the rows just written."""
    return _assemble(
        application,
        materials=changes.materials,
        branches=sorted(changes.branches, key=lambda b: (b.created_at, b.item_id)),
        tasks=sorted(changes.tasks, key=lambda t: (t.created_at, t.id)),
        history=sorted(changes.entries, key=lambda h: h.id),
    )


def _assemble(
    application: Application,
    *,
    materials: Sequence[ApplicationMaterial],
    branches: Sequence[Branch],
    tasks: Sequence[Task],
    history: Sequence[HistoryEntry],
) -> schemas.Application:
    return schemas.Application(
        **summary(application).model_dump(),
        form=application.form,
        supplement_rounds=application.supplement_rounds,
        supplement=application.supplement,
        result=application.result,
        materials=[material(m) for m in materials],
        branches=[schemas.BranchView.model_validate(b, from_attributes=True) for b in branches],
        tasks=[schemas.TaskBrief.model_validate(t, from_attributes=True) for t in tasks],
        history=[schemas.HistoryStep.model_validate(h, from_attributes=True) for h in history],
    )
