"""The embedded PostgreSQL server the project starts itself when no database URL is configured."""

from workflow.devdb.machine import find_bindir
from workflow.devdb.server import DATABASES, EmbeddedServer

__all__ = ["DATABASES", "EmbeddedServer", "find_bindir"]
