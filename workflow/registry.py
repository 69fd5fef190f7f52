"""Every pipeline of the project, declared once each: what the task list, the daily run, the CLI and the server read.

A new pipeline is a folder under workflow/pipelines/ whose __init__.py declares PIPELINE, plus one line here.
"""

from __future__ import annotations

from workflow.core.pipeline import Pipeline
from workflow.pipelines import courses, films

PIPELINES: tuple[Pipeline, ...] = (
    courses.PIPELINE,
    films.PIPELINE,
)


def pipelines() -> tuple[Pipeline, ...]:
    """Return the declared pipelines, in the order they run and report."""
    return PIPELINES


def tasks_by_name() -> dict[str, type]:
    """Return every task users may run by name, from each pipeline's declaration (this imports luigi)."""
    return {task.__name__: task for pipeline in pipelines() for task in pipeline.tasks()}
