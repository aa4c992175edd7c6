"""The process engine's rules on a template, as pure functions over a branch's marking.

A branch is *marked* with the template states it is in (one, or several after a fork). An
action is enabled when every one of its ``from_states`` is marked (a join waits for all of
them); firing it unmarks those and marks its ``to_states``. The enabled actions that share
``from_states``, role and department make one *step*: one task in that department's inbox
whose decisions are those actions. A branch is finished when only end states are marked; it
is refused when one of them is a refusal (see ``is_refusal``), approved otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.workflow.catalogue.schemas import Action, ProcessTemplate


@dataclass(frozen=True)
class Step:
    """Enabled actions of one department's role from the same states: one task."""

    from_states: tuple[str, ...]
    department_org_id: str
    role: str
    actions: tuple[Action, ...]

    @property
    def key(self) -> str:
        """The step's name among the branch's tasks: its from-states joined by '+'."""
        return "+".join(self.from_states)

    @property
    def name(self) -> str:
        return " / ".join(a.name for a in self.actions)

    @property
    def sla_days(self) -> int:
        return max(a.sla_days for a in self.actions)

    @property
    def decisions(self) -> list[str]:
        return [a.key for a in self.actions]


def department_of(action: Action, owner_org_id: str) -> str:
    """The department that acts: the item's owner, or the one the action names."""
    return owner_org_id if action.department == "owner" else action.department


def enabled_steps(
    template: ProcessTemplate, marking: Iterable[str], owner_org_id: str
) -> list[Step]:
    """The steps possible in ``marking``, in the template's order of actions."""
    marked = set(marking)
    groups: dict[tuple[tuple[str, ...], str, str], list[Action]] = {}
    for action in template.actions:
        if not set(action.from_states) <= marked:
            continue
        key = (tuple(sorted(set(action.from_states))), department_of(action, owner_org_id),
               action.role)  # fmt: skip
        groups.setdefault(key, []).append(action)
    return [
        Step(from_states=k[0], department_org_id=k[1], role=k[2], actions=tuple(actions))
        for k, actions in groups.items()
    ]


def action_of(template: ProcessTemplate, key: str) -> Action | None:
    """The template's action ``key``."""
    return next((a for a in template.actions if a.key == key), None)


def fire(template: ProcessTemplate, marking: Iterable[str], action: Action) -> list[str]:
    """The marking after ``action`` (which must be enabled), sorted."""
    marked = set(marking)
    if not set(action.from_states) <= marked:
        raise ValueError(f"action {action.key} is not enabled in {sorted(marked)}")
    return sorted((marked - set(action.from_states)) | set(action.to_states))


def end_states(template: ProcessTemplate) -> set[str]:
    """The states that finish a branch."""
    return {s.key for s in template.states if s.end}


def is_refusal(state_key: str) -> bool:
    """Whether an end state refuses the application: its key names a refusal.

    The catalog's template does not say which end states refuse, so workflow reads the key:
    ``rejected``, ``reject_*``, ``refused``, ``denied``, ``not_approved`` (docs/workflow.md).
    """
    key = state_key.lower()
    return key.startswith(("reject", "refus", "deni", "not_approved", "disapprov"))


def finished(template: ProcessTemplate, marking: Iterable[str]) -> str | None:
    """'approved' or 'rejected' once only end states are marked, else None.

    A refusal ends the branch at once, even if a parallel path of it is still open.
    """
    marked = set(marking)
    ends = end_states(template)
    if any(s in ends and is_refusal(s) for s in marked):
        return "rejected"
    if marked and marked <= ends:
        return "approved"
    return None


def check_template(template: ProcessTemplate) -> None:
    """Raise ValueError unless the template can run: known states, a start, an end."""
    keys = {s.key for s in template.states}
    if template.start not in keys:
        raise ValueError(f"the start state {template.start} is not a state")
    for action in template.actions:
        unknown = (set(action.from_states) | set(action.to_states)) - keys
        if unknown:
            raise ValueError(f"action {action.key} names unknown states {sorted(unknown)}")
    if not end_states(template):
        raise ValueError("the template has no end state")
