"""PostgreSQL for the benchmark: a fresh dedicated database and checkpoint byte counts."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

#: The database the benchmark drops and recreates on every run.
BENCH_DATABASE = "podium_bench"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"

#: Logical bytes of one thread's checkpoints: the checkpoint and metadata documents, the
#: channel blobs and the pending writes, across every namespace (subgraphs included).
_BYTES_SQL = """
SELECT
  (SELECT COALESCE(SUM(octet_length(checkpoint::text) + octet_length(metadata::text)), 0)
     FROM checkpoints WHERE thread_id = %(t)s) AS checkpoints,
  (SELECT COALESCE(SUM(octet_length(blob)), 0)
     FROM checkpoint_blobs WHERE thread_id = %(t)s) AS blobs,
  (SELECT COALESCE(SUM(octet_length(blob)), 0)
     FROM checkpoint_writes WHERE thread_id = %(t)s) AS writes,
  (SELECT COUNT(*) FROM checkpoints WHERE thread_id = %(t)s) AS checkpoint_rows,
  (SELECT COALESCE(SUM(pg_column_size(checkpoint) + pg_column_size(metadata)), 0)
     FROM checkpoints WHERE thread_id = %(t)s)
  + (SELECT COALESCE(SUM(pg_column_size(blob)), 0)
     FROM checkpoint_blobs WHERE thread_id = %(t)s)
  + (SELECT COALESCE(SUM(pg_column_size(blob)), 0)
     FROM checkpoint_writes WHERE thread_id = %(t)s) AS stored
"""


def with_database(url: str, database: str) -> str:
    """`url` pointing at `database` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def unreachable(url: str) -> str | None:
    """None when PostgreSQL at `url` accepts a connection, else the reason."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def recreate_database(admin_url: str, database: str = BENCH_DATABASE) -> str:
    """Drop and create `database` (isolated tables for every run); return its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        name = sql.Identifier(database)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    return with_database(admin_url, database)


def checkpoint_bytes(url: str, thread_id: str) -> dict[str, int]:
    """Bytes in LangGraph's checkpoint tables for one thread.

    Returns `total` (logical bytes: documents as text plus blobs, the figure compared),
    its parts, the number of checkpoint rows, and `stored` (`pg_column_size`, after
    PostgreSQL's TOAST compression).
    """
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute(_BYTES_SQL, {"t": thread_id}).fetchone()
    assert row is not None
    parts = {key: int(value) for key, value in row.items()}
    parts["total"] = parts["checkpoints"] + parts["blobs"] + parts["writes"]
    return parts
