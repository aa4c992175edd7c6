"""The process engine at work: branches started, tasks created, claimed and decided.

Every change to an application's process starts by locking the application
(``applications_repository.lock``), so decisions on its branches run one after another and
each sees what the one before it did; claims and decisions on one task are conditional
updates, so of two concurrent ones exactly one wins (the other gets a 409 problem).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role
from libs.common.errors import Forbidden, InvalidInput
from libs.common.events import EventData
from services.workflow import bulk, sla
from services.workflow.applications import journal
from services.workflow.applications import repository as applications_repository
from services.workflow.applications.events import (
    ApplicationCompleted,
    ApplicationRejected,
    ApplicationStarted,
    SupplementRequested,
)
from services.workflow.applications.exceptions import (
    SupplementAlreadyRequested,
    TaskConflict,
    TaskNotFound,
    WrongStatus,
)
from services.workflow.applications.journal import Changes
from services.workflow.applications.models import Application
from services.workflow.catalogue import templates
from services.workflow.catalogue.schemas import Action, ItemSnapshot
from services.workflow.ids import as_utc, new_id, utcnow
from services.workflow.tasks import engine
from services.workflow.tasks import repository as tasks_repository
from services.workflow.tasks.events import (
    TaskCancelled,
    TaskClaimed,
    TaskCompleted,
    TaskCreated,
    TaskOpened,
    TaskUnclaimed,
)
from services.workflow.tasks.models import ACTIVE_TASK_STATES, Branch, Task

ACTING_ROLES = frozenset({Role.OFFICER, Role.DEPT_ADMIN})


def _task_event_base(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.id, "application_id": task.application_id, "item_id": task.item_id,
        "department_org_id": task.department_org_id, "role": task.role, "step": task.step,
    }  # fmt: skip


def _open(task: Task, *, at: datetime, changes: Changes) -> None:
    """Put a task in its inbox with a deadline and start its SLA clock."""
    task.state = "open"
    task.opened_at = at
    task.due_at = sla.due_after(at, task.sla_days)
    changes.clocks_started.append(sla.ClockStart(
        "task", task.id, task.application_id, task.department_org_id, task.due_at))  # fmt: skip


def _create_tasks(
    application: Application,
    branch: Branch,
    steps: Sequence[engine.Step],
    *,
    at: datetime,
    waiting: bool,
    changes: Changes,
) -> None:
    for step in steps:
        task = bulk.new_row(
            Task, id=new_id(), application_id=application.id, item_id=branch.item_id,
            item_code=branch.item_code, step=step.key, name=step.name, decisions=step.decisions,
            department_org_id=step.department_org_id, role=step.role,
            state="waiting", sla_days=step.sla_days, created_at=at, version=1,
            claimed_by=None, claimed_at=None, opened_at=None, due_at=None, completed_at=None,
            completed_by=None, decision=None, comment=None,
        )  # fmt: skip
        if not waiting:
            _open(task, at=at, changes=changes)
        changes.tasks.append(task)
        changes.events.append(
            TaskCreated(
                **_task_event_base(task), state=task.state, decisions=task.decisions,
                due_at=task.due_at,
            )
        )  # fmt: skip
        changes.entries.append(
            journal.entry(
                application, action="task_created", at=at, principal=None, task_id=task.id,
                department_org_id=task.department_org_id, data={
                    "item_id": task.item_id, "step": task.step, "name": task.name,
                    "state": task.state, "due_at": task.due_at.isoformat() if task.due_at else None,
                },
            )
        )  # fmt: skip


def start_process(
    application: Application,
    *,
    items: Sequence[tuple[ItemSnapshot, int]],
    at: datetime,
    materials_fetched: int,
    materials_uploaded: int,
) -> Changes:
    """Start one branch per item in its start state, open its first tasks and the SLA clock.

    Nothing is written yet: the new branches, tasks and clocks are in the changes returned.
    """
    changes = Changes()
    previous = application.status
    application.status = "in_progress"
    days = max((s.promised_time_limit_days or s.legal_time_limit_days) for s, _ in items)
    application.due_at = sla.due_after(at, max(days, 1))
    application.updated_at = at
    changes.clocks_started.append(sla.ClockStart(
        "application", application.id, application.id, application.owner_org_id,
        application.due_at))  # fmt: skip
    for snapshot, version in items:
        branch = bulk.new_row(
            Branch, application_id=application.id, item_id=snapshot.item_id, item_version=version,
            item_code=snapshot.code, item_name=snapshot.name,
            department_org_id=snapshot.owner_org_id, status="active",
            marking=[snapshot.template.start], created_at=at, finished_at=None,
        )  # fmt: skip
        changes.branches.append(branch)
        steps = engine.enabled_steps(snapshot.template, branch.marking, snapshot.owner_org_id)
        _create_tasks(application, branch, steps, at=at, waiting=False, changes=changes)
    changes.entries.insert(
        0,
        journal.entry(
            application, action="started", at=at, principal=None, from_status=previous,
            to_status=application.status,
            data={"materials_fetched": materials_fetched, "materials_uploaded": materials_uploaded},
        ),
    )  # fmt: skip
    changes.events.insert(
        0,
        ApplicationStarted(
            **journal.event_base(application), branches=[s.item_id for s, _ in items],
            materials_fetched=materials_fetched, materials_uploaded=materials_uploaded,
        ),
    )  # fmt: skip
    return changes


def _cancel(tasks: Sequence[Task], *, at: datetime, reason: str, changes: Changes) -> None:
    for task in tasks:
        if task.state not in ACTIVE_TASK_STATES:
            continue
        task.state = "cancelled"
        task.completed_at = at
        task.version += 1
        changes.stop_clock("task", task.id)
        changes.events.append(TaskCancelled(**_task_event_base(task), reason=reason))


async def stop_process(
    session: AsyncSession, application: Application, *, at: datetime, reason: str
) -> Changes:
    """Cancel every active task and branch (a withdrawal); the caller sets the status."""
    changes = Changes()
    _cancel(await tasks_repository.active(session, application_id=application.id),
            at=at, reason=reason, changes=changes)  # fmt: skip
    for branch in await tasks_repository.branches(session, application_id=application.id):
        if branch.status == "active":
            branch.status = "cancelled"
            branch.finished_at = at
    changes.stop_clock("application", application.id)
    return changes


async def open_waiting(session: AsyncSession, application: Application, *, at: datetime) -> Changes:
    """Open the tasks that waited for the applicant's supplement."""
    changes = Changes()
    for task in await tasks_repository.active(session, application_id=application.id):
        if task.state != "waiting":
            continue
        _open(task, at=at, changes=changes)
        task.version += 1
        changes.events.append(TaskOpened(**_task_event_base(task), due_at=task.due_at))
    return changes


# --- The inbox -------------------------------------------------------------------------------


def _may_act(principal: Principal, task: Task) -> None:
    """An officer acts only on their own department's tasks (404 for the others' tasks, which
    they may not know of), and only in the task's role (a department admin may do an officer's).
    """
    if principal.org is None or principal.org != task.department_org_id:
        raise TaskNotFound(f"No task {task.id} in your department.")
    if task.role == Role.DEPT_ADMIN and not principal.has_role(Role.DEPT_ADMIN):
        raise Forbidden("This step is for the department's admins.")
    if not principal.roles & {Role.OFFICER, Role.DEPT_ADMIN}:
        raise Forbidden("Only the department's officers act on its tasks.")


async def get_task(session: AsyncSession, *, principal: Principal, task_id: str) -> Task:
    """A task of the caller's department."""
    task = await tasks_repository.get(session, task_id=task_id)
    if task is None:
        raise TaskNotFound(f"No task {task_id} in your department.")
    _may_act(principal, task)
    return task


async def claim(session: AsyncSession, *, principal: Principal, task_id: str) -> Task:
    """Take an open task; of two officers claiming it at once, one gets a 409 problem."""
    task, application = await _task_and_application(session, principal=principal, task_id=task_id)
    at = utcnow()
    won = await tasks_repository.change_if(
        session, task_id=task.id, states=["open"], version=None,
        values={"state": "claimed", "claimed_by": principal.sub, "claimed_at": at},
    )  # fmt: skip
    if won is None:
        task = await _reread(session, task.id)
        raise TaskConflict(f"The task is {task.state}" + (
            f" by {task.claimed_by}." if task.claimed_by else "."))  # fmt: skip
    await _journal_task(
        session, won, application, action="task_claimed", principal=principal, at=at,
        event=TaskClaimed(**_task_event_base(won), claimed_by=principal.sub),
    )  # fmt: skip
    return won


async def unclaim(session: AsyncSession, *, principal: Principal, task_id: str) -> Task:
    """Put a claimed task back in the inbox (its claimant, or a department admin)."""
    task, application = await _task_and_application(session, principal=principal, task_id=task_id)
    if task.claimed_by != principal.sub and not principal.has_role(Role.DEPT_ADMIN):
        raise Forbidden("Only the officer who claimed the task, or an admin, can put it back.")
    at = utcnow()
    won = await tasks_repository.change_if(
        session, task_id=task.id, states=["claimed"], version=task.version,
        values={"state": "open", "claimed_by": None, "claimed_at": None},
    )  # fmt: skip
    if won is None:
        task = await _reread(session, task.id)
        raise TaskConflict(f"The task changed meanwhile: it is {task.state}.")
    await _journal_task(
        session, won, application, action="task_unclaimed", principal=principal, at=at,
        event=TaskUnclaimed(**_task_event_base(won), unclaimed_by=principal.sub),
    )  # fmt: skip
    return won


async def _task_and_application(
    session: AsyncSession, *, principal: Principal, task_id: str
) -> tuple[Task, Application]:
    """A task of the caller's department and its application, in one query."""
    found = await tasks_repository.get_with_application(session, task_id=task_id)
    if found is None:
        raise TaskNotFound(f"No task {task_id} in your department.")
    _may_act(principal, found[0])
    return found


async def _reread(session: AsyncSession, task_id: str) -> Task:
    task = await tasks_repository.get(session, task_id=task_id, fresh=True)
    assert task is not None
    return task


async def _journal_task(
    session: AsyncSession,
    task: Task,
    application: Application,
    *,
    action: str,
    principal: Principal,
    at: datetime,
    event: EventData,
) -> None:
    await journal.write(session, application, Changes(
        entries=[journal.entry(
            application, action=action, at=at, principal=principal, task_id=task.id,
            department_org_id=task.department_org_id,
            data={"item_id": task.item_id, "step": task.step},
        )],
        events=[event],
    ))  # fmt: skip


async def act(
    session: AsyncSession,
    *,
    principal: Principal,
    task_id: str,
    decision: str,
    comment: str | None,
    expected_version: int | None,
) -> Task:
    """Decide a task: fire the chosen action in its branch and move the application on.

    The task's application is locked first, found by the task in the same statement; the
    task is then read with its siblings and the branches, after the lock: what the decisions
    before this one left. (A task of another department, or none, is a 404 and the lock is
    rolled back.)
    """
    at = utcnow()
    locked = await tasks_repository.lock_application_of(session, task_id=task_id, updated_at=at)
    if locked is None:
        raise TaskNotFound(f"No task {task_id} in your department.")
    application, tasks, branches = locked.application, locked.tasks, locked.branches
    task = next(t for t in tasks if t.id == task_id)
    _may_act(principal, task)
    if decision not in task.decisions:
        raise InvalidInput.for_field(
            "decision", f"not one of this task's decisions: {', '.join(task.decisions)}"
        )
    if task.state not in ("open", "claimed"):
        raise TaskConflict(f"The task is {task.state}; it cannot be decided now.")
    if task.state == "claimed" and task.claimed_by != principal.sub:
        raise TaskConflict(f"The task is claimed by {task.claimed_by}.")
    if expected_version is not None and expected_version != task.version:
        raise TaskConflict(f"The task is at version {task.version}, not {expected_version}.")
    if application.status not in ("in_progress", "supplement_requested"):
        raise WrongStatus(f"The application is {application.status}.")
    branch = next(b for b in branches if b.item_id == task.item_id)
    snapshot = await templates.item(session, item_id=branch.item_id, version=branch.item_version)
    action = engine.action_of(snapshot.template, decision)
    assert action is not None
    if action.supplement and application.supplement_rounds >= 1:
        raise SupplementAlreadyRequested(
            "The applicant was asked for a supplement once already; ask nothing more, decide."
        )
    if not await tasks_repository.complete_if(
        session, task, states=["open", "claimed"], at=at, by=principal.sub, decision=decision,
        comment=comment,
    ):  # fmt: skip
        raise TaskConflict("Another decision on this task came first.")
    changes = Changes()
    changes.stop_clock("task", task.id)
    overdue = task.due_at is not None and as_utc(task.due_at) < at
    changes.entries.append(
        journal.entry(
            application, action="task_completed", at=at, principal=principal, task_id=task.id,
            department_org_id=task.department_org_id, comment=comment,
            data={"item_id": task.item_id, "step": task.step, "decision": decision},
        )
    )  # fmt: skip
    changes.events.append(
        TaskCompleted(
            **_task_event_base(task), decision=decision, completed_by=principal.sub,
            comment=comment, completed_at=at, overdue=overdue,
        )
    )  # fmt: skip
    active = [t for t in tasks if t.state in ACTIVE_TASK_STATES and t.id != task.id]
    await _advance(
        session, application, branch, snapshot, action, task=task, principal=principal,
        comment=comment, at=at, changes=changes,
        step=_Step(branches=branches, active=active),
    )  # fmt: skip
    await journal.write(session, application, changes, branches=branches)
    await session.flush()
    return task


@dataclass
class _Step:
    """What ``act`` read under the application's lock: its branches and active tasks."""

    branches: list[Branch]
    active: list[Task]


async def _advance(
    session: AsyncSession,
    application: Application,
    branch: Branch,
    snapshot: ItemSnapshot,
    action: Action,
    *,
    task: Task,
    principal: Principal,
    comment: str | None,
    at: datetime,
    changes: Changes,
    step: _Step,
) -> None:
    """Fire ``action`` in ``branch``; open what it enables; finish the branch and application."""
    template = snapshot.template
    branch.marking = engine.fire(template, branch.marking, action)
    # A step is known by its states, department and role: after one state, an officer's step
    # (ask for the supplement) and a department admin's (approve or reject) are two tasks.
    still = {
        (s.key, s.department_org_id, s.role): s
        for s in engine.enabled_steps(template, branch.marking, branch.department_org_id)
    }
    active = [t for t in step.active if t.item_id == branch.item_id]
    stale = [t for t in active if _step_of(t) not in still]
    _cancel(stale, at=at, reason="no longer possible", changes=changes)
    kept = {_step_of(t) for t in active if _step_of(t) in still}
    new_steps = [s for key, s in still.items() if key not in kept]
    if action.supplement:
        application.supplement_rounds += 1
        previous = application.status
        application.status = "supplement_requested"
        application.supplement = {
            "item_id": branch.item_id, "task_id": task.id, "comment": comment,
            "requested_by": principal.sub, "requested_at": at.isoformat(), "answered_at": None,
        }  # fmt: skip
        changes.entries.append(
            journal.entry(
                application, action="supplement_requested", at=at, principal=principal,
                task_id=task.id, department_org_id=task.department_org_id, comment=comment,
                from_status=previous, to_status=application.status,
            )
        )  # fmt: skip
        changes.events.append(
            SupplementRequested(
                **journal.event_base(application), supplement_item_id=branch.item_id,
                task_id=task.id, comment=comment,
            )
        )  # fmt: skip
    waiting = (
        application.status == "supplement_requested"
        and (application.supplement or {}).get("item_id") == branch.item_id
    )
    _create_tasks(application, branch, new_steps, at=at, waiting=waiting, changes=changes)
    outcome = engine.finished(template, branch.marking)
    if outcome is None and not still:
        outcome = "rejected"  # a dead end: nothing more can happen in this branch
    if outcome is None:
        return
    branch.status = outcome
    branch.finished_at = at
    _cancel(
        [t for t in active if _step_of(t) in still] + changes.tasks, at=at,
        reason="branch finished", changes=changes,
    )  # fmt: skip
    if outcome == "rejected":
        await _finish(session, application, outcome="rejected", branch=branch,
                      principal=principal, comment=comment, at=at, changes=changes,
                      step=step)  # fmt: skip
        return
    if all(b.status == "approved" for b in step.branches):
        await _finish(session, application, outcome="completed", branch=branch,
                      principal=principal, comment=comment, at=at, changes=changes,
                      step=step)  # fmt: skip


def _step_of(task: Task) -> tuple[str, str, str]:
    return (task.step, task.department_org_id, task.role)


async def _finish(
    session: AsyncSession,
    application: Application,
    *,
    outcome: str,
    branch: Branch,
    principal: Principal,
    comment: str | None,
    at: datetime,
    changes: Changes,
    step: _Step,
) -> None:
    """The final decision: every branch approved (completed) or one refused (rejected)."""
    branches = step.branches
    previous = application.status
    if outcome == "rejected":
        # A one-thing bundle is one decision: a refusal in one branch ends the others.
        _cancel(step.active + changes.tasks, at=at, reason="another branch refused",
                changes=changes)  # fmt: skip
        for other in branches:
            if other.status == "active":
                other.status = "cancelled"
                other.finished_at = at
    application.status = outcome
    application.decided_at = at
    application.supplement = (
        {**application.supplement, "closed": True} if application.supplement else None
    )
    documents = [
        {"item_id": b.item_id, "code": b.item_code, "name": b.item_name,
         "document_no": f"{b.item_code}-{application.id[:12]}".upper()}
        for b in branches if b.status == "approved"
    ]  # fmt: skip
    application.result = {
        "decision": "approved" if outcome == "completed" else "rejected",
        "decided_by_item": branch.item_id,
        "comment": comment,
        "branches": {b.item_id: b.status for b in branches},
        # Result delivery: electronic documents (电子证照) in the applicant's account, at once.
        "delivery": {"method": "electronic", "delivered_at": at.isoformat()},
        "documents": documents if outcome == "completed" else [],
    }
    changes.stop_clock("application", application.id)
    changes.entries.append(
        journal.entry(
            application, action=outcome, at=at, principal=principal, comment=comment,
            from_status=previous, to_status=outcome, department_org_id=branch.department_org_id,
            data={"result": application.result},
        )
    )  # fmt: skip
    facts = journal.decision_facts(
        application, at=at,
        materials=await applications_repository.material_counts(
            session, application_id=application.id),
    )  # fmt: skip
    if outcome == "completed":
        changes.events.append(
            ApplicationCompleted(
                **journal.event_base(application), **facts, result=application.result
            )
        )
    else:
        changes.events.append(
            ApplicationRejected(
                **journal.event_base(application), **facts, refused_item_id=branch.item_id,
                comment=comment, result=application.result,
            )
        )  # fmt: skip
