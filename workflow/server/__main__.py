"""`python -m workflow.server [--host 127.0.0.1] [--port 8080] [--workers N] [--access-log]`: serve the API and the
dashboard."""

from __future__ import annotations

import argparse
import sys

from workflow.server.runner import serve
from workflow.server.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve; return the exit status (1 with one line when the database is unusable)."""
    parser = argparse.ArgumentParser(prog="python -m workflow.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port to listen on (default 8080; 0: any free one)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--access-log", action="store_true", help="log every request, one line each (default: off)")
    args = parser.parse_args(argv)
    try:
        serve(args.host, args.port, workers=args.workers, access_log=args.access_log)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
