"""Settings for the test suite: the real ones, a private data dir, a cheaper Argon2."""

import os
from pathlib import Path

os.environ.setdefault("TWOSTEP_DATA_DIR", str(Path(__file__).resolve().parent.parent / ".test-data"))

from config.settings import *  # noqa: E402,F403

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["tests.hashers.FastArgon2PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Queued mail is sent as its transaction commits, so tests read mail.outbox right after an action.
# Tests about delivery itself switch to the database queue (tests/integration/mail_queue.py).
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "twostep.W001"]  # noqa: F405
