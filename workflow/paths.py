"""Where the project's files live: its root, the output root and the folders of the services it starts."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def output_dir() -> Path:
    """Return the root of parquet targets and the embedded services' files (WORKFLOW_OUTPUT_DIR or output/)."""
    return Path(os.environ.get("WORKFLOW_OUTPUT_DIR") or PROJECT_ROOT / "output").resolve()


def embedded_server_dir() -> Path:
    """Return the folder of the embedded PostgreSQL server (its data, or where it lives when that is elsewhere)."""
    return output_dir() / "postgres"


def scheduler_dir() -> Path:
    """Return the folder of luigid's pid file, log and saved state."""
    return output_dir() / "luigid"


def spark_dir() -> Path:
    """Return the folder of the local Spark cluster's state and logs, and of a fetched JDBC jar."""
    return output_dir() / "spark"
