"""Tasks by name: ``register_task`` adds one, ``get_task`` finds one by its name or an older alias."""

from __future__ import annotations

from .base import DenseTask

TASKS: dict[str, DenseTask] = {}


def register_task(task: type[DenseTask] | DenseTask) -> DenseTask:
    """Register a task (a ``DenseTask`` subclass or instance) under its name and aliases; usable as a
    class decorator. Re-registering a name is an error."""
    instance = task() if isinstance(task, type) else task
    taken = [name for name in (instance.name, *instance.aliases) if name in TASKS or _alias_owner(name)]
    if taken:
        raise ValueError(f"dense task name(s) {taken} are already registered")
    TASKS[instance.name] = instance
    return task


def _alias_owner(name: str) -> DenseTask | None:
    return next((task for task in TASKS.values() if name in task.aliases), None)


def canonical_task_name(name: str) -> str:
    """The registered name of ``name`` (itself, or the task it is an older alias of)."""
    if name in TASKS:
        return name
    owner = _alias_owner(name)
    if owner is None:
        raise ValueError(f"unknown dense task {name!r}; registered tasks: {task_names()}")
    return owner.name


def get_task(name: str) -> DenseTask:
    return TASKS[canonical_task_name(name)]


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)
