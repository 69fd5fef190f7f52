"""The embedded PostgreSQL server the project starts itself when no database URL is configured."""

from workflow.devdb.server import DATABASES, EmbeddedServer, find_bindir

__all__ = ["DATABASES", "EmbeddedServer", "find_bindir"]
