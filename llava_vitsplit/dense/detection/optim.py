"""The authors' detection optimiser: AdamW with layer-wise lr decay over the task head, and the 1x
schedule (linear warm-up, then x0.1 at 8/12 and 11/12 of training)."""

from __future__ import annotations

from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR

from .model import ViTSplitMaskRCNN

LAYER_DECAY = {"coco-s": 0.76, "coco-b": 0.7, "coco-l": 0.6}
ONE_X_MILESTONES = (8 / 12, 11 / 12)  # epochs 8 and 11 of 12
TASK_HEAD_PREFIX = "backbone.vitsplit.task_head."


def layer_scale(name: str, num_task_layers: int, decay: float) -> float:
    """lr multiplier of a detector parameter: copy j (1-based) of K_t task-head blocks gets
    ``decay ** (K_t - j)`` (the last copy 1.0); everything else 1.0."""
    if not name.startswith(TASK_HEAD_PREFIX):
        return 1.0
    index = int(name[len(TASK_HEAD_PREFIX) :].split(".", 1)[0])  # 0-based copy index
    return decay ** (num_task_layers - 1 - index)


def parameter_groups(
    model: ViTSplitMaskRCNN, learning_rate: float, weight_decay: float, layer_decay: float
) -> list[dict]:
    """One group per (lr scale, decay or not); biases, norms and layer scales (1-D) get no weight decay."""
    num_task_layers = model.config.split_config().num_task_layers
    groups: dict[tuple[float, bool], dict] = {}
    for name, parameter in model.detector.named_parameters():
        if not parameter.requires_grad:
            continue
        scale = layer_scale(name, num_task_layers, layer_decay)
        decays = parameter.ndim > 1
        group = groups.setdefault(
            (scale, decays),
            {"params": [], "names": [], "lr": learning_rate * scale, "lr_scale": scale,
             "weight_decay": weight_decay if decays else 0.0},
        )  # fmt: skip
        group["params"].append(parameter)
        group["names"].append(name)
    return sorted(groups.values(), key=lambda g: (g["lr_scale"], g["weight_decay"]))


def build_optimizer(
    model: ViTSplitMaskRCNN, learning_rate: float, weight_decay: float, layer_decay: float
) -> AdamW:
    groups = parameter_groups(model, learning_rate, weight_decay, layer_decay)
    return AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups], lr=learning_rate)


def step_factor(
    step: int, total: int, warmup: int, warmup_ratio: float, milestones=ONE_X_MILESTONES
) -> float:
    """Multiplier of each group's base lr at ``step``: linear warm-up from ``warmup_ratio``, x0.1 at
    each milestone (a fraction of ``total``)."""
    factor = 0.1 ** sum(step >= round(m * total) for m in milestones)
    if step < warmup:
        factor *= warmup_ratio + (1 - warmup_ratio) * step / warmup
    return factor


def build_scheduler(optimizer, total: int, warmup: int, warmup_ratio: float = 1e-3) -> LambdaLR:
    if total < 1 or not 0 <= warmup <= total:
        raise ValueError(f"need total >= 1 and 0 <= warmup <= total, got total {total}, warmup {warmup}")
    return LambdaLR(optimizer, lambda step: step_factor(step, total, warmup, warmup_ratio))
