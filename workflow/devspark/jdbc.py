"""The PostgreSQL JDBC driver for Spark's JDBC reads: the machine's, or Debian's package unpacked without root."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from workflow.devspark.runtime import SparkClusterError, default_folder

DEBIAN_PACKAGE = "libpostgresql-jdbc-java"
SYSTEM_JARS = Path("/usr/share/java")
DRIVER_CLASS = "org/postgresql/Driver.class"


def jdbc_jar(folder: Path | None = None) -> Path | None:
    """Return a PostgreSQL JDBC jar: the machine's (/usr/share/java), else one fetched into `<folder>/jars/`."""
    fetched = (folder or default_folder()) / "jars" / "postgresql.jar"
    versioned = sorted(glob.glob(str(SYSTEM_JARS / "postgresql-*.jar")), reverse=True)
    for candidate in [SYSTEM_JARS / "postgresql.jar", *map(Path, versioned), fetched]:
        if candidate.is_file() and _is_driver(candidate):
            return candidate.resolve()
    return None


def fetch_jdbc_jar(folder: Path | None = None) -> Path:
    """Download Debian's libpostgresql-jdbc-java with apt-get (no root needed) and keep its jar as `<folder>/jars/`."""
    target = (folder or default_folder()) / "jars" / "postgresql.jar"
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SparkClusterError(
                f"no {tool} here to fetch {DEBIAN_PACKAGE}; put a PostgreSQL JDBC jar at {target} yourself"
            )
    with tempfile.TemporaryDirectory(prefix="workflow-jdbc-") as scratch:
        os.chmod(scratch, 0o755)  # as root, apt-get downloads as its _apt user, which must be able to write here
        _run(["apt-get", "download", "-q", DEBIAN_PACKAGE], scratch)
        packages = sorted(Path(scratch).glob(f"{DEBIAN_PACKAGE}_*.deb"))
        if not packages:
            raise SparkClusterError(f"apt-get download {DEBIAN_PACKAGE} left no .deb in {scratch}")
        unpacked = Path(scratch) / "unpacked"
        _run(["dpkg-deb", "-x", str(packages[-1]), str(unpacked)], scratch)
        jars = [
            jar
            for jar in sorted((unpacked / "usr" / "share" / "java").glob("postgresql*.jar"))
            if not jar.is_symlink() and _is_driver(jar)
        ]
        if not jars:
            raise SparkClusterError(f"{packages[-1].name} holds no PostgreSQL JDBC jar under usr/share/java")
        target.parent.mkdir(parents=True, exist_ok=True)
        pending = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        shutil.copyfile(jars[-1], pending)
        pending.replace(target)  # whole or not at all
    return target


def _run(command: list[str], folder: str) -> None:
    """Run a command in `folder`; fail with its last line of output when it fails."""
    try:
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        raise SparkClusterError(f"{' '.join(command)} did not finish within 300 s") from None
    if result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
        raise SparkClusterError(f"{' '.join(command)} failed (exit {result.returncode}): {lines[-1]}")


def _is_driver(jar: Path) -> bool:
    """Return whether the file is a jar holding PostgreSQL's JDBC driver class."""
    try:
        with zipfile.ZipFile(jar) as archive:
            return DRIVER_CLASS in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
