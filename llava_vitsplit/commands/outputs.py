"""Output files of the commands: never one of the command's inputs, never an existing file unless asked.

Every command that writes a file adds `--overwrite` (`add_overwrite_flag`) and calls
`check_outputs` before any work, so a typo such as `dense predict photo.jpg --out photo.jpg` or a
rerun that would replace last week's results stops at once, naming the file. Writing over an
input is refused even with `--overwrite`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

OVERWRITE_HELP = "replace output files that already exist (an input is never overwritten)"


def add_overwrite_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _same_file(output: Path, source: Path) -> bool:
    if output.exists() and source.exists():
        return os.path.samefile(output, source)  # also through links
    return output.resolve() == source.resolve()


def check_outputs(
    outputs: dict[str, str | os.PathLike | None],
    inputs: Iterable[str | os.PathLike | None] = (),
    *,
    overwrite: bool = False,
) -> None:
    """Raise `FileExistsError` for an output (`{flag: path}`, None = not asked for) that is one of
    `inputs`, or that exists while `overwrite` is off."""
    sources = [Path(path) for path in inputs if path is not None]
    for flag, path in outputs.items():
        if path is None:
            continue
        path = Path(path)
        clash = next((source for source in sources if _same_file(path, source)), None)
        if clash is not None:
            raise FileExistsError(f"{flag} {path} is also an input of this command ({clash}): it would be overwritten")
        if path.is_dir():
            raise IsADirectoryError(f"{flag} {path} is a folder; give a file name")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{flag} {path} already exists: pass --overwrite to replace it, or choose another name")


def check_output_folder(
    flag: str, folder: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), *, overwrite: bool = False
) -> None:
    """Raise for an output folder that is (or holds, or lies in) one of `inputs`, or that already
    holds files while `overwrite` is off."""
    folder = Path(folder).resolve()
    for source in (Path(path).resolve() for path in inputs if path is not None):
        if folder == source or folder in source.parents or source in folder.parents:
            raise FileExistsError(f"{flag} {folder} overlaps an input of this command ({source}); choose another folder")
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{flag} {folder} is a file; give a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{flag} {folder} already holds files: pass --overwrite to write into it, or choose another folder")
