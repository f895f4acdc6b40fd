"""What a pipeline run hands back: one :class:`StageOutcome` per stage and the :class:`PipelineResult`.

Plain records, shared by the runner (:mod:`usvpipe.pipeline.run`), which fills them, and the
report (:mod:`usvpipe.pipeline.report`), which reads them; neither imports the other for them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StageOutcome:
    name: str
    status: str  # "ran", "skipped (up to date)", "failed", "not requested"
    seconds: float = 0.0
    detail: str = ""


@dataclass
class PipelineResult:
    """What a pipeline run produced (paths are absolute)."""

    output: Path
    stages: list[StageOutcome]
    report_path: Path | None = None
    mmd: Any = None
    segment_failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.stages) and not self.segment_failures
