"""Start-up for the `twostep` command: settings, a database that exists and is migrated, checks.

Kept apart from the argument parsing in cli.py; nothing here prints but the log handler.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
from pathlib import Path

# pg_advisory_lock key held while migrating ("twostep" as a number): processes started together
# on one PostgreSQL migrate one after another instead of racing to create the same tables.
MIGRATION_LOCK_KEY = int.from_bytes(b"twostep", "big")


class SetupError(Exception):
    """The configuration or the database cannot be used; the message says why, in one line."""


def compile_messages() -> None:
    """Compile stale .po catalogues; a read-only install ships them compiled, so skip it there."""
    from . import messages

    with contextlib.suppress(OSError):
        messages.compile_catalogues()


def load_settings() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    try:
        django.setup()
    except (ValueError, OSError) as error:
        # A malformed TWOSTEP_* value, or a data dir where the keys cannot be written.
        raise SetupError(f"the configuration cannot be loaded: {error}") from None


def database_vendor() -> str:
    from django.db import connection

    return connection.vendor


def prepare_database() -> str | None:
    """Connect, creating the database if it does not exist; return a PostgreSQL name created."""
    from django.db import OperationalError, connection

    if connection.vendor == "sqlite":
        _create_sqlite_file(connection.settings_dict["NAME"])
    try:
        connection.ensure_connection()
    except OperationalError as error:
        name = connection.settings_dict["NAME"]
        if connection.vendor != "postgresql" or f'database "{name}" does not exist' not in str(error):
            raise
        created = _create_postgres_database(name)
        connection.ensure_connection()
        return name if created else None
    return None


def _create_sqlite_file(name) -> None:
    """Create the SQLite file with mode 0600 (SQLite itself follows the umask; -wal and -shm
    files copy the main file's mode), in a data dir of mode 0700."""
    if str(name).startswith((":memory:", "file:")):
        return
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _create_postgres_database(name: str) -> bool:
    from django.db import DatabaseError, connection

    try:
        # Connects to the "postgres" maintenance database, as Django's test-database creation does.
        with connection._nodb_cursor() as cursor:
            cursor.execute("CREATE DATABASE " + connection.ops.quote_name(name))
    except DatabaseError as error:
        if "already exists" in str(error):  # another process created it a moment ago
            return False
        raise SetupError(f"the database {name} does not exist and cannot be created: "
                         f"{first_line(error)}") from None
    return True


def migrate() -> int:
    """Apply the migrations not yet applied, quietly and one process at a time; return how many."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    with _migration_lock(connection):
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            call_command("migrate", verbosity=0, interactive=False, skip_checks=True)
    return len(plan)


@contextlib.contextmanager
def _migration_lock(connection):
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
    elif connection.vendor == "sqlite" and not str(connection.settings_dict["NAME"]).startswith(":"):
        lock_path = Path(f"{connection.settings_dict['NAME']}-migrate.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
    else:
        yield


def system_check() -> list[str]:
    """Run Django's system checks; raise SetupError on errors, return the warnings' text."""
    from django.core import checks

    problems = [p for p in checks.run_checks() if not p.is_silenced()]
    errors = [f"{p.msg} ({p.id})" for p in problems if p.level >= checks.ERROR]
    if errors:
        raise SetupError("refusing to start: " + " ".join(errors))
    return [f"{p.msg} ({p.id})" for p in problems if checks.WARNING <= p.level < checks.ERROR]


def close_connections() -> None:
    from django.db import connections

    connections.close_all()


def describe_database_error(error: Exception) -> str:
    """Say which database could not be used and why, without the password from its URL."""
    from django.db import connection

    if connection.vendor == "sqlite":
        return f"cannot use the SQLite database {connection.settings_dict['NAME']}: {first_line(error)}"
    return f"cannot use the database given by TWOSTEP_DATABASE_URL: {first_line(error)}"


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def one_line(text: str) -> str:
    """Collapse line breaks and blot out control characters (a login may carry any of them)."""
    text = " ".join(text.split())
    return "".join(c if c.isprintable() else "?" for c in text)


class _OneLineFormatter(logging.Formatter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text = f"{text} ({type(error).__name__}: {first_line(error)})"
        return f"{self.prefix}: {one_line(text)}"


def log_to_stderr(prefix: str, level: str, *, json: bool = False) -> None:
    """Replace the settings' log handler: one `prefix: …` line per record, never a traceback
    (a mail that could not be sent is worth a line to the operator, not a page); with `json`,
    one JSON object per line, as the server writes them."""
    from .logs import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else _OneLineFormatter(prefix))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
