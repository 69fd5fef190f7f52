"""Start the server: uvicorn on 127.0.0.1 unless told otherwise, in one process or in several workers."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from types import FrameType

import uvicorn

from workflow.server import settings

log = logging.getLogger("workflow.server")

APP = "workflow.server.app:create_app"
# A worker that dies sooner than this after its start is failing to start: stop rather than restart it forever.
MIN_WORKER_LIFETIME_S = 10.0


def serve(host: str = "127.0.0.1", port: int = 8080, *, workers: int = 1, access_log: bool = False) -> None:
    """Serve the API and dashboard until interrupted; a database that cannot be chosen fails here, in one line."""
    configure_logging()
    settings.pool_size()  # these fail before anything listens; each process then opens its own pool
    settings.expected_by()
    settings.database()
    config = uvicorn.Config(
        APP, factory=True, host=host, port=port, access_log=access_log, log_level="info", proxy_headers=False
    )
    if workers <= 1:
        uvicorn.Server(config).run()
    else:
        _supervise(config, workers)


def configure_logging() -> None:
    """Show the server's own messages once each (uvicorn configures only its loggers), whoever configured the root."""
    if log.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # `python -m workflow serve` gives the root a handler too: it would print them twice


def listening_socket(host: str, port: int) -> socket.socket:
    """Return a TCP socket listening on the address with SO_REUSEPORT, so that each worker can have its own.

    With one socket shared by all workers (uvicorn's --workers), whichever worker wakes first accepts
    a burst of connections: 64 keep-alive clients split 40/24 and the busy worker's clients wait
    longer. With a socket each, the kernel spreads connections over the workers. The socket says
    IPPROTO_TCP, so asyncio sets TCP_NODELAY on the connections it accepts (a socket made with proto 0,
    as uvicorn's --workers makes it, leaves Nagle's algorithm on: about 40 ms per keep-alive response,
    uvicorn issue #3149).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _worker(config: uvicorn.Config, listener: socket.socket) -> None:
    """Run one uvicorn server on its own listening socket (in a spawned process)."""
    config.configure_logging()
    configure_logging()
    uvicorn.Server(config).run(sockets=[listener])


def _supervise(config: uvicorn.Config, workers: int) -> None:
    """Run the workers, each on its own socket, restart one that dies, and stop them all on SIGINT or SIGTERM."""
    listeners = [listening_socket(config.host, config.port)]
    port = listeners[0].getsockname()[1]  # the port chosen when asked for 0
    listeners += [listening_socket(config.host, port) for _ in range(workers - 1)]
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    processes: list[multiprocessing.process.BaseProcess] = []
    started: list[float] = []
    try:
        for listener in listeners:
            processes.append(context.Process(target=_worker, args=(config, listener), name="uvicorn-worker"))
            processes[-1].start()
            started.append(time.monotonic())
        log.info("serving on http://%s:%d with %d workers (pids %s)", config.host, port, workers,
                 ", ".join(str(p.pid) for p in processes))  # fmt: skip
        while not stop.wait(0.5):
            for index, process in enumerate(processes):
                if process.is_alive():
                    continue
                if time.monotonic() - started[index] < MIN_WORKER_LIFETIME_S:
                    log.error("worker %s exited (%s) right after its start; stopping", process.pid, process.exitcode)
                    stop.set()
                    break
                log.warning("worker %s exited (%s); starting another", process.pid, process.exitcode)
                processes[index] = context.Process(target=_worker, args=(config, listeners[index]))
                processes[index].start()
                started[index] = time.monotonic()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests under way, then exits
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        for listener in listeners:
            listener.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
