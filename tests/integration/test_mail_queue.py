"""The mail queue: no request waits on SMTP, failures are retried with growing delays, each mail
is sent once — also by two workers at once on PostgreSQL. The production database queue and a
real SMTP server (aiosmtpd) throughout."""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from twostep.models import Mail
from twostep.services import notifications, outbox, passwords
from twostep.services.factors import backup_codes
from twostep.worker import Worker, recover_stalled_tasks

from ..conftest import ORIGIN, PASSWORD
from .mail_queue import database_queue_fixture, run_queued_tasks, waiting_tasks  # noqa: F401
from .test_api_support import api_fixture  # noqa: F401
from .test_notifications_smtp import free_port, inbox_fixture, smtp_server_fixture  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("database_queue")]

LINK = "http://testserver/password-reset/{uid}/{token}"


def make_url(uid, token):
    return LINK.format(uid=uid, token=token)


@pytest.fixture
def hanging_smtp_server(settings):
    """A port that takes connections and never says a word: SMTP waits for its greeting in vain."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        settings.EMAIL_PORT = listener.getsockname()[1]
        settings.EMAIL_TIMEOUT = 1
        yield listener


def recovers(settings, smtp_server) -> None:
    settings.EMAIL_PORT = smtp_server.port
    smtp_server.handler.refuse = False


# No request waits on SMTP --------------------------------------------------------------------

def test_reset_answers_while_the_mail_server_hangs_and_the_mail_waits(api, member, inbox, settings,
                                                                       smtp_server, hanging_smtp_server):
    started = time.monotonic()
    response = api.post("/auth/password-reset", {"login": "member"})
    answered = time.monotonic() - started
    assert response.status_code == 200
    # The answer came back before anything was sent: the request is still waiting in the queue.
    assert waiting_tasks() == 1 and Mail.objects.count() == 0 and inbox.mails == []
    assert answered < settings.EMAIL_TIMEOUT  # a request that touched the hanging server would wait this long

    run_queued_tasks()  # the worker looks up the user, queues the mail, and meets the hanging server
    mail = Mail.objects.get()
    assert (mail.kind, mail.status, mail.attempts) == ("password_reset", "queued", 1)
    assert "timed out" in mail.last_error and inbox.mails == []

    recovers(settings, smtp_server)
    run_queued_tasks(later=timedelta(minutes=2))
    assert inbox.only().subject == "[Acme] Reset your password"
    assert Mail.objects.get().status == "sent"


def test_an_action_answers_while_a_worker_is_stuck_on_the_mail_server(enrolled, inbox, hanging_smtp_server):
    member = enrolled.user
    worker = threading.Thread(target=lambda: (run_queued_tasks(), connection.close()))
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while Mail.objects.filter(status="sending").count() == 0:  # the worker is now inside SMTP
            assert time.monotonic() < deadline
            time.sleep(0.01)
        generated = backup_codes.generate(member, PASSWORD, ORIGIN)  # commits while SMTP hangs
        assert len(generated.codes) == 10
        assert Mail.objects.filter(status="sending").count() == 1  # the stuck mail is still in SMTP
    finally:
        worker.join()
    # Every attempt met the hanging server and waits for its retry; none is lost or stuck.
    assert Mail.objects.filter(kind="backup_codes_generated", status="queued").count() == 1
    assert not Mail.objects.exclude(status="queued").exists() and inbox.mails == []


# Retries with growing delays ------------------------------------------------------------------

def test_refused_then_temporarily_failed_then_delivered_once(member, inbox, settings, smtp_server):
    settings.EMAIL_PORT = free_port()  # nothing listens: connection refused
    notifications.notify(member, "backup_codes_generated", ip=ORIGIN.ip)
    run_queued_tasks()
    mail = Mail.objects.get()
    first_wait = mail.next_attempt_at - timezone.now()
    assert (mail.status, mail.attempts) == ("queued", 1) and "ConnectionRefusedError" in mail.last_error
    assert timedelta(seconds=55) < first_wait < timedelta(seconds=70)  # 60 s, with a little jitter

    assert run_queued_tasks() == 0  # not due yet: nothing is tried
    assert Mail.objects.get().attempts == 1

    settings.EMAIL_PORT = smtp_server.port
    smtp_server.handler.refuse = "451 4.3.0 Try again later"  # the server is up but not taking mail yet
    run_queued_tasks(later=timedelta(seconds=70))
    mail = Mail.objects.get()
    assert (mail.status, mail.attempts) == ("queued", 2) and "451" in mail.last_error
    assert mail.next_attempt_at - timezone.now() > timedelta(seconds=160)  # three times the first wait

    recovers(settings, smtp_server)
    run_queued_tasks(later=timedelta(seconds=200))
    assert len(inbox.mails) == 1 and Mail.objects.get().status == "sent"
    run_queued_tasks(later=timedelta(days=1))
    assert len(inbox.mails) == 1  # nothing is left to send again


def test_after_the_last_attempt_the_mail_stays_failed_counted_and_can_be_retried(member, inbox, settings,
                                                                                   smtp_server):
    settings.TWOSTEP_MAIL_ATTEMPTS = 2
    settings.EMAIL_PORT = free_port()
    notifications.notify(member, "backup_codes_generated", ip=ORIGIN.ip)
    run_queued_tasks()
    assert (notifications.queue_depth(), notifications.failed_count()) == (1, 0)
    run_queued_tasks(later=timedelta(hours=1))
    mail = Mail.objects.get()
    assert (mail.status, mail.attempts) == ("failed", 2)
    assert (notifications.queue_depth(), notifications.failed_count()) == (0, 1)
    assert run_queued_tasks(later=timedelta(days=1)) == 0  # no more attempts on its own

    recovers(settings, smtp_server)
    assert outbox.retry_failed() == 1  # the operator fixed the mail server: `twostep mail retry`
    run_queued_tasks()
    assert len(inbox.mails) == 1 and notifications.failed_count() == 0


def test_a_reset_link_not_sent_before_it_expires_is_given_up(member, inbox, settings, smtp_server):
    settings.EMAIL_PORT = free_port()
    passwords.request_reset("member", ORIGIN, make_url)
    run_queued_tasks()
    assert Mail.objects.get().status == "queued"
    Mail.objects.update(expires_at=timezone.now() - timedelta(seconds=1))  # the link's hour has passed
    recovers(settings, smtp_server)
    run_queued_tasks(later=timedelta(hours=2))
    assert inbox.mails == []
    assert Mail.objects.get().last_error == "expired before it could be sent"


# Sent once -------------------------------------------------------------------------------------

def test_duplicate_tasks_send_a_mail_once(member, inbox):
    notifications.notify(member, "backup_codes_generated", ip=ORIGIN.ip)
    mail = Mail.objects.get()
    outbox.enqueue(outbox.deliver_mail, mail.pk)  # a second wake-up for the same mail
    assert run_queued_tasks() == 2
    assert len(inbox.mails) == 1


def test_a_mail_left_sending_by_a_dead_worker_is_sent_again_with_the_same_message_id(member, inbox):
    notifications.notify(member, "backup_codes_generated", ip=ORIGIN.ip)
    run_queued_tasks()
    first = inbox.only().message["Message-ID"]
    # A worker that died after SMTP accepted the mail and before marking it sent leaves this:
    Mail.objects.update(status="sending", claimed_at=timezone.now() - outbox.STALLED_AFTER * 2)
    inbox.clear()
    assert outbox.recover_stalled() == 1
    run_queued_tasks()
    assert inbox.only().message["Message-ID"] == first  # mail stores fold the second copy into the first
    assert outbox.recover_stalled() == 0


def test_an_action_that_rolls_back_queues_nothing(member, inbox):
    with pytest.raises(RuntimeError), transaction.atomic():
        notifications.notify(member, "backup_codes_generated", ip=ORIGIN.ip)
        raise RuntimeError("the action failed after queueing its mail")
    assert Mail.objects.count() == 0 and waiting_tasks() == 0


@pytest.mark.postgres
def test_two_workers_at_once_send_each_mail_once(postgres_only, make_user, inbox):
    users = [make_user(f"user{n}") for n in range(8)]
    for user in users:
        for kind in ("backup_codes_generated", "password_changed", "two_factor_enabled"):
            notifications.notify(user, kind, ip=ORIGIN.ip)
    for mail_id in Mail.objects.values_list("pk", flat=True)[:10]:
        outbox.enqueue(outbox.deliver_mail, mail_id)  # some mails with two wake-ups, to race for
    start, ran = threading.Barrier(2), []

    def work():
        try:
            start.wait()
            ran.append(run_queued_tasks())
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(ran) == 24 + 10 and all(ran)  # both workers took part
    ids = [m.message["Message-ID"] for m in inbox.mails]
    assert len(ids) == 24 and len(set(ids)) == 24
    assert Mail.objects.filter(status="sent").count() == 24


# A burst: mails in batches ---------------------------------------------------------------------

@task()
def fails_on_purpose(note: str) -> str:
    raise RuntimeError(note)


@task()
def stops_the_worker() -> str:
    RUNNING[0].stop()  # as SIGTERM would, while this task runs
    return "stopping"


@task()
def quiet_task(n: int) -> int:
    return n


RUNNING = []


def test_a_burst_of_mails_goes_out_over_two_connections_in_a_few_writes(make_user, inbox):
    users = [make_user(f"user{n}") for n in range(10)]
    for user in users:
        for kind in ("backup_codes_generated", "password_changed", "two_factor_enabled"):
            notifications.notify(user, kind, ip=ORIGIN.ip)
    with CaptureQueriesContext(connection) as queries:
        assert run_queued_tasks() == 30
    assert len(inbox.mails) == 30 and Mail.objects.filter(status="sent").count() == 30
    assert inbox.connections() == 2  # 25 mails a batch, each batch over one SMTP connection
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]
    assert len(writes) <= 8, writes  # claim the tasks, claim the mails, mark them sent, finish: per batch
    with CaptureQueriesContext(connection) as idle:
        assert run_queued_tasks() == 0
    assert [q["sql"].split()[0].upper() for q in idle] == ["SELECT"]  # nothing due: one read, no write lock


def test_a_mail_refused_in_a_burst_waits_for_its_retry_and_the_others_go(make_user, inbox, smtp_server):
    first, second, third = (make_user(name) for name in ("first", "second", "third"))
    smtp_server.handler.refused[second.email] = "451 4.3.0 Try again later"
    for user in (first, second, third):
        notifications.notify(user, "backup_codes_generated", ip=ORIGIN.ip)
    run_queued_tasks()
    assert sorted(m.recipients[0] for m in inbox.mails) == [first.email, third.email]
    refused = Mail.objects.get(recipient=second.email)
    assert (refused.status, refused.attempts) == ("queued", 1) and "451" in refused.last_error

    smtp_server.handler.refused = {}
    run_queued_tasks(later=timedelta(seconds=70))
    assert sorted(m.recipients[0] for m in inbox.mails) == sorted(u.email for u in (first, second, third))


def test_a_failing_task_is_recorded_and_the_rest_of_its_batch_runs(member, inbox):
    notifications.notify(member, "backup_codes_generated", ip=ORIGIN.ip)
    failing = fails_on_purpose.enqueue("the task broke")
    after = quiet_task.enqueue(7)
    assert run_queued_tasks() == 3
    assert len(inbox.mails) == 1
    failed = DBTaskResult.objects.get(pk=failing.id)
    assert failed.status == "FAILED" and failed.exception_class_path == "builtins.RuntimeError"
    assert "the task broke" in failed.traceback
    done = DBTaskResult.objects.get(pk=after.id)
    assert (done.status, done.return_value) == ("SUCCESSFUL", 7)


def test_a_worker_told_to_stop_puts_back_the_tasks_it_had_not_started(inbox):
    stopper = stops_the_worker.enqueue()
    later = [quiet_task.enqueue(n) for n in range(3)]
    worker = Worker(interval=0)
    RUNNING[:] = [worker]
    assert worker.drain() == 4  # claimed together; the stop came while the first ran
    assert DBTaskResult.objects.get(pk=stopper.id).status == "SUCCESSFUL"
    back = DBTaskResult.objects.filter(pk__in=[t.id for t in later])
    assert {(t.status, t.started_at, tuple(t.worker_ids)) for t in back} == {("READY", None, ())}
    assert run_queued_tasks() == 3  # another worker (or this one, started again) runs them
    assert sorted(DBTaskResult.objects.filter(pk__in=[t.id for t in later]).values_list("return_value", flat=True)) \
        == [0, 1, 2]


def test_tasks_a_dead_worker_claimed_and_never_ran_are_run_later(inbox):
    claimed = [quiet_task.enqueue(n) for n in range(2)]
    # A worker killed mid-batch leaves its claimed tasks "running", never started:
    DBTaskResult.objects.update(status="RUNNING", started_at=timezone.now() - outbox.STALLED_AFTER / 2,
                                worker_ids=["dead"])
    assert recover_stalled_tasks() == 0  # it may still be at work
    assert run_queued_tasks() == 0
    DBTaskResult.objects.update(started_at=timezone.now() - outbox.STALLED_AFTER * 2)
    assert recover_stalled_tasks() == 2
    assert run_queued_tasks() == 2
    assert sorted(DBTaskResult.objects.filter(pk__in=[t.id for t in claimed]).values_list("return_value", flat=True)) \
        == [0, 1]


# The reset link in the queue, and the request's timing ------------------------------------------

def test_the_queue_holds_neither_the_login_nor_the_reset_link(member, inbox):
    passwords.request_reset("member", ORIGIN, make_url)
    request = DBTaskResult.objects.get()
    assert "member" not in str(request.args_kwargs)
    run_queued_tasks()  # the reset request makes the link and queues the mail; it is sent next
    uid, token = re.search(r"/password-reset/([^/\s]+)/([^/\s]+)", inbox.only().text).groups()
    stored = str(list(Mail.objects.values_list("context", flat=True))) + str(
        list(DBTaskResult.objects.values_list("args_kwargs", flat=True)))
    assert token not in stored
    assert passwords.user_for_link(uid, token) == member


def test_reset_request_does_the_same_work_for_a_known_and_an_unknown_login(member):
    """ASVS 6.3.8: the same statements for either, so the answer's timing tells nothing."""
    def statements(login):
        with CaptureQueriesContext(connection) as queries:
            passwords.request_reset(login, ORIGIN.__class__(ip=f"198.51.100.{len(login)}"), make_url)
        # Values differ (keys, ciphertext); the statements themselves must not.
        return [re.sub(r"'[^']*'|\bs\d+_x\d+\b|\b\d+\b", "?", q["sql"]) for q in queries.captured_queries]

    assert statements("member") == statements("nobody-here")
