"""Smoke tests of `benchmarks/bench.py` and `benchmarks/films.py` at a tiny size: they run and print their results."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from engines import require_spark

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def bench_env(output_dir: Path) -> dict[str, str]:
    """Return an environment that points the workflow at its own embedded server under `output_dir`."""
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATABASE_URL", "DWH_DATABASE_URL")}
    return {**env, "WORKFLOW_OUTPUT_DIR": str(output_dir)}


@pytest.fixture
def output_dir() -> Iterator[Path]:
    """Yield a fresh output root the `postgres` system user can reach; stop its server and remove it afterwards."""
    # Under output/ rather than pytest's tmp_path: the embedded server's user must be able to traverse it.
    folder = PROJECT_ROOT / "output" / f"test-bench-{os.getpid()}"
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        stop = [sys.executable, "-m", "workflow", "db", "stop"]
        subprocess.run(stop, env=bench_env(folder), cwd=PROJECT_ROOT, capture_output=True, check=False, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_bench_runs_at_a_tiny_size(output_dir: Path) -> None:
    """The benchmark exits 0 and prints its table (all five rows) and the agreement line, with full agreement."""
    command = [sys.executable, "benchmarks/bench.py", "--ratings", "3000", "--repeat", "1"]
    result = subprocess.run(
        command, env=bench_env(output_dir), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("stage"))
    for column in ("ours s", "ours peak MB", "baseline s", "baseline peak MB", "ratio s"):
        assert column in header
    for row in ("extract", "transform", "load", "total", "no-op rerun"):
        assert any(line.startswith(f"{row} ") for line in lines), row
    agreement = next(line for line in lines if line.startswith("same recommendations"))
    assert "arbitrary tie order allows: yes" in agreement


def test_the_film_bench_runs_both_engines_and_finds_their_rows_equal(output_dir: Path) -> None:
    """At Pagila's size (and on real Pagila when ../shared has it), each engine's row says its rows equal pandas'."""
    require_spark()
    command = [sys.executable, "benchmarks/films.py", "--runs", "1", "--scale", "1"]
    result = subprocess.run(
        command, env=bench_env(output_dir), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert next(line for line in lines if line.startswith("dataset")).split()[-3:] == ["rows", "=", "pandas"]
    rows = [line.split() for line in lines if line.startswith(("pagila ", "generated ")) and "skipped" not in line]
    engines = {row[-5] for row in rows}
    assert engines == {"pandas", "spark"}
    assert all(row[-1] == ("reference" if row[-5] == "pandas" else "yes") for row in rows), lines
    assert all(row[-4] == "1,000" for row in rows)  # every film loaded
