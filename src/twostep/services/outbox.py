"""The mail queue: one Mail row per e-mail, sent once by a worker, retried with growing delays.

`add` writes the row in the caller's transaction and puts a `deliver_mail` task on the task queue
(django-tasks). With the database backend the task row is written in that same transaction, so the
action, its mail and the wake-up for the worker commit or roll back together; with any other
backend (the immediate one of the test suite) the task is enqueued when the transaction commits.
Either way an action that rolls back mails nobody, and no request waits on SMTP.

Sending is idempotent. `deliver_many` claims the rows still queued (queued -> sending) in one
transaction, so of any number of workers or duplicate tasks one sends each mail, sends them over
one connection to the mail server, and marks those SMTP accepted as sent together at the end.
One window remains: a worker that dies after SMTP accepted a message and before the rows say so
leaves it "sending" (with the rest of its batch); `recover_stalled` queues it again after
STALLED_AFTER and it may then arrive twice, with the same Message-ID (which many mail stores fold
into one). The Mail table is the truth; a task is only a wake-up, and a lost one is made again by
`recover_stalled`.
"""

from __future__ import annotations

import logging
import random
import smtplib
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy
from django_tasks import task
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from .. import crypto
from ..models import Mail

log = logging.getLogger("twostep.notifications")

Status = Mail.Status
# A claim older than this is a worker that died mid-send (SMTP gives up after EMAIL_TIMEOUT).
STALLED_AFTER = timedelta(minutes=10)
BACKOFF_FACTOR = 3
MAX_DELAY = timedelta(hours=12)


def enqueue(task_, *args, run_after: datetime | None = None) -> None:
    """Put `task_(*args)` on the queue so that it stands or falls with the current transaction."""
    if run_after is not None:
        if not task_.get_backend().supports_defer:
            return  # the immediate backend cannot wait; recover_stalled picks the mail up later
        task_ = task_.using(run_after=run_after)
    if isinstance(task_.get_backend(), DatabaseBackend):
        # The queue is a table of this database: the task row commits with the action or not at all.
        task_.enqueue(*args)
    else:
        transaction.on_commit(lambda: task_.enqueue(*args))


def add(user, kind: str, facts: dict, *, recipient: str, language: str, secret: tuple[str, ...] = (),
        expires_at: datetime | None = None) -> Mail:
    """Queue a mail of `kind` to `recipient`; the facts named in `secret` are stored encrypted."""
    mail = Mail.objects.create(
        user=user, kind=kind, recipient=recipient, language=language, created_at=timezone.now(),
        context={name: _pack(value, sealed=name in secret) for name, value in facts.items()},
        expires_at=expires_at,
    )
    enqueue(deliver_mail, mail.pk)
    return mail


@task()
def deliver_mail(mail_id: int) -> str:
    """Send one queued mail (run by a worker); return what became of it."""
    return deliver(mail_id)


def deliver(mail_id: int) -> str:
    """Send the mail unless it was sent, failed or is being sent; retry it later if SMTP fails."""
    return deliver_many([mail_id])[mail_id]


def deliver_many(mail_ids) -> dict[int, str]:
    """Send the queued mails among `mail_ids` over one connection to the mail server; say what became of each.

    The mails still queued are claimed in one transaction (of any number of workers or
    duplicate tasks, one sends each); those SMTP accepted are marked sent together at the end,
    so a worker that dies meanwhile leaves them "sending" for `recover_stalled` (they may then
    arrive twice, with the same Message-ID). Any other id is "skipped".
    """
    outcomes = dict.fromkeys(mail_ids, "skipped")
    now = timezone.now()
    mails = _claim(list(outcomes), now)
    if not mails:
        return outcomes
    from . import notifications  # it imports this module to queue its mails

    sent, smtp = [], get_connection()
    try:
        for mail in mails:
            if mail.expires_at is not None and mail.expires_at <= now:
                _give_up(mail, "expired before it could be sent")
                outcomes[mail.pk] = Status.FAILED
                continue
            try:
                message = notifications.message(mail)
                smtp.open()  # kept open for the next mail (a backend closes a connection it opened itself)
                smtp.send_messages([message])
            except Exception as error:  # noqa: BLE001 — any failure is retried or recorded, never lost
                smtp.close()  # the next mail starts on a fresh connection
                outcomes[mail.pk] = _failed(mail, error)
                continue
            sent.append(mail)
            outcomes[mail.pk] = Status.SENT
    finally:
        smtp.close()
        if sent:
            Mail.objects.filter(pk__in=[mail.pk for mail in sent], status=Status.SENDING).update(
                status=Status.SENT, sent_at=timezone.now(), last_error="")
    for mail in sent:
        log.info("sent %s mail to user %s", mail.kind, mail.user_id)
    return outcomes


def _claim(mail_ids: list[int], now: datetime) -> list[Mail]:
    """Mark the still-queued mails of `mail_ids` as being sent, one more attempt each; return them."""
    with transaction.atomic():
        mine = list(Mail.objects.select_for_update(skip_locked=True)
                    .filter(pk__in=mail_ids, status=Status.QUEUED).values_list("pk", flat=True))
        if not mine:
            return []
        Mail.objects.filter(pk__in=mine).update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
        return list(Mail.objects.filter(pk__in=mine).order_by("pk"))


def retry_delay(attempts: int) -> timedelta:
    """Return the wait after the `attempts`-th failed attempt: 1 min, 3, 9, 27 … up to 12 hours."""
    seconds = settings.TWOSTEP_MAIL_RETRY_SECONDS * BACKOFF_FACTOR ** max(0, attempts - 1)
    # A little jitter, so mails that failed together do not all come back in the same second.
    return min(timedelta(seconds=seconds * (1 + random.random() / 10)), MAX_DELAY)


def _failed(mail: Mail, error: Exception) -> str:
    reason = _describe(error)
    if _permanent(error) or mail.attempts >= settings.TWOSTEP_MAIL_ATTEMPTS:
        _give_up(mail, reason)
        return Status.FAILED
    later = timezone.now() + retry_delay(mail.attempts)
    with transaction.atomic():
        Mail.objects.filter(pk=mail.pk, status=Status.SENDING).update(
            status=Status.QUEUED, next_attempt_at=later, last_error=reason)
        enqueue(deliver_mail, mail.pk, run_after=later)
    log.warning("could not send %s mail to user %s (mail %s, attempt %d of %d): %s; trying again at %s",
                mail.kind, mail.user_id, mail.pk, mail.attempts, settings.TWOSTEP_MAIL_ATTEMPTS, reason,
                later.isoformat(timespec="seconds"))
    return "retry"


def _give_up(mail: Mail, reason: str) -> None:
    Mail.objects.filter(pk=mail.pk, status=Status.SENDING).update(status=Status.FAILED, last_error=reason)
    log.error("could not send %s mail to user %s (mail %s, given up after %s): %s",
              mail.kind, mail.user_id, mail.pk,
              "1 attempt" if mail.attempts == 1 else f"{mail.attempts} attempts", reason)


def _permanent(error: Exception) -> bool:
    """Tell whether SMTP said no for good (5xx for the recipient or the message), as MTAs read it.

    A refused login (535) is the operator's to fix, so it is retried like a lost connection.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return False
    return isinstance(error, smtplib.SMTPResponseException) and 500 <= error.smtp_code < 600


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


# Housekeeping (the worker runs these every minute) --------------------------------------------

def recover_stalled(now: datetime | None = None) -> int:
    """Queue again mails a worker claimed and never finished, and overdue ones; return how many."""
    now = now or timezone.now()
    cutoff = now - STALLED_AFTER
    stalled = Mail.objects.filter(status=Status.SENDING, claimed_at__lt=cutoff)
    overdue = Mail.objects.filter(status=Status.QUEUED).filter(
        Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, created_at__lt=cutoff))
    count = 0
    for mail_id in list(stalled.values_list("pk", flat=True)) + list(overdue.values_list("pk", flat=True)):
        with transaction.atomic():
            moved = Mail.objects.filter(pk=mail_id).filter(
                Q(status=Status.SENDING, claimed_at__lt=cutoff) | Q(status=Status.QUEUED)
            ).update(status=Status.QUEUED, next_attempt_at=now)
            if moved:
                enqueue(deliver_mail, mail_id)
                count += moved
    if count:
        log.warning("queued %d stalled or overdue mails again (one that was being sent may arrive twice)",
                    count)
    return count


def prune(now: datetime | None = None) -> int:
    """Delete sent and failed mails, and finished queue entries, older than TWOSTEP_MAIL_KEEP_DAYS."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.TWOSTEP_MAIL_KEEP_DAYS)
    mails, _ = Mail.objects.filter(status__in=[Status.SENT, Status.FAILED], created_at__lt=cutoff).delete()
    tasks, _ = DBTaskResult.objects.exclude(status="READY").filter(enqueued_at__lt=cutoff).delete()
    return mails + tasks


# What the operator and the metrics see --------------------------------------------------------

def counts() -> dict[str, int]:
    """Return how many mails are in each status."""
    found = dict(Mail.objects.values_list("status").order_by().annotate(n=Count("pk")))
    return {status: found.get(status, 0) for status in Status.values}


def troubled(limit: int = 50) -> list[Mail]:
    """Return the mails being retried (next attempt first), then up to `limit` given up (newest first)."""
    retrying = Mail.objects.filter(status=Status.QUEUED, attempts__gt=0).select_related("user")
    failed = Mail.objects.filter(status=Status.FAILED).select_related("user").order_by("-created_at")
    return [*retrying.order_by("next_attempt_at"), *failed[:limit]]


def queue_depth() -> int:
    """Return how many mails wait to be sent (queued or being sent)."""
    return Mail.objects.filter(status__in=[Status.QUEUED, Status.SENDING]).count()


def failed_count() -> int:
    """Return how many mails were given up on (kept TWOSTEP_MAIL_KEEP_DAYS for the operator)."""
    return Mail.objects.filter(status=Status.FAILED).count()


def retry_failed() -> int:
    """Queue every failed mail again with a fresh set of attempts; return how many."""
    count = 0
    for mail_id in Mail.objects.filter(status=Status.FAILED).values_list("pk", flat=True):
        with transaction.atomic():
            if Mail.objects.filter(pk=mail_id, status=Status.FAILED).update(
                    status=Status.QUEUED, attempts=0, next_attempt_at=timezone.now()):
                enqueue(deliver_mail, mail_id)
                count += 1
    return count


# Facts as JSON ------------------------------------------------------------------------------

def _pack(value, *, sealed: bool = False):
    if sealed:
        return {"$sealed": crypto.seal(str(value))}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Promise):
        # A lazy translation (gettext_lazy) is kept as its message id, to be read in the recipient's
        # language when the mail is written.
        return {"$gettext": str(value._args[0])}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"a mail fact must be plain data, not {type(value).__name__}")


def unpack(context: dict) -> dict:
    """Return the facts of a Mail row as the templates want them."""
    return {name: _unpack(value) for name, value in context.items()}


def _unpack(value):
    if not isinstance(value, dict):
        return value
    (tag, text), = value.items()
    return {"$sealed": crypto.unseal, "$datetime": datetime.fromisoformat, "$date": date.fromisoformat,
            "$gettext": gettext_lazy}[tag](text)
