"""`twostep backup`: a consistent copy while the database is written, restorable with the keys."""
# ruff: noqa: F811  (the tests take the imported `operator` fixture as an argument)

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from .test_cli_operations import PASSWORD, ROOT, operator  # noqa: F401  (the fixture)

WRITER = """
import sys, django
django.setup()
from twostep.services import accounts
for n in range(int(sys.argv[1])):
    accounts.create_user(f"writer{n}", "Acme", f"writer{n}@acme.example", "a long enough password")
"""


def _writer(operator, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(count)], cwd=ROOT,
                            env={**operator.env, "DJANGO_SETTINGS_MODULE": "config.settings"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_backup_refuses_to_overwrite_a_file(operator, tmp_path):
    operator("migrate")
    taken = tmp_path / "taken.bak"
    taken.write_text("keep me")
    result = operator("backup", str(taken))
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "exists already" in result.stderr
    assert taken.read_text() == "keep me"


@pytest.mark.skipif(bool(os.environ.get("TWOSTEP_DATABASE_URL")), reason="the SQLite backup; PostgreSQL below")
def test_sqlite_backup_while_writing_is_consistent_and_restores_with_the_keys(operator, tmp_path):
    operator.acme()
    operator.helper("enrol", "alice", PASSWORD)
    writer = _writer(operator, 40)
    try:
        target = tmp_path / "twostep-backup.sqlite3"
        result = operator("backup", str(target))
    finally:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"backed up the SQLite database to {target}")
    assert "without them TOTP secrets and backup codes cannot be used" in result.stdout
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        users = copy.execute("SELECT count(*) FROM twostep_user").fetchone()[0]
    assert 1 <= users <= 41  # alice and however many writers had committed: a state that existed

    # Restore: the copy and the key files into a fresh data dir.
    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    shutil.copy(target, restored / "twostep.sqlite3")
    for name in ("secret_key", "encryption_keys", "code_hash_keys"):
        shutil.copy(operator.data / name, restored / name)
    shown = operator("user", "show", "alice", "--json", TWOSTEP_DATA_DIR=str(restored))
    assert shown.returncode == 0, shown.stderr
    assert '"two_factor_enabled": true' in shown.stdout


@pytest.mark.postgres
def test_postgres_backup_is_a_pg_dump_archive(operator, tmp_path):
    if not os.environ.get("TWOSTEP_DATABASE_URL"):
        if os.environ.get("TWOSTEP_REQUIRE_POSTGRES"):
            pytest.fail("this run must use PostgreSQL")
        pytest.skip("needs PostgreSQL (make test-postgres, and always in CI)")
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    operator.acme()
    target = tmp_path / "twostep.pgdump"
    result = operator("backup", str(target))
    assert result.returncode == 0, result.stderr
    assert "with pg_dump" in result.stdout
    assert target.read_bytes()[:5] == b"PGDMP"
    listing = subprocess.run(["pg_restore", "--list", str(target)], capture_output=True, text=True, check=True)
    assert "twostep_user" in listing.stdout


def test_postgres_backup_without_pg_dump_says_what_to_use(operator, tmp_path):
    if not os.environ.get("TWOSTEP_DATABASE_URL"):
        pytest.skip("the PostgreSQL message; the SQLite run has its own backup")
    operator("migrate")
    result = operator("backup", str(tmp_path / "x.pgdump"), PATH="/nonexistent")
    assert result.returncode == 1 and "pg_dump" in result.stderr and result.stderr.count("\n") == 1
