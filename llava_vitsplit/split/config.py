"""Typed, validated configuration of the ViT-Split adapter.

Paper symbols (ViT-Split, section 3.2): a frozen ViT with ``L`` blocks yields hidden states
``hs[0..L]`` (``hs[0]`` = embedding output, ``hs[i]`` = output of block ``i``, 1-based).

* ``num_task_layers`` (K_t): the task head is a trainable copy of the K_t blocks that end at the
  split point ``e``; it runs on ``hs[e - K_t]`` and replaces ``hs[e]``.
* ``num_prior_layers`` (K_p) and ``prior_start_layer`` (b): the prior head reads K_p frozen hidden
  states chosen by ``selection``. Prior layer ids are 0-based *block* ids, so id ``i`` means
  ``hs[i + 1]`` (the authors' convention: ADE20K-S, L=12, K_p=4, b=2 gives blocks [2, 5, 8, 11]).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from .selection import uniform_layer_ids

Selection = Literal["uniform", "sparse_gate", "explicit"]
ConvKind = Literal["deformable", "plain"]


@dataclass(frozen=True)
class ViTSplitConfig:
    """Everything that decides the shape of a ViT-Split adapter over one backbone.

    Every field is checked when the config is built; a bad value raises ``ValueError`` naming the
    field and the allowed range.
    """

    num_layers: int
    """L: number of blocks of the backbone."""
    hidden_size: int
    """D: width of the backbone's tokens."""
    num_task_layers: int = 3
    """K_t: blocks copied into the trainable task head."""
    num_prior_layers: int = 4
    """K_p: frozen hidden states fed to the prior head."""
    prior_start_layer: int = 2
    """b: first block id considered by uniform selection (skips noisy early layers)."""
    selection: Selection = "uniform"
    """``uniform`` (eq. 2), ``sparse_gate`` (appendix B.1) or ``explicit`` (``prior_layer_ids``)."""
    prior_layer_ids: tuple[int, ...] | None = None
    """0-based block ids for ``selection="explicit"``."""
    split_point: int | None = None
    """e: the task head replaces ``hs[e]``; ``None`` means L (dense tasks). LLaVA uses L - 1."""
    conv: ConvKind = "deformable"
    """3x3 convolution of prior head and fusion net: DCNv1 (paper) or plain (authors' LLaVA)."""
    prior_width: int | None = None
    """Output channels of the prior head; ``None`` means D."""
    fusion_width: int | None = None
    """Output channels of the fusion net; ``None`` means D (dense) - the LLM width for LLaVA."""
    apply_final_norm: bool = True
    """Pass prior features and task-head output through the backbone's frozen final norm."""
    task_head_prefix_tokens: bool = True
    """Feed CLS/register tokens to the task head with the patches (paper); ``False`` drops them first,
    as the authors' released LLaVA projector does (its blocks attend over patch tokens only)."""
    gate_temperature: float = 0.5
    """Softmax temperature of the sparse gate."""

    def __post_init__(self) -> None:
        _require(self.num_layers >= 1, "num_layers", self.num_layers, "an integer >= 1")
        _require(self.hidden_size >= 1, "hidden_size", self.hidden_size, "an integer >= 1")
        _require(
            1 <= self.resolved_split_point <= self.num_layers,
            "split_point",
            self.split_point,
            f"1..{self.num_layers} (num_layers) or None",
        )
        _require(
            1 <= self.num_task_layers <= self.resolved_split_point,
            "num_task_layers (K_t)",
            self.num_task_layers,
            f"1..{self.resolved_split_point} (the split point)",
        )
        _require(
            self.num_prior_layers >= 1, "num_prior_layers (K_p)", self.num_prior_layers, "an integer >= 1"
        )
        _require(
            self.selection in ("uniform", "sparse_gate", "explicit"),
            "selection",
            self.selection,
            "'uniform', 'sparse_gate' or 'explicit'",
        )
        _require(self.conv in ("deformable", "plain"), "conv", self.conv, "'deformable' or 'plain'")
        for name in ("prior_width", "fusion_width"):
            value = getattr(self, name)
            _require(value is None or value >= 1, name, value, "an integer >= 1 or None")
        _require(self.gate_temperature > 0, "gate_temperature", self.gate_temperature, "a float > 0")
        if self.selection != "explicit":
            _require(
                self.num_prior_layers <= self.num_layers,
                "num_prior_layers (K_p)",
                self.num_prior_layers,
                f"1..{self.num_layers}: the backbone has only {self.num_layers} blocks to read the prior from",
            )
        if self.selection == "uniform":
            _require(
                0 <= self.prior_start_layer <= self.num_layers - self.num_prior_layers,
                "prior_start_layer (b)",
                self.prior_start_layer,
                f"0..{self.num_layers - self.num_prior_layers} (num_layers - K_p) so that K_p distinct blocks fit",
            )
            uniform_layer_ids(
                self.num_layers, self.num_prior_layers, self.prior_start_layer
            )  # raises on duplicates
        elif self.selection == "explicit":
            ids = self.prior_layer_ids
            _require(
                ids is not None and len(ids) > 0, "prior_layer_ids", ids, "a non-empty tuple of block ids"
            )
            _require(
                len(ids) == self.num_prior_layers,
                "prior_layer_ids",
                ids,
                f"exactly num_prior_layers (K_p) = {self.num_prior_layers} ids",
            )
            _require(
                len(set(ids)) == len(ids), "prior_layer_ids", ids, "distinct block ids (found duplicates)"
            )
            bad = [i for i in ids if not 0 <= i < self.num_layers]
            _require(not bad, "prior_layer_ids", ids, f"block ids in 0..{self.num_layers - 1}; {bad} are not")
        if self.prior_layer_ids is not None and self.selection != "explicit":
            raise ValueError(
                f"prior_layer_ids is only used with selection='explicit', got selection={self.selection!r}"
            )

    def to_dict(self, exclude: Iterable[str] = ()) -> dict:
        """The fields as JSON values (tuples become lists), without those named in ``exclude``."""
        data = {name: value for name, value in dataclasses.asdict(self).items() if name not in set(exclude)}
        if data.get("prior_layer_ids") is not None:
            data["prior_layer_ids"] = list(data["prior_layer_ids"])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object], **fields) -> ViTSplitConfig:
        """The config of ``to_dict``'s output (JSON lists back to tuples); ``fields`` adds fields not in
        ``data`` (e.g. ``num_layers``/``hidden_size`` read off a tower). Unknown or doubled names are errors."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ViT-Split field(s) {unknown}; known: {sorted(known)}")
        doubled = sorted(set(data) & set(fields))
        if doubled:
            raise ValueError(f"ViT-Split field(s) {doubled} are set twice (they are read off the backbone)")
        data = {**data, **fields}
        if data.get("prior_layer_ids") is not None:
            data["prior_layer_ids"] = tuple(data["prior_layer_ids"])
        return cls(**data)

    @property
    def resolved_split_point(self) -> int:
        return self.num_layers if self.split_point is None else self.split_point

    @property
    def task_input_index(self) -> int:
        """Index into ``hs`` of the task head's input: ``e - K_t``."""
        return self.resolved_split_point - self.num_task_layers

    @property
    def prior_block_ids(self) -> tuple[int, ...]:
        """0-based block ids whose outputs feed the prior head (all L blocks for the sparse gate)."""
        if self.selection == "uniform":
            return uniform_layer_ids(self.num_layers, self.num_prior_layers, self.prior_start_layer)
        if self.selection == "sparse_gate":
            return tuple(range(self.num_layers))
        return tuple(self.prior_layer_ids)

    @property
    def needed_hidden_states(self) -> frozenset[int]:
        """Indices into ``hs`` that the frozen trunk must produce."""
        return frozenset({self.task_input_index, *(i + 1 for i in self.prior_block_ids)})

    @property
    def resolved_prior_width(self) -> int:
        return self.hidden_size if self.prior_width is None else self.prior_width

    @property
    def resolved_fusion_width(self) -> int:
        return self.hidden_size if self.fusion_width is None else self.fusion_width


def _require(ok: bool, field: str, value: object, allowed: str) -> None:
    if not ok:
        raise ValueError(f"ViTSplitConfig.{field} = {value!r} is invalid: expected {allowed}")
