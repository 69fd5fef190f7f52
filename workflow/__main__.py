"""Command line: `python -m workflow {recommend,demo-data,invalidate,status,summary,db,scheduler}`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys

import sqlalchemy as sa

from workflow import config, datedir, db, demo, scheduler
from workflow.tasks import run_records_dirs


def recommend(args: argparse.Namespace) -> None:
    """Print the user's current recommendations above the threshold, as the case study's query returns them."""
    rows = db.recommended_titles(config.warehouse_url(), args.user_id, args.threshold)
    if not rows:
        print(f"no recommendations above {args.threshold} for user {args.user_id}")
    for title, rating in rows:
        print(f"{rating:.3f}  {title}")


def demo_data(args: argparse.Namespace) -> None:
    """Fill the source database with the synthetic data set (only when empty, with --if-empty)."""
    url = config.source_url()
    if args.if_empty and db.source_row_count(url) > 0:
        print(f"source {config.safe_url(url)} already holds ratings; left as it is")
        return
    courses, ratings = demo.demo_data(args.ratings, until=args.until, seed=args.seed)
    db.replace_source_tables(url, courses, ratings)
    print(
        f"source {config.safe_url(url)}: wrote {len(courses):,} courses and {len(ratings):,} ratings "
        f"by {ratings['user_id'].nunique():,} users"
    )


def invalidate(args: argparse.Namespace) -> None:
    """Forget dates (their parquet targets and warehouse load marker) so the next run recomputes them."""
    last = args.to or args.date
    warehouse = config.warehouse_url()
    for offset in range((last - args.date).days + 1):
        date = args.date + dt.timedelta(days=offset)
        with datedir.exclusive(date) as targets:  # never under a run of the date that is still going on
            had_targets = targets.exists()
            shutil.rmtree(targets, ignore_errors=True)
        had_load = db.forget_load(warehouse, date)
        print(
            f"{date}: removed {'targets' if had_targets else 'no targets'}, {'load marker' if had_load else 'no load'}"
        )


def status(args: argparse.Namespace) -> None:
    """Print the date's run records, failed ones included, and whether the warehouse holds its load."""
    folders = run_records_dirs(args.date)
    records = [json.loads(path.read_text()) for folder in folders for path in folder.glob("*.json")]
    if not records:
        print(f"{args.date}: no run records under {folders[0]}")
    for record in sorted(records, key=lambda record: record["finished_at"]):
        details = ", ".join(
            f"{key}={value}"
            for key, value in record.items()
            if key not in ("task", "date", "status", "finished_at", "duration_s")
        )
        outcome = record.get("status", "done")
        print(f"{record['task']:<22} {outcome:<6} {record['finished_at']}  {record['duration_s']:>7.2f} s  {details}")
    url = config.warehouse_url()
    if args.date in db.loaded_dates(url, [args.date]):
        print(f"warehouse: {args.date} loaded")
    elif args.date in db.loaded_dates(url, [args.date], include_partial=True):
        print(f"warehouse: {args.date} loaded as a partial day (recomputed by the first run after it ends)")
    else:
        print(f"warehouse: {args.date} not loaded")


def run_scheduler(args: argparse.Namespace) -> None:
    """Start or stop the central scheduler (luigid) in the background."""
    if args.action == "start":
        scheduler.start(args.port, args.address)
    else:
        scheduler.stop()


def summary(args: argparse.Namespace) -> None:
    """Print the warehouse's loads and the current recommendations of a few users."""
    with db.connect(config.warehouse_url()) as connection:
        loads = connection.execute(
            sa.text("SELECT recommendation_date, n_recommendations, n_users FROM recommendation_loads ORDER BY 1")
        ).all()
        users = (
            connection.execute(
                sa.text("SELECT DISTINCT user_id FROM recommendations ORDER BY user_id LIMIT :n"), {"n": args.users}
            )
            .scalars()
            .all()
        )
    for date, n_recommendations, n_users in loads:
        print(f"loaded {date}: {n_recommendations:,} recommendations for {n_users:,} users")
    for user_id in users:
        print(f"user {user_id}:")
        for title, rating in db.recommended_titles(config.warehouse_url(), user_id, 0):
            print(f"  {rating:.3f}  {title}")


def database(args: argparse.Namespace) -> None:
    """Start or stop the embedded server, or print its URLs (passwords hidden)."""
    server = config.embedded_server()
    if args.action == "start":
        server.ensure_running()
    elif args.action == "stop":
        server.stop()
        print(f"embedded server in {server.root} stopped")
        return
    print(f"source:    {config.safe_url(config.source_url())}")
    print(f"warehouse: {config.safe_url(config.warehouse_url())}")


def yesterday() -> dt.date:
    """Return yesterday's date in UTC: the newest day that is over, and the default date of a run."""
    return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)


def main(argv: list[str] | None = None) -> int:
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

    command = commands.add_parser("summary", help=summary.__doc__)
    command.add_argument("--users", type=int, default=3)
    command.set_defaults(handler=summary)

    command = commands.add_parser("db", help=database.__doc__)
    command.add_argument("action", choices=["start", "stop", "url"])
    command.set_defaults(handler=database)

    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except (ConnectionError, db.SourceDataError, config.DatabaseURLError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
