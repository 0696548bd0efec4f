"""Bad records and truncations met during a run, logged so the end of the run can report every one.

Records are read lazily, in dataloader workers and on several ranks, so problems are appended as
JSON lines to one file per process in a shared folder (the run's output folder) and summarised
from those files at the end. A record met again (a later epoch, another rank, a resumed run) is
counted once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SKIPPED = "skipped"
TRUNCATED = "truncated"
_WARNINGS_PER_KIND = 5  # then only the end-of-run summary, so a bad dataset does not flood the log


@dataclass(frozen=True)
class DataIssue:
    kind: str  # SKIPPED or TRUNCATED
    index: int  # position of the record in the JSON list
    record_id: str
    data_path: str
    reason: str
    image: str | None = None


class DataIssueLog:
    """Appends issues to `folder/issues-rank{R}-pid{P}.jsonl` (or keeps them in memory without a folder)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.in_memory: list[DataIssue] = []
        self._warned: dict[str, int] = {}

    def add(self, issue: DataIssue) -> None:
        count = self._warned.get(issue.kind, 0)
        if count < _WARNINGS_PER_KIND:
            where = f"{issue.data_path} record {issue.index} (id {issue.record_id!r})"
            logger.warning("%s %s: %s", issue.kind, where, issue.reason)
            if count + 1 == _WARNINGS_PER_KIND:
                logger.warning("further %s records are counted and reported at the end of the run", issue.kind)
        self._warned[issue.kind] = count + 1
        if self.folder is None:
            self.in_memory.append(issue)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"issues-rank{os.environ.get('RANK', '0')}-pid{os.getpid()}.jsonl"
        with path.open("a") as handle:
            handle.write(json.dumps(asdict(issue)) + "\n")

    def issues(self) -> list[DataIssue]:
        if self.folder is None:
            return list(self.in_memory)
        return read_issues(self.folder)


def read_issues(folder: str | Path) -> list[DataIssue]:
    found = []
    for path in sorted(Path(folder).glob("issues-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                # A process killed mid-write leaves a partial last line; it is re-logged on resume.
                try:
                    found.append(DataIssue(**json.loads(line)))
                except (json.JSONDecodeError, TypeError):
                    continue
    return found


@dataclass(frozen=True)
class DataIssueSummary:
    skipped: tuple[DataIssue, ...]  # one per record
    truncated: tuple[DataIssue, ...]  # one per record

    def format(self, max_listed: int = 50) -> str:
        lines = []
        for kind, issues in ((SKIPPED, self.skipped), (TRUNCATED, self.truncated)):
            if not issues:
                continue
            lines.append(f"{len(issues)} record(s) {kind}:")
            for issue in issues[:max_listed]:
                image = f", image {issue.image}" if issue.image else ""
                lines.append(f"  {issue.data_path} record {issue.index} (id {issue.record_id!r}{image}): {issue.reason}")
            if len(issues) > max_listed:
                lines.append(f"  ... and {len(issues) - max_listed} more (see data_issues.json)")
        return "\n".join(lines) if lines else "no record skipped or truncated"


def summarize(issues: Iterable[DataIssue]) -> DataIssueSummary:
    unique: dict[tuple[str, str, int], DataIssue] = {}
    for issue in issues:
        unique.setdefault((issue.kind, issue.data_path, issue.index), issue)
    ordered = sorted(unique.values(), key=lambda issue: (issue.data_path, issue.index))
    return DataIssueSummary(
        skipped=tuple(i for i in ordered if i.kind == SKIPPED),
        truncated=tuple(i for i in ordered if i.kind == TRUNCATED),
    )


def write_summary(summary: DataIssueSummary, path: str | Path) -> None:
    Path(path).write_text(
        json.dumps(
            {
                "skipped": [asdict(i) for i in summary.skipped],
                "truncated": [asdict(i) for i in summary.truncated],
            },
            indent=1,
        )
        + "\n"
    )
