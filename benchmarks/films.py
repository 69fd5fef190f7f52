"""Benchmark of the film pipeline: FilmsTask's whole graph on Pagila and on a rental history 100x its size, per engine.

`python benchmarks/films.py [--runs 3] [--workers 1] [--engines pandas,spark]` works in an output root of its own
(`output/bench-films-*`, its own embedded PostgreSQL, removed at the end; the user's `output/` and
any configured database URLs are left alone) and measures two data sets for one date, 2022-09-01
(after Pagila's last rental, so every rental counts):

- `pagila`: the real Pagila (`../shared/datasets/pagila`, schema then data loaded with psql as the
  embedded server's superuser); skipped, with its reason, when `../shared` is absent;
- `generated`: `workflow.pipelines.films.demo`'s Pagila-shaped data, 1,000 films and 100x Pagila's
  16,044 rentals.

Each run starts from fresh targets (the date's folder and its film load marker removed, the
databases CHECKPOINTed) and spawns `luigi --module workflow FilmsTask --date D --local-scheduler
--engine-name E`, Spark on local[2] with its [spark] settings. The warehouse rows of each engine's
last run are compared with the pandas engine's (an md5 of every column of every row, in film_id order).
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

from workflow import databases, devdb, devspark  # noqa: E402
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


def fingerprint() -> str:
    """Return an md5 of the date's warehouse rows, every column, in film_id order."""
    with connect(databases.warehouse_url()) as connection:
        query = "SELECT md5(string_agg(f::text, '|' ORDER BY film_id)) FROM store.film_daily f WHERE load_date = %(d)s"
        return connection.exec_driver_sql(query, {"d": DATE}).scalar()


def measure(name: str, engine: str, runs: int, workers: int, workdir: Path) -> tuple[int, Sample, str]:
    """Run FilmsTask from fresh targets `runs` times on an engine; return the rows loaded, the median sample and the
    fingerprint of the rows."""
    command = [str(Path(sys.executable).parent / "luigi"), "--module", "workflow", "FilmsTask", "--date", f"{DATE}"]
    command += ["--local-scheduler", "--workers", str(workers), "--engine-name", engine]
    os.environ.setdefault("SPARK_MASTER", "local[2]")
    samples, rows = [], set()
    for run in range(runs):
        shutil.rmtree(output_dir() / f"{DATE}", ignore_errors=True)
        dated_load.forget_load(databases.warehouse_url(), films.PIPELINE.marker, DATE)
        checkpoint()
        log = workdir / f"{name}-{engine}-{run}.log"
        code, sample = run_sampled(command, log)
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(f"FilmsTask on {name} ({engine}) exited {code}:\n" + "\n".join(tail))
        record = json.loads((output_dir() / f"{DATE}" / "runs" / "films_task.json").read_text())
        rows.add(record["rows_out"])
        samples.append(sample)
        say(f"{name} on {engine}, run {run + 1}/{runs}: {sample.seconds:.2f} s, peak {sample.peak_mb:.0f} MB")
    return rows.pop() if len(rows) == 1 else -1, median_sample(samples), fingerprint()


def measure_engines(name: str, engines: list[str], args: argparse.Namespace, workdir: Path) -> list[tuple]:
    """Return a result row per engine: data set, engine, rows loaded, median sample, rows equal to pandas'."""
    found = {engine: measure(name, engine, args.runs, args.workers, workdir) for engine in engines}
    reference = found["pandas"][2] if "pandas" in found else None
    same = {engine: "reference" if engine == "pandas" else "-" if reference is None else
            "yes" if digest == reference else "NO" for engine, (_, _, digest) in found.items()}  # fmt: skip
    return [(name, engine, rows, sample, same[engine]) for engine, (rows, sample, _) in found.items()]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/films.py", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per data set, of which the medians are shown")
    parser.add_argument("--workers", type=int, default=1, help="Luigi workers")
    parser.add_argument("--scale", type=int, default=100, help="the generated rentals, in multiples of Pagila's")
    parser.add_argument("--engines", default="pandas,spark", help="engines to run, comma-separated (pandas first)")
    args = parser.parse_args()
    engines = [engine.strip() for engine in args.engines.split(",") if engine.strip()]
    if "spark" in engines and (reason := devspark.unavailable_reason()):
        engines.remove("spark")
        print(f"spark: figures skipped, {reason}")
    (REPO / "output").mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-films-", dir=REPO / "output"))
    root.chmod(0o755)  # the embedded server's system user must traverse it
    os.environ["WORKFLOW_OUTPUT_DIR"] = str(root)
    rows, notes, sizes = [], [], {}
    try:
        if PAGILA.exists():
            url = fresh_source()
            psql(url, "-f", str(PAGILA / "pagila-schema.sql"))
            psql(url, "-f", str(PAGILA / "pagila-data.sql"))
            sizes["pagila"] = counts(url)
            rows += measure_engines("pagila", engines, args, root)
        else:
            notes.append(f"pagila: figure skipped, {PAGILA} is absent (../shared, not shipped, holds the real Pagila)")
        url = fresh_source()
        say(f"generating {args.scale * PAGILA_RENTALS:,} rentals")
        demo.replace_film_tables(url, n_rentals=args.scale * PAGILA_RENTALS, until=DATE)
        sizes[f"generated {args.scale}x"] = counts(url)
        rows += measure_engines(f"generated {args.scale}x", engines, args, root)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        databases.embedded_server().remove()
        shutil.rmtree(root, ignore_errors=True)
    print(f"FilmsTask {DATE}, --workers {args.workers}: medians of {args.runs} run(s), spawn to exit")
    lines = [("dataset", "films", "rentals", "engine", "rows loaded", "median s", "peak MB", "rows = pandas")]
    lines += [(d, f"{sizes[d][0]:,}", f"{sizes[d][1]:,}", e, f"{n:,}", f"{s.seconds:.2f}", f"{s.peak_mb:.0f}", same)
              for d, e, n, s, same in rows]  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        cells = [cell.rjust(width) for cell, width in zip(line, widths, strict=True)]
        print("  ".join([line[0].ljust(widths[0]), *cells[1:]]))
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
