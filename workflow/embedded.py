"""The embedded PostgreSQL server the project starts itself when no database URL is configured."""

from __future__ import annotations

import fcntl
import glob
import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("workflow.embedded")

DATABASES = ("datacamp_application", "dwh", "luigi_task_history")
SUPERUSER = "postgres"


class EmbeddedServerError(RuntimeError):
    """The embedded PostgreSQL server could not be found, set up or started."""


def find_bindir() -> Path:
    """Return the folder of PostgreSQL server binaries: the machine's own first, the pgserver wheel's last."""
    candidates: list[Path] = []
    if os.environ.get("WORKFLOW_PG_BINDIR"):
        candidates.append(Path(os.environ["WORKFLOW_PG_BINDIR"]))
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)

    def major_version(path: str) -> int:
        version = Path(path).parent.name
        return int(version) if version.isdigit() else 0

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major_version, reverse=True)
    candidates.extend(Path(p) for p in debian)
    wheel = importlib.util.find_spec("pgserver")  # located, not imported: only its binaries are used
    if wheel is not None and wheel.submodule_search_locations:
        candidates.append(Path(wheel.submodule_search_locations[0]) / "pginstall" / "bin")
    for bindir in candidates:
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise EmbeddedServerError(
        "no PostgreSQL server binaries found (looked for initdb, pg_ctl, postgres in "
        f"{', '.join(map(str, candidates)) or 'nothing'}); install PostgreSQL or the pgserver "
        "package, or set SOURCE_DATABASE_URL and DWH_DATABASE_URL"
    )


def _server_account() -> pwd.struct_passwd | None:
    """Return the system account that runs the server when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("WORKFLOW_PG_OS_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise EmbeddedServerError(
            f"running as root, and PostgreSQL refuses to run as root, but there is no system user "
            f"{name!r} to run the embedded server; create one (useradd --system {name}), set "
            "WORKFLOW_PG_OS_USER to another non-root user, or set SOURCE_DATABASE_URL and DWH_DATABASE_URL"
        ) from None


def _check_reachable(folder: Path, account: pwd.struct_passwd) -> None:
    """Fail clearly when the server account cannot walk down to its data folder (we never widen permissions)."""
    for parent in reversed(folder.parents):
        mode = parent.stat()
        if mode.st_uid == account.pw_uid:
            continue
        if mode.st_gid == account.pw_gid and mode.st_mode & stat.S_IXGRP:
            continue
        if mode.st_mode & stat.S_IXOTH:
            continue
        raise EmbeddedServerError(
            f"the embedded server runs as system user {account.pw_name!r}, who cannot enter {parent} "
            f"(mode {stat.filemode(mode.st_mode)}); put WORKFLOW_OUTPUT_DIR somewhere that user can reach"
        )


@dataclass(frozen=True)
class EmbeddedServer:
    """A PostgreSQL cluster whose data lives in `root/data`, managed with pg_ctl."""

    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program (as the server's account when we are root); fail clearly if it fails."""
        account = _server_account()
        command = [str(find_bindir() / args[0]), *args[1:]]
        kwargs: dict = {}
        if account is not None:
            kwargs = dict(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
        result = subprocess.run(
            command,
            cwd=self.root,
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
            **kwargs,
        )
        if result.returncode != 0:
            message = result.stderr.strip() or result.stdout.strip()
            raise EmbeddedServerError(
                f"{' '.join(args[:2])} failed (exit {result.returncode}): {message}; server log: {self.log_file}"
            )
        return result

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def port(self) -> int | None:
        """Return the port of the running server, or None when it is not running."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 4:
            return None
        try:
            os.kill(int(lines[0]), 0)  # signal 0: is the postmaster alive? (what `pg_ctl status` checks)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, and run by another user
        return int(lines[3])

    def _previous_port(self) -> int | None:
        try:
            return int((self.root / "port").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def url(self, database: str) -> str:
        """Return the SQLAlchemy URL of one database on the running server."""
        port = self.port()
        if port is None:
            raise EmbeddedServerError(f"the embedded server in {self.root} is not running")
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{port}/{database}"

    def ensure_running(self) -> None:
        """Create the cluster and its databases if needed and start the server if it is not running."""
        with self._lock():
            if self.port() is not None:
                return
            account = _server_account()
            if account is not None:
                _check_reachable(self.root, account)
                os.chown(self.root, account.pw_uid, account.pw_gid)
            if not (self.data_dir / "PG_VERSION").exists():
                log.info("creating embedded PostgreSQL cluster in %s", self.data_dir)
                self._run(
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                )
                self._restrict_authentication()
            port = _free_port(self._previous_port())
            options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=on"
            self._run(
                "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options
            )
            (self.root / "port").write_text(f"{port}\n")
            log.info("embedded PostgreSQL %s started on 127.0.0.1:%s", self.data_dir, port)
            self.create_databases(*DATABASES)

    def _restrict_authentication(self) -> None:
        """Let the superuser in without a password from this machine only; every other role needs its password."""
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# TYPE  DATABASE  USER      ADDRESS        METHOD\n"
            "host    all       postgres  127.0.0.1/32   trust\n"
            "host    all       all       127.0.0.1/32   scram-sha-256\n"
        )
        account = _server_account()
        if account is not None:
            os.chown(hba, account.pw_uid, account.pw_gid)

    def create_databases(self, *names: str) -> None:
        """Create those of the databases that do not exist yet."""
        import psycopg2  # noqa: PLC0415
        from psycopg2 import sql  # noqa: PLC0415

        connection = psycopg2.connect(host="127.0.0.1", port=self.port(), user=SUPERUSER, dbname="postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for name in names:
                    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                    if cursor.fetchone() is None:
                        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()

    def stop(self) -> None:
        """Stop the server (fast shutdown) if it is running."""
        with self._lock():
            if self.port() is not None:
                self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))


def _free_port(preferred: int | None) -> int:
    """Return the preferred port when it is free (so URLs survive a restart), else any free one."""
    for port in (preferred, 0):
        if port is None:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL itself binds
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise EmbeddedServerError("no free TCP port on 127.0.0.1")
