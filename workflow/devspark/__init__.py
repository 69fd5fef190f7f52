"""A Spark standalone cluster on this machine and the PostgreSQL JDBC driver, for the Spark engine."""

from workflow.devspark.cluster import Cluster, start, status, stop
from workflow.devspark.jdbc import fetch_jdbc_jar, jdbc_jar
from workflow.devspark.runtime import SparkClusterError, unavailable_reason

__all__ = [
    "Cluster",
    "SparkClusterError",
    "fetch_jdbc_jar",
    "jdbc_jar",
    "start",
    "status",
    "stop",
    "unavailable_reason",
]
