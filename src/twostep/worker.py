"""The queue worker: runs queued tasks (mail, reset requests) until it is told to stop.

`twostep worker` runs one in the foreground; `twostep serve` starts one as a child process of
gunicorn's arbiter (server.py), never one per web worker. Any number of workers, on one machine or
several, may share the database: each task is claimed by one of them with SELECT … FOR UPDATE
SKIP LOCKED on PostgreSQL (an exclusive transaction on SQLite), and each mail once more by its
row (services/outbox.py).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback

from django.db import OperationalError, close_old_connections, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

log = logging.getLogger("twostep.worker")

HOUSEKEEPING_SECONDS = 60  # how often stalled mails are looked for
PRUNE_SECONDS = 3600  # how often old mails and finished tasks are removed
ERROR_PAUSE_SECONDS = 5  # after the database failed, before trying again
BATCH = 25  # tasks claimed at once: one transaction to claim them, one to record what became of them
BACKEND = "default"  # the task backend (settings.TASKS) whose queue table this worker runs


class Worker:
    """Runs due tasks in batches, with the mail queue's housekeeping.

    A batch's tasks are claimed together (SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL, an
    exclusive transaction on SQLite) and their results written together, and the mails among
    them go out over one connection to the mail server (outbox.deliver_many): under a burst the
    queue costs a few transactions a batch rather than four a mail, each taking SQLite's write
    lock from the web workers.
    """

    def __init__(self, *, interval: float, worker_id: str | None = None):
        self.interval = interval
        self.stopping = threading.Event()
        self.worker_id = worker_id or get_random_string(32)

    def drain(self) -> int:
        """Run every task that is due now, then return how many ran."""
        ran = 0
        # A plain read before each claim, so a drained queue never takes SQLite's write lock to find nothing.
        while not self.stopping.is_set() and _ready().exists():
            claimed = self._claim()
            if not claimed:
                break
            self._finish(claimed, self._run(claimed))
            ran += len(claimed)
        return ran

    def run(self, *, parent: int | None = None) -> None:
        """Work until `stop` is called, or until the process `parent` is gone."""
        from .services import oidc, outbox

        log.info("worker %s started", self.worker_id)
        next_housekeeping = next_prune = 0.0
        while not self.stopping.is_set():
            if parent is not None and os.getppid() != parent:
                log.warning("the server that started this worker is gone; stopping")
                break
            try:
                now = time.monotonic()
                if now >= next_housekeeping:
                    outbox.recover_stalled()
                    recover_stalled_tasks()
                    next_housekeeping = now + HOUSEKEEPING_SECONDS
                if now >= next_prune:
                    outbox.prune()
                    oidc.prune()
                    next_prune = now + PRUNE_SECONDS
                self.drain()
                pause = self.interval
            except Exception:  # noqa: BLE001 — a database outage must not end the worker
                log.exception("the worker could not reach the queue; trying again shortly")
                pause = max(self.interval, ERROR_PAUSE_SECONDS)
            close_old_connections()
            self.stopping.wait(pause)
        log.info("worker %s stopped", self.worker_id)

    def stop(self, *_signal) -> None:
        """Finish the task at hand, then leave `run` (a signal handler's signature)."""
        self.stopping.set()

    def _claim(self) -> list:
        """Mark up to BATCH due tasks as running by this worker, and return them (first due first)."""
        from django_tasks_db.models import TaskResultStatus
        from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

        tasks = _ready()
        try:
            with exclusive_transaction(tasks.db):
                claimed = list(tasks.select_for_update(skip_locked=True)[:BATCH])
                now = timezone.now()
                for task in claimed:
                    task.status, task.started_at = TaskResultStatus.RUNNING, now
                    task.worker_ids = [*task.worker_ids, self.worker_id]
                _save(claimed, ["status", "started_at", "worker_ids"])
        except OperationalError as error:
            if is_locked_database_exception(error):  # another worker holds the queue: try later
                return []
            raise
        return claimed

    def _run(self, claimed: list) -> dict:
        """Run the claimed tasks; return {task id: ("ok", value) or ("failed", exception)}.

        The mails are sent together; a task not started when the worker is told to stop has no
        entry (it goes back to the queue).
        """
        from .services import outbox

        done = {}
        mails = [task for task in claimed if task.task_path == outbox.deliver_mail.module_path]
        if mails:
            try:
                ids = [task.args_kwargs["args"][0] for task in mails]
                outcomes = outbox.deliver_many(ids)
            except Exception as error:  # noqa: BLE001 — recorded on each task; the mails stay queued or sending
                done.update((task.pk, ("failed", error)) for task in mails)
            else:
                seen = set()
                for task, mail_id in zip(mails, ids, strict=True):  # a second wake-up for a mail finds it sent
                    done[task.pk] = ("ok", "skipped" if mail_id in seen else outcomes[mail_id])
                    seen.add(mail_id)
        for task in claimed:
            if task.pk in done:
                continue
            if self.stopping.is_set():
                break
            done[task.pk] = _call(task)
        return done

    def _finish(self, claimed: list, done: dict) -> None:
        """Write what became of each claimed task, in one transaction; put back those not run."""
        from django_tasks_db.models import TaskResultStatus

        now = timezone.now()
        for task in claimed:
            outcome = done.get(task.pk)
            if outcome is None:
                task.status, task.started_at = TaskResultStatus.READY, None
                task.worker_ids = task.worker_ids[:-1]
                continue
            state, value = outcome
            task.finished_at = now
            if state == "ok":
                task.status, task.return_value = TaskResultStatus.SUCCESSFUL, value
                task.exception_class_path = task.traceback = ""
            else:
                task.status, task.return_value = TaskResultStatus.FAILED, None
                task.exception_class_path = f"{type(value).__module__}.{type(value).__qualname__}"
                task.traceback = "".join(traceback.format_exception(value))
                log.error("task %s (%s) failed: %s", task.pk, task.task_path, task.traceback.rstrip())
        with transaction.atomic():
            _save(claimed, ["status", "started_at", "worker_ids", "finished_at", "return_value",
                            "exception_class_path", "traceback"])


def recover_stalled_tasks() -> int:
    """Queue again the tasks a worker claimed and never finished (it died); return how many.

    A batch's tasks are claimed before they run, so a worker killed mid-batch leaves some
    "running" that never started. After outbox.STALLED_AFTER they are due again: a mail's task
    finds its mail sent, or sends it (outbox.recover_stalled has queued it again too).
    """
    from django_tasks_db.models import DBTaskResult, TaskResultStatus

    from .services.outbox import STALLED_AFTER

    moved = DBTaskResult.objects.filter(
        backend_name=BACKEND, status=TaskResultStatus.RUNNING, started_at__lt=timezone.now() - STALLED_AFTER,
    ).update(status=TaskResultStatus.READY, started_at=None)
    if moved:
        log.warning("queued %d tasks again that a worker claimed and never finished", moved)
    return moved


def _save(tasks: list, fields: list[str]) -> None:
    """Write `fields` of `tasks`: one UPDATE for all the tasks that share their values (nearly all do)."""
    from django_tasks_db.models import DBTaskResult

    groups = {}
    for task in tasks:
        values = {name: getattr(task, name) for name in fields}
        groups.setdefault(json.dumps(values, sort_keys=True, default=str), (values, []))[1].append(task.pk)
    for values, ids in groups.values():
        DBTaskResult.objects.filter(pk__in=ids).update(**values)


def _ready():
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.ready().filter(backend_name=BACKEND)


def _call(task) -> tuple[str, object]:
    """Run one claimed task as django-tasks-db's worker would; return ("ok", value) or ("failed", error)."""
    from django_tasks_db.compat import TaskContext

    try:
        result = task.task_result
        function = task.task
        if function.takes_context:
            value = function.call(TaskContext(task_result=result), *result.args, **result.kwargs)
        else:
            value = function.call(*result.args, **result.kwargs)
        json.dumps(value)  # a value the result's JSON column cannot hold fails the task, as it would there
    except Exception as error:  # noqa: BLE001 — recorded on the task, never the end of the worker
        return "failed", error
    return "ok", value
