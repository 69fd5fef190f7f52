"""The recommendations server: a read API over the warehouse and a daily dashboard; no luigi, no pipeline."""

from __future__ import annotations


def serve(host: str = "127.0.0.1", port: int = 8080, *, workers: int = 1, access_log: bool = False) -> None:
    """Serve the API and dashboard until interrupted (see workflow.server.runner.serve)."""
    from workflow.server.runner import serve as run  # noqa: PLC0415  (uvicorn only when serving)

    run(host, port, workers=workers, access_log=access_log)


__all__ = ["serve"]
