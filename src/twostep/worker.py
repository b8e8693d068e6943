"""The queue worker: runs queued tasks (mail, reset requests) until it is told to stop.

`twostep worker` runs one in the foreground; `twostep serve` starts one as a child process of
gunicorn's arbiter (server.py), never one per web worker. Any number of workers, on one machine or
several, may share the database: each task is claimed by one of them with SELECT … FOR UPDATE
SKIP LOCKED on PostgreSQL (an exclusive transaction on SQLite), by django-tasks-db's own loop, and
each mail once more by a conditional UPDATE of its row (services/outbox.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.db import close_old_connections
from django.utils.crypto import get_random_string

log = logging.getLogger("twostep.worker")

HOUSEKEEPING_SECONDS = 60  # how often stalled mails are looked for
PRUNE_SECONDS = 3600  # how often old mails and finished tasks are removed
ERROR_PAUSE_SECONDS = 5  # after the database failed, before trying again


class Worker:
    """A loop over django-tasks-db's worker, in batches, with the mail queue's housekeeping."""

    def __init__(self, *, interval: float, worker_id: str | None = None):
        from django_tasks_db.management.commands.db_worker import Worker as TaskWorker

        self.interval = interval
        self.stopping = threading.Event()
        self._tasks = TaskWorker(
            queue_names=["*"], excluded_queue_names=[], interval=0, batch=True, backend_name="default",
            startup_delay=False, max_tasks=None, worker_id=worker_id or get_random_string(32),
        )

    def drain(self) -> int:
        """Run every task that is due now, then return how many ran."""
        before = self._tasks._run_tasks
        self._tasks.running = not self.stopping.is_set()
        self._tasks.run()
        return self._tasks._run_tasks - before

    def run(self, *, parent: int | None = None) -> None:
        """Work until `stop` is called, or until the process `parent` is gone."""
        from .services import oidc, outbox

        log.info("worker %s started", self._tasks.worker_id)
        next_housekeeping = next_prune = 0.0
        while not self.stopping.is_set():
            if parent is not None and os.getppid() != parent:
                log.warning("the server that started this worker is gone; stopping")
                break
            try:
                now = time.monotonic()
                if now >= next_housekeeping:
                    outbox.recover_stalled()
                    next_housekeeping = now + HOUSEKEEPING_SECONDS
                if now >= next_prune:
                    outbox.prune()
                    oidc.prune()
                    next_prune = now + PRUNE_SECONDS
                if self._has_due():
                    self.drain()
                pause = self.interval
            except Exception:  # noqa: BLE001 — a database outage must not end the worker
                log.exception("the worker could not reach the queue; trying again shortly")
                pause = max(self.interval, ERROR_PAUSE_SECONDS)
            close_old_connections()
            self.stopping.wait(pause)
        log.info("worker %s stopped", self._tasks.worker_id)

    def stop(self, *_signal) -> None:
        """Finish the task at hand, then leave `run` (a signal handler's signature)."""
        self.stopping.set()
        self._tasks.running = False

    def _has_due(self) -> bool:
        # A plain read first, so an idle worker never takes SQLite's write lock to find nothing.
        from django_tasks_db.models import DBTaskResult

        return DBTaskResult.objects.ready().exists()
