"""Finding the checkpoint to resume from: the latest *complete* `checkpoint-N` in the output folder.

A run killed while writing a checkpoint leaves a folder without a readable `trainer_state.json`
(the Trainer writes that file last); such a folder is passed over with a warning, so rerunning the
same command resumes from the last checkpoint that was finished.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"


def is_complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / TRAINER_STATE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return True


def latest_complete_checkpoint(output_dir: str | Path) -> Path | None:
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    numbered = sorted(
        ((int(m.group(1)), path) for path in folder.iterdir() if path.is_dir() and (m := _CHECKPOINT.match(path.name))),
        reverse=True,
    )
    for _, path in numbered:
        if is_complete(path):
            return path
        logger.warning("%s is incomplete (no readable %s; the run stopped while saving it): passed over", path, TRAINER_STATE)
    return None
