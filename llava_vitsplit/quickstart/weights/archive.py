"""Extracting named files from a wheel (zip) or a source archive (tar.gz) without unpacking the rest."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath


class ArchiveMemberMissing(FileNotFoundError):
    """An expected file is not inside a downloaded package archive."""


def _match(names: list[str], wanted: str, archive: Path) -> str:
    # Source archives put everything under "<name>-<version>/"; match on the path below that.
    hits = [n for n in names if n == wanted or n.endswith("/" + wanted)]
    if not hits:
        raise ArchiveMemberMissing(
            f"{archive} does not contain {wanted!r} ({len(names)} files in the archive)"
        )
    if len(hits) > 1:
        raise ArchiveMemberMissing(f"{archive} contains {wanted!r} more than once: {hits}")
    return hits[0]


def extract_members(archive: Path, members: list[str], dest_dir: Path) -> dict[str, Path]:
    """Copy each of `members` (POSIX paths inside the archive) to `dest_dir/<basename>`.

    Returns {member: extracted path}. Raises ArchiveMemberMissing naming the archive and the member.
    """
    archive = Path(archive)
    dest_dir.mkdir(parents=True, exist_ok=True)
    extracted: dict[str, Path] = {}
    if archive.name.endswith(".whl") or archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for wanted in members:
                target = dest_dir / PurePosixPath(wanted).name
                with zf.open(_match(names, wanted, archive)) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                extracted[wanted] = target
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as tf:
            by_name = {m.name: m for m in tf.getmembers() if m.isfile()}
            for wanted in members:
                target = dest_dir / PurePosixPath(wanted).name
                src = tf.extractfile(by_name[_match(list(by_name), wanted, archive)])
                with src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                extracted[wanted] = target
    else:
        raise ValueError(f"unsupported archive type: {archive} (expected .whl, .zip or .tar.gz)")
    return extracted
