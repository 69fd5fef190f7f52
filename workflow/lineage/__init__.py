"""OpenLineage run events of every task run (START, then COMPLETE or FAIL), off by default."""

from __future__ import annotations

from typing import Any


def started(task: Any) -> None:
    """Emit the task run's START event, when lineage is on."""


def finished(task: Any, record: dict[str, Any]) -> None:
    """Emit the task run's COMPLETE or FAIL event from its run record, when lineage is on."""
