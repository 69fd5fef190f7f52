"""The SQL of the server: one file per query under workflow/server/sql/, values always bound parameters.

The API's queries run through asyncpg and take $1, $2, ... (each file's comment says what they are); the
setup scripts of the embedded reader role (`reader_*.sql`) run through psycopg2 and take %(name)s. A query of
every pipeline's load marker names the table in braces ({marker}, {date_column}): `on_marker` fills them in with
the registry's declaration, quoted as identifiers; nothing a request sends ever becomes SQL text.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from workflow.core.pipeline import Marker

SQL_DIR = Path(__file__).parent / "sql"


@cache
def sql(name: str) -> str:
    """Return the text of `workflow/server/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()


def identifier(name: str) -> str:
    """Return the name quoted as a PostgreSQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@cache
def on_marker(name: str, marker: Marker) -> str:
    """Return the query `sql/<name>.sql` on the pipeline's load marker table (its name and date column quoted)."""
    table = f"{identifier(marker.schema)}.{identifier(marker.table)}" if marker.schema else identifier(marker.table)
    return sql(name).replace("{marker}", table).replace("{date_column}", identifier(marker.date_column))
