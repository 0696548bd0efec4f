"""Where converted weights live, and how a converted folder is published only once it is complete.

A conversion writes into a private temporary folder next to its target and renames it into place
after writing `conversion.json` (the completeness marker, which also records provenance). An
interrupted conversion therefore leaves no folder that looks finished, and the next call redoes it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV_VAR = "LLAVA_VITSPLIT_CACHE"
COMPLETE_MARKER = "conversion.json"

logger = logging.getLogger(__name__)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: `cache_dir` if given, else $LLAVA_VITSPLIT_CACHE, else ~/.cache/llava_vitsplit."""
    if cache_dir is not None:
        root = Path(cache_dir)
    elif os.environ.get(CACHE_ENV_VAR):
        root = Path(os.environ[CACHE_ENV_VAR])
    else:
        root = Path.home() / ".cache" / "llava_vitsplit"
    root = root.expanduser()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"cache directory {root} exists but is not a directory")
    return root


def is_complete(folder: Path) -> bool:
    """True when `folder` was published by `build_once` (its marker exists)."""
    return (folder / COMPLETE_MARKER).is_file()


def build_once(target: Path, build: Callable[[Path], None], provenance: dict) -> Path:
    """Run `build(work_dir)` unless `target` is already complete, then publish it as `target`.

    `provenance` (source package, file, versions) is written to the marker, which is written last.
    """
    if is_complete(target):
        logger.info("already converted: %s", target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not is_complete(target):  # re-check: another process may have just published it
        logger.info("removing incomplete folder from an interrupted conversion: %s", target)
        shutil.rmtree(target)
    work_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    work_dir.chmod(0o755)  # mkdtemp makes it private; the published folder should read like any other
    try:
        build(work_dir)
        (work_dir / COMPLETE_MARKER).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        try:
            os.replace(work_dir, target)
        except OSError:
            # Another process published the same folder first; theirs is as good as ours.
            if not is_complete(target):
                raise
    finally:
        if work_dir.exists():
            shutil.rmtree(work_dir)
    return target
