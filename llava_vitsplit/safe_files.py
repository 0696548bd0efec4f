"""Reading weight files without trusting them: every failure names the file and says what is wrong.

* `.safetensors`: the header is checked against the file's size before anything is read, so a
  truncated file (an interrupted download or copy) is named as such, instead of safetensors'
  "incomplete metadata, file not fully covered" without a file name.
* Pickles (`.bin`, `.pt`, `.pth`) are only opened with `torch.load(weights_only=True)`, which
  refuses anything but tensors and plain containers. A refused file is named with the reason, and
  the advice is to convert it where it came from: never to unpickle it here.

Shared by the model loaders, the projector files and the dense parts (hence top level).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file

PICKLE_SUFFIXES = (".bin", ".pt", ".pth")
HEADER_LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


class WeightsFileError(ValueError):
    """A weights file is truncated, corrupt, or a pickle that holds more than tensors."""


def _truncated(path: Path, detail: str) -> WeightsFileError:
    return WeightsFileError(
        f"{path} is truncated or corrupt ({detail}): an interrupted download or copy? Fetch or copy it again"
    )


def check_safetensors(path: str | os.PathLike) -> None:
    """Raise `WeightsFileError` naming `path` unless its header parses and its tensors fill the file exactly."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(HEADER_LENGTH_BYTES)
        if len(prefix) < HEADER_LENGTH_BYTES:
            raise _truncated(path, f"{size} bytes, not even the header's length")
        header_bytes = int.from_bytes(prefix, "little")
        if header_bytes > min(MAX_HEADER_BYTES, size - HEADER_LENGTH_BYTES):
            raise _truncated(path, f"a {header_bytes}-byte header announced in a {size}-byte file")
        try:
            header = json.loads(handle.read(header_bytes))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise _truncated(path, f"its header is not valid JSON: {error}") from error
    if not isinstance(header, dict):
        raise _truncated(path, "its header is not a JSON object")
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = HEADER_LENGTH_BYTES + header_bytes + max(ends, default=0)
    if expected != size:
        raise _truncated(path, f"its header describes {expected} bytes, the file holds {size}")


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a `.safetensors` file, checked first (see `check_safetensors`)."""
    check_safetensors(path)
    return load_file(str(path))


def refused_pickle(path: str | os.PathLike, error: Exception) -> WeightsFileError:
    """The error for a pickle that `torch.load(weights_only=True)` refused; torch's own advice is left out."""
    found = re.search(r"(unsupported GLOBAL [^\s]+[^.\n]*|Unsupported global: [^\s]+)", str(error), re.IGNORECASE)
    reason = found.group(1) if found else type(error).__name__
    return WeightsFileError(
        f"{path} was refused: it is a pickle that holds more than tensors ({reason}), and this program never "
        "unpickles such a file, since unpickling can run any code. If you trust its source, convert it to "
        ".safetensors where it was made (safetensors.torch.save_file(state_dict, 'model.safetensors') on the plain "
        "tensors), or get the .safetensors release of these weights"
    )


def read_pickled_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A pickled state dict, read with `weights_only=True`; a refused file is named (`refused_pickle`)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise refused_pickle(path, error) from None
    except (RuntimeError, EOFError) as error:
        raise WeightsFileError(f"{path} is not a readable PyTorch weights file (truncated or corrupt?): {error}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsFileError(f"{path} does not hold a flat dict of tensors (a state dict)")
    return state


def check_weights_folder(folder: str | os.PathLike) -> None:
    """Check every `.safetensors` file directly in `folder` (a model folder about to be loaded)."""
    folder = Path(folder)
    if folder.is_dir():
        for path in sorted(folder.glob("*.safetensors")):
            check_safetensors(path)


@contextmanager
def named_pickle_errors(folder: str | os.PathLike):
    """Around a loader that unpickles `folder`'s weights with `weights_only=True` (transformers):
    a refusal becomes `refused_pickle`, naming the folder's pickle file(s)."""
    try:
        yield
    except pickle.UnpicklingError as error:
        folder = Path(folder)
        pickles = sorted(path.name for path in folder.iterdir() if path.suffix in PICKLE_SUFFIXES) if folder.is_dir() else []
        raise refused_pickle(folder / pickles[0] if len(pickles) == 1 else f"{folder} ({', '.join(pickles)})", error) from None
