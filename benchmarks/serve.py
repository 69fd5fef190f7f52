"""Benchmark of the recommendations server: requests per second and p50/p99 latency of the user endpoint.

`python benchmarks/serve.py [--ratings 2000000] [--requests 20000] [--concurrency 1,16,64] [--workers 2]`
fills an output root of its own (`output/bench-serve`, its own embedded PostgreSQL) with the demo data
set, runs the graph for yesterday (UTC), starts `python -m workflow.server` on a free port of 127.0.0.1,
and drives `GET /api/users/{id}/recommendations` with a fixed number of requests at each concurrency:
that many HTTP/1.1 keep-alive connections, each sending its share of the requests one after another
(asyncio, raw sockets: a lighter client than httpx, which would compete with the server for the same
two cores). Users are drawn from the current recommendations. Each level runs `--repeat` times (3)
and shows the run of median requests per second, since other programs on the machine skew single
runs; the requests per second of every run follow. Then it stops the server and the
embedded PostgreSQL. The load generator only ever talks to 127.0.0.1 and stops after its requests.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "output" / "bench-serve"
BIN = Path(sys.executable).parent


def environment() -> dict[str, str]:
    """Return the environment of the benchmark's children: its own output root, the embedded databases."""
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATABASE_URL", "DWH_DATABASE_URL")}
    env.pop("SERVER_DATABASE_URL", None)
    return {**env, "WORKFLOW_OUTPUT_DIR": str(ROOT)}


def prepare(ratings: int, date: dt.date) -> None:
    """Fill the source with `ratings` demo ratings (unless it holds them already) and load the date."""
    ROOT.mkdir(parents=True, exist_ok=True)
    env, marker = environment(), ROOT / "bench-ratings"
    same = marker.exists() and marker.read_text().strip() == str(ratings)
    python = str(BIN / "python")
    keep = ["--if-empty"] if same else []
    subprocess.run(
        [python, "-m", "workflow", "demo-data", "--ratings", str(ratings), *keep], env=env, cwd=REPO, check=True
    )
    if not same:
        subprocess.run([python, "-m", "workflow", "invalidate", "--date", f"{date}"], env=env, cwd=REPO, check=True)
        marker.write_text(f"{ratings}\n")
    subprocess.run([str(BIN / "luigi"), "--module", "workflow", "RecommendationsTask", "--date", f"{date}",
                    "--local-scheduler", "--workers", "2"], env=env, cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, workers: int) -> subprocess.Popen:
    """Start the server and return its process once /healthz answers 200."""
    command = [str(BIN / "python"), "-m", "workflow.server", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, env=environment(), cwd=REPO, stderr=open(ROOT / "server.log", "w"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited ({server.returncode}); see {ROOT / 'server.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the server did not answer /healthz within 60 s")


def sample_users(count: int) -> list[int]:
    """Return user ids drawn from the current recommendations, read with the server's own reader role."""
    os.environ.update(environment())
    from workflow.server.settings import database  # noqa: PLC0415  (after WORKFLOW_OUTPUT_DIR is set)
    from workflow.server.warehouse import Warehouse  # noqa: PLC0415

    async def sample() -> list[int]:
        warehouse = Warehouse(database().url, size=1)
        await warehouse.open()
        try:
            async with warehouse.connection() as connection:
                query = "SELECT user_id FROM recommendations WHERE rank = 1 ORDER BY random() LIMIT $1"
                return [user_id for (user_id,) in await connection.fetch(query, count)]
        finally:
            await warehouse.close()

    return asyncio.run(sample())


async def client(port: int, paths: list[bytes], latencies: list[float], statuses: dict[int, int]) -> None:
    """Send the requests one after another on one keep-alive connection, recording each one's latency."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for path in paths:
            started = time.perf_counter()
            writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def drive(port: int, users: list[int], requests: int, concurrency: int) -> dict[str, float]:
    """Send `requests` requests over `concurrency` connections; return req/s, p50 and p99 (ms) and errors."""
    rng = random.Random(concurrency)
    paths = [f"/api/users/{rng.choice(users)}/recommendations?threshold=4.5".encode() for _ in range(requests)]
    shares = [paths[i::concurrency] for i in range(concurrency)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(*(client(port, share, latencies, statuses) for share in shares))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "errors": sum(n for status, n in statuses.items() if status != 200),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=2_000_000)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per concurrency level")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per level; the run of median req/s is shown")
    parser.add_argument("--keep-running", action="store_true", help="leave the embedded PostgreSQL running")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped, it still stops the server and database
    date = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    print(f"preparing {args.ratings:,} demo ratings, loaded for {date}, in {ROOT}", flush=True)
    prepare(args.ratings, date)
    port = free_port()
    server = start_server(port, args.workers)
    try:
        users = sample_users(5000)
        asyncio.run(drive(port, users, 2000, 16))  # warm-up: every worker's pool connected, code paths hot
        print(
            f"GET /api/users/{{id}}/recommendations?threshold=4.5, {len(users)} users, {args.workers} worker(s), "
            f"{args.requests:,} requests per level, on {os.cpu_count()} cores (server, PostgreSQL and client)"
        )
        print(f"{'clients':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}   req/s of each run")
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            runs = [asyncio.run(drive(port, users, args.requests, concurrency)) for _ in range(args.repeat)]
            result = sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]  # other programs' load varies
            each = ", ".join(f"{run['rps']:,.0f}" for run in runs)
            print(f"{concurrency:>8} {result['rps']:>9,.0f} {result['p50']:>8.2f} {result['p99']:>8.2f} "
                  f"{result['errors']:>7}   {each}", flush=True)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep_running:
            from workflow.server.settings import embedded_server  # noqa: PLC0415

            embedded_server().stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
