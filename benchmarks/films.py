"""Benchmark of the film pipeline: FilmsTask's whole graph on Pagila and on a rental history 100x its size.

`python benchmarks/films.py [--runs 3] [--workers 1]` works in an output root of its own
(`output/bench-films-*`, its own embedded PostgreSQL, removed at the end; the user's `output/` and
any configured database URLs are left alone) and measures two data sets for one date, 2022-09-01
(after Pagila's last rental, so every rental counts):

- `pagila`: the real Pagila (`../shared/datasets/pagila`, schema then data loaded with psql as the
  embedded server's superuser); skipped, with its reason, when `../shared` is absent;
- `generated`: `workflow.pipelines.films.demo`'s Pagila-shaped data, 1,000 films and 100x Pagila's
  16,044 rentals.

Each run starts from fresh targets (the date's folder and its film load marker removed, the
databases CHECKPOINTed) and spawns `luigi --module workflow FilmsTask --date D --local-scheduler`.
Seconds are wall time from spawn to exit (Python start-up included). Peak MB is the largest sum of
the resident memory of that process and all its descendants (Luigi's forked workers with
--workers 2), sampled from /proc every 50 ms; the database server is not counted. Each figure is
the median over the runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGILA = REPO.parent / "shared" / "datasets" / "pagila"
PAGILA_RENTALS = 16_044
DATE = dt.date(2022, 9, 1)

for variable in ("SOURCE_DATABASE_URL", "DWH_DATABASE_URL", "FILMS_DATABASE_URL"):
    os.environ.pop(variable, None)  # the benchmark replaces the films source: only ever its own server's

from bench import Sample, checkpoint, median_sample, say  # noqa: E402  (after the environment is set)
from measure import TreePeak  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from workflow import databases, devdb  # noqa: E402
from workflow.core import dated_load  # noqa: E402
from workflow.io.postgres import connect  # noqa: E402
from workflow.paths import output_dir  # noqa: E402
from workflow.pipelines import films  # noqa: E402
from workflow.pipelines.films import demo  # noqa: E402


def run_sampled(command: list[str], log_path: Path) -> tuple[int, Sample]:
    """Run a command to its end; return its exit code, wall seconds and peak summed RSS (MB) of its tree."""
    with open(log_path, "w") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        with TreePeak(process.pid) as peak:
            process.wait()
        seconds = time.perf_counter() - start
    return process.returncode, Sample(seconds, peak.peak_mb)


def psql(url: str, *arguments: str) -> None:
    """Run psql on the database at `url`, as the embedded server's superuser."""
    binary, parsed = devdb.find_bindir() / "psql", make_url(url)
    command = [str(binary if binary.exists() else shutil.which("psql")), "-q", "-v", "ON_ERROR_STOP=1"]
    command += ["-h", parsed.host, "-p", str(parsed.port), "-U", parsed.username, "-d", parsed.database, *arguments]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "PGPASSWORD": parsed.password or ""})


def fresh_source() -> str:
    """Drop and recreate the films source database and the warehouse's `store` schema; return the source URL."""
    url = databases.url_of(films.PIPELINE.source)
    name, admin = make_url(url).database, make_url(url).set(database="postgres")
    psql(admin.render_as_string(hide_password=False), "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
         "-c", f'CREATE DATABASE "{name}"')  # fmt: skip
    with connect(databases.warehouse_url()) as connection:
        connection.exec_driver_sql("DROP SCHEMA IF EXISTS store CASCADE")
    return url


def counts(url: str) -> tuple[int, int]:
    """Return the source's films and rentals."""
    with connect(url) as connection:
        query = "SELECT (SELECT count(*) FROM film), (SELECT count(*) FROM rental)"
        return tuple(connection.exec_driver_sql(query).one())


def measure(name: str, runs: int, workers: int, workdir: Path) -> tuple[int, Sample]:
    """Run FilmsTask from fresh targets `runs` times; return the rows it loaded and the median sample."""
    command = [str(Path(sys.executable).parent / "luigi"), "--module", "workflow", "FilmsTask", "--date", f"{DATE}"]
    command += ["--local-scheduler", "--workers", str(workers)]
    samples, rows = [], set()
    for run in range(runs):
        shutil.rmtree(output_dir() / f"{DATE}", ignore_errors=True)
        dated_load.forget_load(databases.warehouse_url(), films.PIPELINE.marker, DATE)
        checkpoint()
        code, sample = run_sampled(command, workdir / f"{name}-{run}.log")
        if code != 0:
            tail = (workdir / f"{name}-{run}.log").read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(f"FilmsTask on {name} exited {code}:\n" + "\n".join(tail))
        record = json.loads((output_dir() / f"{DATE}" / "runs" / "films_task.json").read_text())
        rows.add(record["rows_out"])
        samples.append(sample)
        say(f"{name} run {run + 1}/{runs}: {sample.seconds:.2f} s, peak {sample.peak_mb:.0f} MB")
    return rows.pop() if len(rows) == 1 else -1, median_sample(samples)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/films.py", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per data set, of which the medians are shown")
    parser.add_argument("--workers", type=int, default=1, help="Luigi workers")
    parser.add_argument("--scale", type=int, default=100, help="the generated rentals, in multiples of Pagila's")
    args = parser.parse_args()
    (REPO / "output").mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-films-", dir=REPO / "output"))
    root.chmod(0o755)  # the embedded server's system user must traverse it
    os.environ["WORKFLOW_OUTPUT_DIR"] = str(root)
    rows, notes = [], []
    try:
        if PAGILA.exists():
            url = fresh_source()
            psql(url, "-f", str(PAGILA / "pagila-schema.sql"))
            psql(url, "-f", str(PAGILA / "pagila-data.sql"))
            rows.append(("pagila", *counts(url), *measure("pagila", args.runs, args.workers, root)))
        else:
            notes.append(f"pagila: figure skipped, {PAGILA} is absent (../shared, not shipped, holds the real Pagila)")
        url = fresh_source()
        say(f"generating {args.scale * PAGILA_RENTALS:,} rentals")
        demo.replace_film_tables(url, n_rentals=args.scale * PAGILA_RENTALS, until=DATE)
        rows.append((f"generated {args.scale}x", *counts(url), *measure("generated", args.runs, args.workers, root)))
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        databases.embedded_server().remove()
        shutil.rmtree(root, ignore_errors=True)
    print(f"FilmsTask {DATE}, --workers {args.workers}: medians of {args.runs} run(s), spawn to exit")
    lines = [("dataset", "films", "rentals", "rows loaded", "median s", "peak MB")]
    lines += [(d, f"{f:,}", f"{r:,}", f"{n:,}", f"{s.seconds:.2f}", f"{s.peak_mb:.0f}") for d, f, r, n, s in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    for line in lines:
        cells = [cell.rjust(width) for cell, width in zip(line, widths, strict=True)]
        print("  ".join([line[0].ljust(widths[0]), *cells[1:]]))
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
