"""Dense tasks behind one interface (``DenseTask``), by name (``get_task``).

Adding a task: one module defining a ``DenseTask`` subclass decorated with ``@register_task``, and
its import below (see docs/dense.md).
"""

# Importing a task module registers its task: one line per task.
from . import depth, detection, segmentation
from .base import DenseTask, PartRunner, PixelTask, Sharding
from .registry import TASKS, canonical_task_name, get_task, register_task, task_names

__all__ = [
    "TASKS",
    "DenseTask",
    "PartRunner",
    "PixelTask",
    "Sharding",
    "canonical_task_name",
    "depth",
    "detection",
    "get_task",
    "register_task",
    "segmentation",
    "task_names",
]
