"""What Spark needs on this machine (pyspark as SPARK_HOME, a Java 17 or newer) and where its state lives."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

from workflow.errors import WorkflowError
from workflow.paths import spark_dir

JAVA_MINIMUM = 17
JAVA_HINT = "install Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"


class SparkClusterError(WorkflowError):
    """The Spark standalone cluster could not be found, started or stopped."""


def default_folder() -> Path:
    """Return the cluster's default state folder: `<output>/spark/`."""
    return spark_dir()


def spark_home() -> Path:
    """Return the installed pyspark package's folder, which holds bin/spark-class and the jars."""
    spec = importlib.util.find_spec("pyspark")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise SparkClusterError("pyspark is not installed; install the Spark extra: pip install -e '.[spark]'")
    home = Path(spec.submodule_search_locations[0])
    if not (home / "bin" / "spark-class").exists():
        raise SparkClusterError(f"{home} has no bin/spark-class; reinstall pyspark")
    return home


def find_java() -> Path:
    """Return the java that spark-class will run (JAVA_HOME's, else the one on PATH), checked to be 17 or newer."""
    if os.environ.get("JAVA_HOME"):
        java = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if not java.exists():
            raise SparkClusterError(f"JAVA_HOME is {os.environ['JAVA_HOME']}, which has no bin/java; {JAVA_HINT}")
    else:
        found = shutil.which("java")
        if found is None:
            raise SparkClusterError(f"no java on PATH; {JAVA_HINT}")
        java = Path(found)
    try:
        result = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SparkClusterError(f"cannot run {java}: {error}; {JAVA_HINT}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise SparkClusterError(f"{java} -version says no version (exit {result.returncode}); {JAVA_HINT}")
    major = int(match.group(2)) if match.group(1) == "1" else int(match.group(1))  # "1.8.0" is Java 8
    if major < JAVA_MINIMUM:
        raise SparkClusterError(f"{java} is Java {major}; Spark needs {JAVA_MINIMUM} or newer: {JAVA_HINT}")
    return java


def unavailable_reason() -> str | None:
    """Return why Spark cannot run here (no pyspark, no Java 17+), or None when it can."""
    try:
        spark_home()
        find_java()
    except SparkClusterError as error:
        return str(error)
    return None
