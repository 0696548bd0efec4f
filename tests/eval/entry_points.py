"""The package's lmms-eval entry point, made visible without installing the package.

`write_dist_info(folder)` writes the metadata pip would install for this package, with the
`[project.entry-points]` tables read from pyproject.toml, so importlib.metadata (and lmms-eval)
see exactly what an install declares once `folder` is on sys.path / PYTHONPATH.
"""

from __future__ import annotations

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_dist_info(folder: Path) -> Path:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    dist_info = folder / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in entries.items())
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return folder
