"""Command line: `python -m workflow {recommend,demo-data,invalidate,status,scheduler,freshness,summary,films,db,retain,
spark,serve}`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import sys

from workflow import databases, devspark, freshness, registry, retention, scheduler, use_repository_config
from workflow.core import dated_load, history, outputs
from workflow.core.pipeline import Pipeline
from workflow.errors import WorkflowError
from workflow.io.urls import safe_url
from workflow.pipelines import courses, films
from workflow.pipelines.courses import demo, warehouse
from workflow.pipelines.films import demo as film_demo
from workflow.pipelines.films import warehouse as film_warehouse


def recommend(args: argparse.Namespace) -> None:
    """Print the user's current recommendations above the threshold, as the case study's query returns them."""
    rows = warehouse.recommended_titles(databases.warehouse_url(), args.user_id, args.threshold)
    if not rows:
        print(f"no recommendations above {args.threshold} for user {args.user_id}")
    for title, rating in rows:
        print(f"{rating:.3f}  {title}")


def demo_data(args: argparse.Namespace) -> None:
    """Fill the source databases with the synthetic data sets: courses and ratings, and Pagila-shaped films."""
    url = databases.url_of(courses.PIPELINE.source)
    if args.if_empty and demo.source_row_count(url) > 0:
        print(f"source {safe_url(url)} already holds ratings; left as it is")
    else:
        catalogue, ratings = demo.demo_data(args.ratings, until=args.until, seed=args.seed)
        demo.replace_source_tables(url, catalogue, ratings)
        print(
            f"source {safe_url(url)}: wrote {len(catalogue):,} courses and {len(ratings):,} ratings "
            f"by {ratings['user_id'].nunique():,} users"
        )
    films_url = databases.url_of(films.PIPELINE.source)
    if args.if_empty and film_demo.has_films(films_url):
        print(f"films source {safe_url(films_url)} already holds a film table; left as it is")
        return
    counts = film_demo.replace_film_tables(films_url, args.rentals, until=args.until, seed=args.seed)
    print(f"films source {safe_url(films_url)}: wrote " + ", ".join(f"{n:,} {table}" for table, n in counts.items()))


def invalidate(args: argparse.Namespace) -> None:
    """Forget dates (their parquet targets and every pipeline's load marker) so the next run recomputes them."""
    last = args.to or args.date
    url = databases.warehouse_url()
    for offset in range((last - args.date).days + 1):
        date = args.date + dt.timedelta(days=offset)
        with outputs.exclusive(date) as targets:  # never under a run of the date that is still going on
            had_targets = targets.exists()
            shutil.rmtree(targets, ignore_errors=True)
        forgotten = [
            f"{pipeline.name} {'load marker' if dated_load.forget_load(url, pipeline.marker, date) else 'no load'}"
            for pipeline in registry.pipelines()
        ]
        forgotten += [
            f"{pipeline.name} {task.load_marker().table}"
            for pipeline in registry.pipelines()
            for task in pipeline.daily_tasks()[1:]
            if dated_load.forget_load(url, task.load_marker(), date)
        ]
        print(f"{date}: removed {'targets' if had_targets else 'no targets'}, {', '.join(forgotten)}")


def status(args: argparse.Namespace) -> None:
    """Print the date's task runs, failed ones included, from the warehouse's run history (or this machine's run
    records when the warehouse cannot be reached), and whether the warehouse holds each pipeline's load of it."""
    try:
        url = databases.warehouse_url()
        runs = history.runs_of(url, args.date)
    except WorkflowError as error:
        url, runs = None, None
        print(f"the warehouse cannot be reached ({error}): the run records of this machine follow")
    if runs:
        print(f"{args.date}: {len(runs)} task run(s) in the run history of {safe_url(url)}")
        records = [history_record(run) for run in runs]
    else:
        folders = outputs.run_records_dirs(args.date)
        records = [json.loads(path.read_text()) for folder in folders for path in folder.glob("*.json")]
        if not records:
            print(f"{args.date}: no task runs in the run history, and no run records under {folders[0]}")
        elif url is not None:
            print(f"{args.date}: no task runs in the run history; the run records under {folders[0]} follow")
        records.sort(key=lambda record: record["finished_at"])
    for record in records:
        details = ", ".join(
            f"{key}={value}"
            for key, value in record.items()
            if key
            not in (
                "task",
                "date",
                "run_date",
                "status",
                "started_at",
                "finished_at",
                "duration_s",
                "run_id",
                "host",
                "from_file",
            )
            and not (value is None or value is False or value == {})
        )
        outcome = record.get("status", "done")
        finished = str(record["finished_at"])[:19].replace("T", " ")
        print(f"{record['task']:<22} {outcome:<6} {finished}  {record['duration_s']:>7.2f} s  {details}")
    if url is None:
        return
    for pipeline in registry.pipelines():
        print_load_state(url, args.date, pipeline)


def history_record(run: dict) -> dict:
    """Return a run of the history in the shape of a run record file (its details spread out)."""
    details = run.pop("details") or {}
    partial = run.pop("partial")
    finished = run["finished_at"].astimezone(dt.timezone.utc)
    return {
        **run, "finished_at": f"{finished:%Y-%m-%d %H:%M:%S}", **({"partial_day": True} if partial else {}), **details,
    }  # fmt: skip


def check_freshness(args: argparse.Namespace) -> int:
    """Print each pipeline's freshness: fresh, late or failed, its newest loaded date, when that date's own load
    committed and its age; exit 0 when every pipeline is fresh, 2 otherwise (1 when the warehouse cannot be read)."""
    url = databases.warehouse_url()
    now = dt.datetime.now(dt.timezone.utc)
    pipelines = registry.pipelines()
    times = freshness.expected_by([pipeline.name for pipeline in pipelines])
    found = []
    for pipeline in pipelines:
        date, loaded_at = dated_load.newest_load(url, pipeline.marker) or (None, None)
        found.append(freshness.assess(
            pipeline.name, newest_date=date, loaded_at=loaded_at, failures=history.failures(url, pipeline.name, date),
            now=now, expected_by=times[pipeline.name],
        ))  # fmt: skip
    if args.json:
        print(json.dumps({"checked_at": now.isoformat(), "fresh": all(f.fresh for f in found),
                          "pipelines": [f.as_dict() for f in found]}, indent=2))  # fmt: skip
    else:
        for each in found:
            age = "" if each.age_s is None else f" {freshness.readable_age(each.age_s)} old,"
            print(f"{each.pipeline:<10} {each.state:<6}{age} due {each.due_date} by {each.expected_by:%H:%M} UTC: "
                  f"{each.detail}")  # fmt: skip
    return 0 if all(each.fresh for each in found) else 2


def add_freshness_command(commands: argparse._SubParsersAction) -> None:
    """Add `freshness [--json]` to the command line."""
    command = commands.add_parser("freshness", help=check_freshness.__doc__)
    command.add_argument("--json", action="store_true", help="print JSON, as GET /api/freshness answers")
    command.set_defaults(handler=check_freshness)


def print_load_state(url: str, date: dt.date, pipeline: Pipeline) -> None:
    """Print whether the warehouse holds the pipeline's load of the date, whole or as a partial day."""
    what = f"warehouse: {date} {pipeline.name}"
    if date in dated_load.loaded_dates(url, pipeline.marker, [date]):
        print(f"{what} loaded")
    elif date in dated_load.loaded_dates(url, pipeline.marker, [date], include_partial=True):
        print(f"{what} loaded as a partial day (recomputed by the first run after it ends)")
    else:
        print(f"{what} not loaded")


def run_scheduler(args: argparse.Namespace) -> None:
    """Start or stop the central scheduler (luigid) in the background."""
    if args.action == "start":
        scheduler.start(args.port, args.address)
    else:
        scheduler.stop()


def spark(args: argparse.Namespace) -> None:
    """Start, stop or show a Spark standalone cluster on 127.0.0.1 (state in <output>/spark/), or fetch the JDBC jar."""
    if args.action == "up":
        cluster = devspark.start(workers=args.workers, worker_cores=args.worker_cores, worker_memory=args.worker_memory)
        pids = " ".join(map(str, cluster.pids))
        print(f"Spark master {cluster.master_url} (web UI {cluster.webui_url}, pids {pids})")
        print(f"use it with SPARK_MASTER={cluster.master_url}")
    elif args.action == "down":
        stopped = devspark.stop()
        print(f"Spark cluster stopped (pids {' '.join(map(str, stopped))})" if stopped else "no Spark cluster running")
    elif args.action == "status":
        cluster = devspark.status()
        if cluster is None:
            print("no Spark cluster running")
        else:
            print(f"Spark master {cluster.master_url} (web UI {cluster.webui_url}): {cluster.alive_workers()} ALIVE")
    else:
        print(devspark.jdbc_jar() or devspark.fetch_jdbc_jar())


def add_spark_command(commands: argparse._SubParsersAction) -> None:
    """Add the `spark` command and its options."""
    command = commands.add_parser("spark", help=spark.__doc__)
    command.add_argument("action", choices=["up", "down", "status", "jdbc"])
    command.add_argument("--workers", type=int, default=2)
    command.add_argument("--worker-cores", type=int, default=1)
    command.add_argument("--worker-memory", default="1g", help="each worker's memory for executors (Spark's 1g, 512m)")
    command.set_defaults(handler=spark)


def film_query(args: argparse.Namespace) -> None:
    """Print what the case study's film query returns: each current film's recommended film ids."""
    for film_id, recommended in film_warehouse.current_recommendations(databases.warehouse_url(), args.limit):
        print(f"{film_id:>6}  {recommended}")


def summary(args: argparse.Namespace) -> None:
    """Print each pipeline's loads in the warehouse, with a few examples of what it holds."""
    url = databases.warehouse_url()
    for pipeline in registry.pipelines():
        lines = pipeline.summary(url, args.users) if pipeline.summary else []
        if not lines:
            loaded = dated_load.all_loaded_dates(url, pipeline.marker)
            lines = [f"{pipeline.name}: {len(loaded)} loaded date(s)" + (f", newest {max(loaded)}" if loaded else "")]
        print("\n".join(lines))


def database(args: argparse.Namespace) -> None:
    """Start or stop the embedded server, or print its URLs (passwords hidden)."""
    server = databases.embedded_server()
    if args.action == "start":
        server.ensure_running()
    elif args.action == "stop":
        server.stop()
        print(f"embedded server in {server.root} stopped")
        return
    for pipeline in registry.pipelines():
        print(f"{pipeline.name + ' source:':<16}{safe_url(databases.url_of(pipeline.source))}")
    print(f"{'warehouse:':<16}{safe_url(databases.warehouse_url())}")


def yesterday() -> dt.date:
    """Return yesterday's date in UTC: the newest day that is over, and the default date of a run."""
    return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)


def retain(args: argparse.Namespace) -> None:
    """Remove, for every pipeline, every date older than the --keep-days dates up to yesterday (UTC): warehouse rows,
    files, run history; never the newest loaded date nor a date a run is using (--dry-run: only say what)."""
    for line in retention.retain(args.keep_days, dry_run=args.dry_run):
        print(line, flush=True)


def add_retain_command(commands: argparse._SubParsersAction) -> None:
    """Add the `retain` command and its options."""
    command = commands.add_parser("retain", help=retain.__doc__)
    command.add_argument(
        "--keep-days", type=int, help="the dates kept, up to yesterday (UTC); default: [retention] keep_days (0: off)"
    )
    command.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    command.set_defaults(handler=retain)


def serve(args: argparse.Namespace) -> None:
    """Serve the read API and the dashboard over the warehouse (workflow.server; no luigi in that process)."""
    from workflow.server import serve as run  # noqa: PLC0415  (FastAPI and uvicorn only when serving)

    run(args.host, args.port, workers=args.workers, access_log=args.access_log)


def main(argv: list[str] | None = None) -> int:
    """Run one command; an expected failure prints one line and exits 1, a bug keeps its traceback."""
    parser = argparse.ArgumentParser(prog="python -m workflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    command = commands.add_parser("recommend", help=recommend.__doc__)
    command.add_argument("--user-id", type=int, required=True)
    command.add_argument("--threshold", type=float, default=4.5)
    command.set_defaults(handler=recommend)

    command = commands.add_parser("demo-data", help=demo_data.__doc__)
    command.add_argument("--ratings", type=int, default=2_000_000)
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--if-empty", action="store_true")
    command.add_argument("--rentals", type=int, default=16_000, help="rentals of the Pagila-shaped film demo")
    command.add_argument(
        "--until", type=dt.date.fromisoformat, default=yesterday(), help="last day of the ratings' year (UTC)"
    )
    command.set_defaults(handler=demo_data)

    command = commands.add_parser("invalidate", help=invalidate.__doc__)
    command.add_argument("--date", type=dt.date.fromisoformat, required=True)
    command.add_argument("--to", type=dt.date.fromisoformat, help="last date of a range (inclusive)")
    command.set_defaults(handler=invalidate)

    command = commands.add_parser("status", help=status.__doc__)
    command.add_argument("--date", type=dt.date.fromisoformat, default=yesterday(), help="default: yesterday (UTC)")
    command.set_defaults(handler=status)

    command = commands.add_parser("scheduler", help=run_scheduler.__doc__)
    command.add_argument("action", choices=["start", "stop"])
    command.add_argument("--port", type=int, default=8082)
    command.add_argument("--address", default="127.0.0.1")
    command.set_defaults(handler=run_scheduler)

    add_freshness_command(commands)

    command = commands.add_parser("summary", help=summary.__doc__)
    command.add_argument("--users", type=int, default=3)
    command.set_defaults(handler=summary)

    command = commands.add_parser("films", help=film_query.__doc__)
    command.add_argument("--limit", type=int, default=10)
    command.set_defaults(handler=film_query)

    command = commands.add_parser("db", help=database.__doc__)
    command.add_argument("action", choices=["start", "stop", "url"])
    command.set_defaults(handler=database)

    add_retain_command(commands)
    add_spark_command(commands)

    command = commands.add_parser("serve", help=serve.__doc__)
    command.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    command.add_argument("--port", type=int, default=8080, help="TCP port to listen on (default 8080; 0: any free one)")
    command.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    command.add_argument("--access-log", action="store_true", help="log every request, one line each (default: off)")
    command.set_defaults(handler=serve)

    args = parser.parse_args(argv)
    use_repository_config()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        return args.handler(args) or 0
    except WorkflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
