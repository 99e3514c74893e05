"""Storage: database URLs, the database back ends, checkpoint savers and locks."""

from podium.storage.database import Database, PostgresDatabase, SqliteDatabase, open_database
from podium.storage.urls import DEFAULT_URL, DatabaseURL, mask, parse_url

__all__ = [
    "DEFAULT_URL",
    "Database",
    "DatabaseURL",
    "PostgresDatabase",
    "SqliteDatabase",
    "mask",
    "open_database",
    "parse_url",
]
