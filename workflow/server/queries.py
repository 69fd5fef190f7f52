"""The SQL of the server: one file per query under workflow/server/sql/, values always bound parameters.

The API's queries run through asyncpg and take $1, $2, ... (each file's comment says what they are); the
setup scripts of the embedded reader role (`reader_*.sql`) run through psycopg2 and take %(name)s.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"


@cache
def sql(name: str) -> str:
    """Return the text of `workflow/server/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()
