"""The one "latest complete checkpoint" finder, shared by LLaVA training and dense training.

Both loops write numbered checkpoint folders and write one marker file last (the HF Trainer's
`trainer_state.json`; the dense loop writes its own state file last too). A run killed while
writing a checkpoint leaves a folder without a readable marker; such a folder is passed over with
a warning, so rerunning the same command resumes from the last checkpoint that was finished.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
HF_CHECKPOINT_PATTERN = r"checkpoint-(\d+)"


def is_complete(checkpoint: Path, marker: str = TRAINER_STATE) -> bool:
    """True when `checkpoint/marker` exists and is valid JSON (it is the file written last)."""
    try:
        json.loads((checkpoint / marker).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return True


def numbered_checkpoints(folder: str | Path, pattern: str = HF_CHECKPOINT_PATTERN) -> list[tuple[int, Path]]:
    """`(step, path)` for every sub-folder whose whole name matches `pattern` (one integer group), newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    name = re.compile(pattern)
    return sorted(
        ((int(m.group(1)), path) for path in folder.iterdir() if path.is_dir() and (m := name.fullmatch(path.name))),
        reverse=True,
    )


def latest_complete_checkpoint(
    folder: str | Path, pattern: str = HF_CHECKPOINT_PATTERN, marker: str = TRAINER_STATE
) -> Path | None:
    """The highest-numbered complete checkpoint in `folder`, or None when there is none."""
    for _, path in numbered_checkpoints(folder, pattern):
        if is_complete(path, marker):
            return path
        logger.warning("%s is incomplete (no readable %s; the run stopped while saving it): passed over", path, marker)
    return None
