"""The real mail queue for tests about delivery (no tests here).

The suite's settings run queued tasks at once (the immediate backend); a test module that is about
delivery itself uses the `database_queue` fixture — the database backend of production — and runs
the worker's loop with `run_queued_tasks`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django_tasks_db.models import DBTaskResult, get_date_max

from twostep.worker import Worker

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.fixture(name="database_queue")
def database_queue_fixture(settings):
    settings.TASKS = DATABASE_QUEUE


def run_queued_tasks(later: timedelta = timedelta(0)) -> int:
    """Let `later` pass for the queue, then run every task that is due, as a worker does; return how many."""
    if later:
        (DBTaskResult.objects.filter(status="READY").exclude(run_after=get_date_max())
         .update(run_after=F("run_after") - later))
    return Worker(interval=0).drain()


def waiting_tasks() -> int:
    return DBTaskResult.objects.filter(status="READY").count()
