"""Learning-rate schedules by optimiser step: linear warm-up + poly decay, one-cycle, or steps (1x).

Both return a ``LambdaLR`` multiplying each parameter group's own base rate, so the task head keeps
its 0.1x ratio throughout, and the scheduler state is a plain step count (resumable).
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def poly_factor(step: int, total: int, warmup: int, warmup_ratio: float, power: float = 1.0) -> float:
    """MMSeg's poly decay to 0 over ``total`` steps, after a linear ramp from ``warmup_ratio`` over ``warmup``."""
    decay = (1 - min(step, total) / total) ** power
    if step < warmup:
        return decay * (warmup_ratio + (1 - warmup_ratio) * step / warmup)
    return decay


def one_cycle_factor(
    step: int, total: int, pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 100.0
) -> float:
    """Smith's one-cycle with cosine phases: ``1/div_factor`` -> 1 over ``pct_start`` of the run, then
    down to ``1/(div_factor * final_div_factor)`` (the schedule of BinsFormer-style NYU training)."""
    start, low = 1 / div_factor, 1 / (div_factor * final_div_factor)
    peak_step = pct_start * total
    if step <= peak_step:
        progress, begin, end = step / max(peak_step, 1e-12), start, 1.0
    else:
        progress, begin, end = min((step - peak_step) / (total - peak_step), 1.0), 1.0, low
    return end + (begin - end) * (1 + math.cos(math.pi * progress)) / 2


def step_factor(
    step: int, total: int, warmup: int, warmup_ratio: float, milestones: tuple[float, ...] = (8 / 12, 11 / 12)
) -> float:
    """MMDet's step schedule: x0.1 at each milestone (a fraction of ``total``; the 1x schedule's epochs 8
    and 11 of 12 by default), after a linear ramp from ``warmup_ratio`` over ``warmup`` steps."""
    factor = 0.1 ** sum(step >= round(m * total) for m in milestones)
    if step < warmup:
        factor *= warmup_ratio + (1 - warmup_ratio) * step / warmup
    return factor


def build_scheduler(
    optimizer: Optimizer, schedule: str, total: int, warmup: int = 0, warmup_ratio: float = 1e-6
) -> LambdaLR:
    if total < 1:
        raise ValueError(f"total steps = {total} must be >= 1")
    if not 0 <= warmup <= total:
        raise ValueError(f"warmup steps = {warmup} must be in 0..{total} (the total)")
    if schedule == "poly":
        return LambdaLR(optimizer, lambda step: poly_factor(step, total, warmup, warmup_ratio))
    if schedule == "one-cycle":
        return LambdaLR(optimizer, lambda step: one_cycle_factor(step, total))
    if schedule == "step":
        return LambdaLR(optimizer, lambda step: step_factor(step, total, warmup, warmup_ratio))
    raise ValueError(f"unknown schedule {schedule!r}; choose 'poly', 'one-cycle' or 'step'")
