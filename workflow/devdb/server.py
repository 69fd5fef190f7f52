"""The embedded PostgreSQL server the project starts itself when no database URL is configured."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workflow.devdb import machine
from workflow.errors import EmbeddedServerError

log = logging.getLogger("luigi-interface.workflow.devdb")

DATABASES = ("datacamp_application", "dwh", "luigi_task_history", "pagila")
SUPERUSER = "postgres"
# As root, when the server's account cannot enter the output root, this file of the server's root names the
# folder its cluster lives in instead (see machine.OUTSIDE_FOLDER).
LOCATION_FILE = "cluster-location"


@dataclass(frozen=True)
class EmbeddedServer:
    """A PostgreSQL cluster managed with pg_ctl, its lock and port files in `root`.

    Its data (`data/`) and log (`server.log`) live in `root` too, except as root when the server's system
    account cannot enter the folders above `root`: then they live in a folder of that account's (see
    `_place_cluster`), and `root/cluster-location` names it.
    """

    root: Path

    @property
    def cluster_dir(self) -> Path:
        """Return the folder of the data and the server log: `root`, or the folder its location file names."""
        try:
            recorded = (self.root / LOCATION_FILE).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return self.root
        cluster = Path(recorded)
        if not (
            cluster.is_absolute()
            and cluster.name == self._outside_name
            and cluster.parent.name.startswith(machine.OUTSIDE_FOLDER)
        ):
            raise EmbeddedServerError(
                f"{self.root / LOCATION_FILE} names {recorded!r}, not this output root's cluster; delete the file"
            )
        return cluster

    @property
    def _outside_name(self) -> str:
        """Name of the cluster folder outside the output root: a hash of `root`, so two checkouts never share one."""
        return hashlib.sha256(os.path.abspath(self.root).encode()).hexdigest()[:16]

    @property
    def data_dir(self) -> Path:
        return self.cluster_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.cluster_dir / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program (as the server's account when we are root); fail clearly if it fails."""
        account = machine.server_account()
        command = [str(machine.find_bindir() / args[0]), *args[1:]]
        kwargs: dict = {}
        if account is not None:
            kwargs = dict(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
        result = subprocess.run(
            command,
            cwd=self.cluster_dir,  # one the server's account can enter
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
        return machine.postmaster_port(self.data_dir)

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
            account = machine.server_account()
            if account is not None:
                self._place_cluster(account)
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
            port = machine.free_port(self._previous_port())
            options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=on"
            self._run(
                "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options
            )
            (self.root / "port").write_text(f"{port}\n")
            log.info("embedded PostgreSQL %s started on 127.0.0.1:%s", self.data_dir, port)
            self.create_databases(*DATABASES)

    def _place_cluster(self, account: pwd.struct_passwd) -> None:
        """Make the cluster's folder ready for the server's account (we are root).

        When the account can enter the folders above `root`, the cluster lives in `root`, given to the account, as
        always. Otherwise (a checkout in a folder only its owner may enter, say) it lives in a folder the project
        makes for the account, mode 0700: `<home>/course-recommendations/<hash of root>` when the account's home is
        usable, else `/var/tmp/course-recommendations-<account>/<hash of root>`. The user's folders are never changed.
        """
        location = self.root / LOCATION_FILE
        if not location.exists():
            blocked = machine.unreachable_parent(self.root, account)
            if blocked is None:
                os.chown(self.root, account.pw_uid, account.pw_gid)
                return
            mode = stat.filemode(blocked.stat().st_mode)
            if (self.root / "data").exists():
                raise EmbeddedServerError(
                    f"the embedded server's data is in {self.root / 'data'}, but its system user {account.pw_name!r} "
                    f"cannot enter {blocked} (mode {mode}); move the output root back where that user can reach it, "
                    f"or delete {self.root / 'data'} to start a new, empty cluster outside the output root"
                )
            cluster = machine.outside_base(account) / self._outside_name
            pending = location.with_name(f"{LOCATION_FILE}.tmp")
            pending.write_text(f"{cluster}\n")
            pending.replace(location)  # whole, for readers that take no lock
            log.info(  # once, when the place is chosen; "started" messages name it too
                "system user %r cannot enter %s (mode %s): the embedded server's data and log go to %s (named in %s)",
                account.pw_name,
                blocked,
                mode,
                cluster,
                location,
            )
        cluster = self.cluster_dir
        machine.private_folder(cluster.parent, account)
        machine.private_folder(cluster, account)
        try:  # which output root it serves, for _remove_orphans; O_EXCL: never through a link planted there
            used_by = os.open(cluster / "used-by", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        else:
            with os.fdopen(used_by, "w") as handle:
                handle.write(f"{os.path.abspath(self.root)}\n")
        machine.remove_orphans(cluster.parent, keep=cluster)

    def _restrict_authentication(self) -> None:
        """Let the superuser in without a password from this machine only; every other role needs its password."""
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# TYPE  DATABASE  USER      ADDRESS        METHOD\n"
            "host    all       postgres  127.0.0.1/32   trust\n"
            "host    all       all       127.0.0.1/32   scram-sha-256\n"
        )
        account = machine.server_account()
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
            self._stop()

    def _stop(self) -> None:
        if self.port() is not None:
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))

    def remove(self) -> None:
        """Stop the server and delete its cluster (data and log) wherever it lives, and the files that name it."""
        with self._lock():
            self._stop()
            cluster = self.cluster_dir
            if cluster == self.root:
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self.log_file.unlink(missing_ok=True)
            elif cluster.exists():
                shutil.rmtree(cluster)
                log.info("removed embedded PostgreSQL cluster %s", cluster)
            for name in (LOCATION_FILE, "port"):
                (self.root / name).unlink(missing_ok=True)
