"""A Spark step's progress in luigi: the Spark UI as its tracking URL, its stages as its status, its spills as facts."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def reporting(context: Any, task: Any, what: str) -> Iterator[None]:
    """Show a SparkContext's UI as the task's tracking URL and its stages' progress as its status while jobs run,
    then add what they spilled to the task's facts (nothing is reported when `task` is None)."""
    if task is None:
        yield
        return
    group = f"{task.task_id}"
    context.setJobGroup(group, what)
    if context.uiWebUrl:
        task.set_tracking_url(context.uiWebUrl)
    done = threading.Event()
    reporter = threading.Thread(target=_report_stages, args=(context, group, task, what, done), daemon=True)
    reporter.start()
    spilled = _spilled_bytes(context)
    try:
        yield
    finally:
        done.set()
        reporter.join()
        context.setLocalProperty("spark.jobGroup.id", None)
        if spilled is not None and (after := _spilled_bytes(context)) is not None:
            for kind, before, now in zip(("spill_memory_bytes", "spill_disk_bytes"), spilled, after, strict=True):
                task.facts[kind] = task.facts.get(kind, 0) + now - before


def _report_stages(context: Any, group: str, task: Any, what: str, done: threading.Event) -> None:
    """Every second until `done`: set the task's status to the running stages' completed tasks, and its progress."""
    tracker = context.statusTracker()
    while not done.wait(1.0):
        try:
            stages = [
                tracker.getStageInfo(stage)
                for job in tracker.getJobIdsForGroup(group)
                if (info := tracker.getJobInfo(job)) is not None and info.status == "RUNNING"
                for stage in info.stageIds
            ]
        except Exception:  # the session is stopping: nothing more to report
            return
        running = [stage for stage in stages if stage is not None and stage.numActiveTasks]
        if not running:
            continue
        total = sum(stage.numTasks for stage in running)
        completed = sum(stage.numCompletedTasks for stage in running)
        task.set_status_message(
            f"{what}: " + ", ".join(f"stage {s.stageId} {s.numCompletedTasks}/{s.numTasks} tasks" for s in running)
        )
        task.set_progress_percentage(int(100 * completed / max(total, 1)))


def _spilled_bytes(context: Any) -> tuple[int, int] | None:
    """Return what the application's finished stages spilled (its size in memory, then on disk), from the Spark UI's
    REST API."""
    if not context.uiWebUrl:
        return None
    address = f"{context.uiWebUrl}/api/v1/applications/{context.applicationId}/stages?status=complete"
    try:
        with urllib.request.urlopen(address, timeout=5) as response:
            stages = json.load(response)
    except (OSError, ValueError):
        return None
    return (
        sum(stage.get("memoryBytesSpilled", 0) for stage in stages),
        sum(stage.get("diskBytesSpilled", 0) for stage in stages),
    )
