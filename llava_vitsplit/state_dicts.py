"""The strict state-dict check shared by every loader (LLaVA side and dense): a checkpoint that does
not fit its model is an error naming each missing, unexpected or mis-shaped tensor with both shapes.

``torch.nn.Module.load_state_dict(strict=True)`` refuses the same checkpoints, but its report has no
source file and states shapes as ``torch.Size``; this one is read by people choosing a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch


def load_state_dict_strictly(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    *,
    ignore: Iterable[str] = (),
    assign: bool = False,
) -> None:
    """Load ``state`` into ``module`` after ``check_state_dict``; ``ignore`` names keys the module may
    lack in ``state`` (e.g. a tied LM head)."""
    ignore = set(ignore)
    check_state_dict({key: tensor.shape for key, tensor in module.state_dict().items()}, state, source, ignore)
    module.load_state_dict(state, strict=not ignore, assign=assign)


def check_state_dict(
    expected: Mapping[str, torch.Size], found: Mapping[str, torch.Tensor], source: str, ignore: Iterable[str] = ()
) -> None:
    """Raise naming what is missing, unexpected or of the wrong shape in ``found`` (loaded from ``source``)."""
    ignore = set(ignore)
    missing = sorted(set(expected) - set(found) - ignore)
    unexpected = sorted(set(found) - set(expected))
    mismatched = [
        shape_mismatch(key, found[key].shape, expected[key])
        for key in sorted(set(expected) & set(found))
        if tuple(found[key].shape) != tuple(expected[key])
    ]
    raise_if_unfit(
        source,
        "the model",
        {
            f"missing {len(missing)} tensor(s)": missing,
            f"unexpected {len(unexpected)} tensor(s)": unexpected,
            "shape mismatch": mismatched,
        },
    )


def shape_mismatch(key: str, found: Iterable[int], wanted: Iterable[int]) -> str:
    return f"{key}: checkpoint {tuple(found)} vs model {tuple(wanted)}"


def raise_if_unfit(source: str, target: str, problems: Mapping[str, list[str]], limit: int = 12) -> None:
    """``ValueError("<source> does not fit <target>: <kind>: <items>; ...")`` for the non-empty kinds."""
    listed = [f"{kind}: {_listing(items, limit)}" for kind, items in problems.items() if items]
    if listed:
        raise ValueError(f"{source} does not fit {target}: " + "; ".join(listed))


def _listing(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items) - limit} more)"
