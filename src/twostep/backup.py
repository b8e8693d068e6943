"""`twostep backup PATH`: a consistent copy of the database, taken while the service runs.

SQLite: SQLite's online backup API (sqlite3.Connection.backup) copies the pages under the
database's own locks, so the copy is consistent even while `twostep serve` writes. PostgreSQL:
pg_dump (a consistent snapshot in one transaction), in its custom format for pg_restore.

The copy alone cannot be used: TOTP secrets are encrypted and backup codes hashed with keys that
are not in the database (docs/operations.md, "Backups and restore").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path


class BackupError(Exception):
    """The backup cannot be made; the message says why, in one line."""


def back_up(target: Path) -> str:
    """Write a backup of the configured database to `target` (mode 0600); return what was done."""
    from django.db import connection

    target = target.expanduser().resolve()
    if target.exists():
        raise BackupError(f"{target} exists already; give a new file name")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    if connection.vendor == "sqlite":
        return _sqlite(Path(connection.settings_dict["NAME"]), target)
    if connection.vendor == "postgresql":
        return _postgres(connection.settings_dict, target)
    raise BackupError(f"no backup for a {connection.vendor} database")


def _sqlite(source: Path, target: Path) -> str:
    partial = target.with_name(f".{target.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds password hashes
    os.close(fd)
    try:
        with sqlite3.connect(source, timeout=30) as live, \
                sqlite3.connect(partial) as copy:
            live.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            pages = copy.execute("PRAGMA page_count").fetchone()[0]
        copy.close()
        live.close()
        partial.rename(target)  # a half-written copy never carries the final name
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot back up the SQLite database {source}: {error}") from None
    return f"backed up the SQLite database to {target} ({pages} pages)"


def _postgres(config: dict, target: Path) -> str:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError("PostgreSQL is backed up with pg_dump, which is not on PATH: install the "
                          "PostgreSQL client, or run pg_dump --format=custom against TWOSTEP_DATABASE_URL")
    env = {**os.environ, "PGHOST": str(config.get("HOST") or "localhost"), "PGPORT": str(config.get("PORT") or 5432),
           "PGUSER": str(config.get("USER") or ""), "PGDATABASE": str(config["NAME"])}
    if config.get("PASSWORD"):
        env["PGPASSWORD"] = str(config["PASSWORD"])  # the environment, never the command line (ps)
    partial = target.with_name(f".{target.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    done = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--file", str(partial)],  # noqa: S603
                          env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        partial.unlink(missing_ok=True)
        reason = (done.stderr.strip().splitlines() or ["pg_dump failed"])[-1]
        raise BackupError(f"pg_dump failed: {reason}")
    partial.rename(target)
    return f"backed up the PostgreSQL database {config['NAME']} to {target} with pg_dump (restore with pg_restore)"
