"""The PostgreSQL server the tests use (docs: a server at 127.0.0.1:5432, trust
authentication, user postgres; POSBRIDGE_TEST_POSTGRES names another). Each test makes
its own database in it and drops it after; without a server the PostgreSQL tests skip
with one line saying why, and under CI (CI=true) such a skip fails the run
(tests/conftest.py)."""
import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import pytest

SERVER = os.environ.get("POSBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
SKIP_PREFIX = "no PostgreSQL server"

_reason = []


def unavailable() -> "str | None":
    """Why the server cannot be used (None when it can); asked once per run."""
    if not _reason:
        try:
            import psycopg
            with psycopg.connect(url("postgres"), connect_timeout=3):
                _reason.append(None)
        except ImportError:
            _reason.append(f"{SKIP_PREFIX}: psycopg is not installed")
        except Exception as exc:          # noqa: BLE001 - any failure means no server
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _reason.append(f"{SKIP_PREFIX} at {SERVER} ({first})")
    return _reason[0]


def require():
    reason = unavailable()
    if reason:
        pytest.skip(reason)


def url(name: str) -> str:
    return urlunsplit(urlsplit(SERVER)._replace(path="/" + name))


class Databases:
    """Databases made for a test run, each dropped by drop_all (or drop)."""

    def __init__(self):
        self.made = []

    def new(self, template: "str | None" = None) -> str:
        """The URL of a new, empty database (or a copy of `template`, a URL)."""
        import psycopg
        from psycopg import sql
        name = f"posbridge_test_{secrets.token_hex(6)}"
        with psycopg.connect(url("postgres"), autocommit=True) as conn:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(
                    sql.Identifier(urlsplit(template).path.lstrip("/")))
            conn.execute(statement)
        self.made.append(url(name))
        return url(name)

    def drop(self, database: str):
        from posbridge.issuer.postgres import drop_database
        drop_database(database)
        if database in self.made:
            self.made.remove(database)

    def drop_all(self):
        for database in list(self.made):
            self.drop(database)
