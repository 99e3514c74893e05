"""Database URLs: parse, classify, mask. One URL holds checkpoints and podium's tables."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from podium.errors import DatabaseError

DEFAULT_URL = "sqlite:///.podium/podium.db"
Kind = Literal["memory", "sqlite", "postgres"]

_HELP = (
    "use memory:// (tests), sqlite:///relative/path.db or sqlite:////absolute/path.db "
    "(embedded), or postgresql://user:password@host:5432/dbname"
)


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A parsed runtime database URL."""

    raw: str
    kind: Kind
    path: Path | None = None

    @property
    def masked(self) -> str:
        return mask(self.raw)

    @property
    def conninfo(self) -> str:
        """The URL psycopg takes (the `postgres://` alias normalised)."""
        if self.raw.startswith("postgres://"):
            return "postgresql://" + self.raw[len("postgres://") :]
        return self.raw.replace("postgresql+psycopg://", "postgresql://", 1)


_PASSWORD_PARAM = re.compile(r"(password\s*=\s*)('[^']*'|[^&\s]*)", re.IGNORECASE)


@functools.lru_cache(maxsize=64)  # every database call names its URL in case it fails
def mask(url: str) -> str:
    """The URL with any password (user info, query or keyword form) replaced by `***`."""
    text = _PASSWORD_PARAM.sub(r"\1***", url)
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password is None:
        return text
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def parse_url(url: str) -> DatabaseURL:
    """Classify a database URL.

    Raises:
        DatabaseError: naming the (masked) URL and the accepted forms.
    """
    if not isinstance(url, str) or not url.strip():
        raise DatabaseError(f"empty database URL {url!r}; {_HELP}")
    url = url.strip()
    if url in ("memory://", "memory:"):
        return DatabaseURL(url, "memory")
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if not rest.startswith("/") or rest.rstrip("/") == "":
            raise DatabaseError(f"bad SQLite URL {url!r}: no file path; {_HELP}")
        path = Path(rest[1:])  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db
        return DatabaseURL(url, "sqlite", path)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        parts = urlsplit(url)
        if not parts.hostname and "host=" not in (parts.query or ""):
            raise DatabaseError(f"bad PostgreSQL URL {mask(url)!r}: no host; {_HELP}")
        return DatabaseURL(url, "postgres")
    scheme = url.split("://", 1)[0] if "://" in url else "none"
    raise DatabaseError(f"unsupported database URL {mask(url)!r} (scheme {scheme!r}); {_HELP}")
