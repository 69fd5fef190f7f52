"""What the embedded server needs of the machine: PostgreSQL's binaries, its account, reachable folders, a port."""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
from pathlib import Path

from workflow.errors import EmbeddedServerError

log = logging.getLogger("luigi-interface.workflow.devdb")

# As root, when the server's account cannot enter the output root, its cluster lives in a folder of its own
# named after this, under the account's home (else /var/tmp).
OUTSIDE_FOLDER = "course-recommendations"


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


def server_account() -> pwd.struct_passwd | None:
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


def unreachable_parent(folder: Path, account: pwd.struct_passwd) -> Path | None:
    """Return the first folder above `folder` that the account cannot enter (the server has no extra groups)."""
    for parent in reversed(folder.parents):
        mode = parent.stat()
        if mode.st_uid == account.pw_uid:
            permitted = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid == account.pw_gid:
            permitted = mode.st_mode & stat.S_IXGRP
        else:
            permitted = mode.st_mode & stat.S_IXOTH
        if not permitted:
            return parent
    return None


def outside_base(account: pwd.struct_passwd) -> Path:
    """Return the folder for clusters kept outside output roots: in the account's home when usable, else /var/tmp."""
    home = Path(account.pw_dir)
    try:
        usable = (
            home.is_absolute()
            and home != Path("/")
            and home.is_dir()
            and home.stat().st_uid in (0, account.pw_uid)
            and unreachable_parent(home / OUTSIDE_FOLDER, account) is None
        )
    except OSError:
        usable = False
    return home / OUTSIDE_FOLDER if usable else Path("/var/tmp") / f"{OUTSIDE_FOLDER}-{account.pw_name}"


def private_folder(path: Path, account: pwd.struct_passwd) -> None:
    """Create the folder (mode 0700, the account's) unless it exists; refuse one that someone else made."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    else:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
        os.chmod(path, 0o700)  # whatever the umask: the project's own folder
    mode = path.lstat()
    if not stat.S_ISDIR(mode.st_mode) or mode.st_uid not in (0, account.pw_uid):
        raise EmbeddedServerError(
            f"{path} should be a folder of the embedded server's account {account.pw_name!r} but is not "
            "(a symbolic link, or made by someone else); remove it"
        )


def postmaster_port(data_dir: Path) -> int | None:
    """Return the port of the postmaster of this data folder when it is alive, else None."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
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


def remove_orphans(base: Path, keep: Path) -> None:
    """Delete the stopped clusters in `base` whose server folder (their output root's `postgres`) is gone."""
    for cluster in base.iterdir():
        if cluster == keep or cluster.is_symlink() or not cluster.is_dir():
            continue
        try:
            owner = Path((cluster / "used-by").read_text().strip())
        except OSError:
            continue
        if owner.is_absolute() and not os.path.lexists(owner) and postmaster_port(cluster / "data") is None:
            log.info("removing embedded PostgreSQL cluster %s: its output root %s is gone", cluster, owner.parent)
            shutil.rmtree(cluster, ignore_errors=True)


def free_port(preferred: int | None) -> int:
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
