"""The whole pipeline from one config: segment -> train -> encode -> umap -> mmd.

One file per concern::

    config.py  usvpipe.toml -> PipelineConfig (RunParams + every stage's parameters), the default file
    run.py     run_pipeline: the stages in order, each skipped when its stamp is up to date
    outcome.py StageOutcome, PipelineResult: what a run hands back (read by the report)
    answer.py  the answer in words (pure functions of the MMD result and the measures)
    report.py  report.md and the self-contained report.html
    info.py    describe_directory (``usvpipe info``)
    demo.py    demo_config (``usvpipe demo``)
"""
from __future__ import annotations

from .config import STAGES, PipelineConfig, RunParams, config_from_mapping, default_config_text, read_pipeline_config
from .demo import demo_config, shared_data_dir
from .info import describe_directory
from .outcome import PipelineResult, StageOutcome
from .report import write_report
from .run import run_pipeline

__all__ = [
    "STAGES", "PipelineConfig", "RunParams", "config_from_mapping", "default_config_text", "read_pipeline_config",
    "demo_config", "shared_data_dir", "describe_directory", "write_report", "PipelineResult", "StageOutcome",
    "run_pipeline",
]
