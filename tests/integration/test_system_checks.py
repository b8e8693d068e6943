"""The system check that refuses a per-process store for state every process must see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                     "LOCATION": "redis://127.0.0.1:6379/0"}}


def problem_ids() -> set[str]:
    return {problem.id for problem in run_checks()}


def test_shipped_settings_keep_sessions_in_the_database_and_pass(settings):
    # Django's database sessions (twostep's store writes them once per request).
    assert settings.SESSION_ENGINE == "twostep.session_store"
    from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

    from twostep.session_store import SessionStore

    assert issubclass(SessionStore, DatabaseSessionStore)
    settings.CACHES = LOCMEM  # the cache without Redis: it holds nothing that must be shared
    assert not problem_ids() & {"twostep.E006", "twostep.E007"}


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.cache",
                                    "django.contrib.sessions.backends.cached_db"])
def test_sessions_in_a_per_process_cache_are_refused(settings, engine):
    settings.SESSION_ENGINE = engine
    settings.CACHES = LOCMEM
    problems = [p for p in run_checks() if p.id == "twostep.E006"]
    assert len(problems) == 1
    assert "'default'" in problems[0].msg and engine in problems[0].msg


def test_sessions_in_a_per_process_cache_of_their_own_alias_are_refused(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.SESSION_CACHE_ALIAS = "sessions"
    settings.CACHES = {**REDIS, "sessions": LOCMEM["default"]}
    assert "twostep.E006" in problem_ids()


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.cache",
                                    "django.contrib.sessions.backends.cached_db"])
def test_sessions_in_a_shared_cache_pass(settings, engine):
    settings.SESSION_ENGINE = engine
    settings.CACHES = REDIS
    assert "twostep.E006" not in problem_ids()


def _serve(tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))}
    return subprocess.run([TWOSTEP, "serve", "--port", "1"], capture_output=True, text=True, timeout=60,
                          env={**clean, "TWOSTEP_DATA_DIR": str(tmp_path / "data"), **env}, cwd=tmp_path)


def test_serve_refuses_to_start_with_sessions_in_a_per_process_cache(tmp_path):
    (tmp_path / "per_process_sessions.py").write_text(
        "from config.settings import *  # noqa\n"
        "SESSION_ENGINE = 'django.contrib.sessions.backends.cache'\n"
        "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}\n")
    result = _serve(tmp_path, DJANGO_SETTINGS_MODULE="per_process_sessions", PYTHONPATH=str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "refusing to start" in line and "twostep.E006" in line


def test_serve_refuses_to_start_on_an_in_memory_database(tmp_path):
    result = _serve(tmp_path, TWOSTEP_DATABASE_URL="sqlite://:memory:")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "refusing to start" in line and "twostep.E007" in line
