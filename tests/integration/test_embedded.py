"""The embedded server from a checkout in a folder only its owner may enter (mode 0700, as `mktemp -d` makes).

As root the server runs as a system user who cannot enter such a folder: its cluster must then live in a folder the
project makes for that user, and the user's folders must stay exactly as they were. Not as root, the server runs as
the current user and its cluster stays under the output root.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from conftest import REPO

from workflow.devdb.machine import server_account
from workflow.devdb.server import LOCATION_FILE, SUPERUSER, EmbeddedServer

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def private_parent() -> Iterator[Path]:
    """Return a new folder only its owner may enter; afterwards remove it and every server made in it."""
    parent = Path(tempfile.mkdtemp(prefix="workflow-private-"))
    assert stat.S_IMODE(parent.stat().st_mode) == 0o700
    yield parent
    for root in parent.glob("**/postgres"):
        EmbeddedServer(root).remove()
    shutil.rmtree(parent, ignore_errors=True)


def ownership(paths: list[Path]) -> dict[Path, tuple[int, int, int]]:
    """Return each folder's mode, owner and group."""
    return {path: (path.stat().st_mode, path.stat().st_uid, path.stat().st_gid) for path in paths}


def query(port: int, database: str, statement: str) -> list[tuple]:
    """Return the rows of one statement run as the superuser (autocommit)."""
    connection = psycopg2.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname=database)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def workflow_db(action: str, output: Path) -> subprocess.CompletedProcess:
    """Run `python -m workflow db <action>` for this output root, on the embedded server whatever the environment."""
    environment = {key: value for key, value in os.environ.items() if not key.endswith("_DATABASE_URL")}
    environment["WORKFLOW_OUTPUT_DIR"] = str(output)
    return subprocess.run(
        [sys.executable, "-m", "workflow", "db", action],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_a_checkout_in_a_private_folder_gets_a_server_and_its_folders_stay_as_they_were(
    private_parent: Path,
) -> None:
    checkout = private_parent / "checkout"
    output = checkout / "output"
    output.mkdir(parents=True)
    users_folders = [*reversed(private_parent.parents), private_parent, checkout, output]
    account = server_account()
    if account is not None:
        users_folders.append(Path(account.pw_dir))  # the account's home: the project only adds a folder to it
    before = ownership(users_folders)

    started = workflow_db("start", output)
    assert started.returncode == 0, started.stderr
    server = EmbeddedServer(output / "postgres")
    port = server.port()
    assert port is not None
    assert started.stdout == (
        f"courses source: postgresql+psycopg2://postgres@127.0.0.1:{port}/datacamp_application\n"
        f"films source:   postgresql+psycopg2://postgres@127.0.0.1:{port}/pagila\n"
        f"warehouse:      postgresql+psycopg2://postgres@127.0.0.1:{port}/dwh\n"
    )
    cluster = server.cluster_dir
    if AS_ROOT:  # outside the private folder, in a folder of the server's account, which the location file names
        assert not cluster.is_relative_to(private_parent)
        assert (server.root / LOCATION_FILE).read_text() == f"{cluster}\n"
        assert (cluster.stat().st_uid, stat.S_IMODE(cluster.stat().st_mode)) == (account.pw_uid, 0o700)
        assert not (server.root / "data").exists()
    else:
        assert cluster == server.root
        assert not (server.root / LOCATION_FILE).exists()
    assert server.data_dir == cluster / "data"
    assert query(port, "postgres", "SHOW data_directory") == [(str(cluster / "data"),)]

    query(port, "postgres", "CREATE DATABASE private_probe")
    query(port, "private_probe", "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')")
    stopped = workflow_db("stop", output)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"embedded server in {server.root} stopped\n"
    assert server.port() is None

    again = EmbeddedServer(output / "postgres")  # as a new process finds it: through the location file
    again.ensure_running()
    assert again.cluster_dir == cluster
    assert query(again.port(), "private_probe", "SELECT note FROM kept") == [("still here",)]
    again.stop()

    assert ownership(users_folders) == before
    assert stat.S_IMODE(private_parent.stat().st_mode) == 0o700

    server.remove()
    assert not server.data_dir.exists()
    if AS_ROOT:
        assert not cluster.exists()
    assert sorted(path.name for path in server.root.iterdir()) == [".lock"]
    assert not (server.root / LOCATION_FILE).exists()
    assert ownership(users_folders) == before


def test_two_output_roots_get_two_clusters_and_a_deleted_ones_cluster_is_removed(private_parent: Path) -> None:
    first = EmbeddedServer(private_parent / "first" / "postgres")
    second = EmbeddedServer(private_parent / "second" / "postgres")
    first.ensure_running()
    second.ensure_running()
    assert first.port() != second.port()
    assert first.cluster_dir != second.cluster_dir
    for server in (first, second):
        assert query(server.port(), "postgres", "SHOW data_directory") == [(str(server.data_dir),)]

    # The first checkout is deleted without `remove()`: the next start of any server removes its cluster.
    first_cluster = first.cluster_dir
    first.stop()
    shutil.rmtree(private_parent / "first")
    second.stop()
    second.ensure_running()
    assert not first_cluster.exists()
    assert second.cluster_dir.exists()
    assert query(second.port(), "postgres", "SELECT 1") == [(1,)]
