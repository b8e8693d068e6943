"""Required 2FA with a deadline: who is reminded, when, and what the banner says.

The rule itself ("is 2FA required now") is accounts.two_factor_required. Before the deadline a
user without 2FA sees a banner and gets two reminders, 7 days and 1 day before. A reminder is
queued once: the Notice ledger's unique (user, kind, key) row is written in the same transaction
as the audit event and the queued mail, so a second run (or a concurrent one) queues nothing;
the mail queue then sends each mail once (services/outbox.py).
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from ..core import clock
from ..models import Account, Notice, User
from . import audit, notifications
from .accounts import two_factor_required
from .audit import Origin, Type
from .factors import enabled, enabled_q

log = logging.getLogger("twostep.deadlines")

KIND = "two_factor_deadline_reminder"
REMINDER_DAYS = (7, 1)  # days before the deadline; the nearer one wins if a run was missed


def pending_deadline(user: User, today: date | None = None) -> date | None:
    """Return the deadline to show a user who has no 2FA yet, or None (no banner)."""
    account = user.account
    if account.require_two_factor_from is None or two_factor_required(account, today):
        return None
    if enabled(user):
        return None
    return account.require_two_factor_from


def _due_reminder(deadline: date, today: date) -> int | None:
    """Return which reminder (7 or 1) is due today, or None."""
    days_left = (deadline - today).days
    if days_left <= 0:
        return None
    due = [days for days in REMINDER_DAYS if days_left <= days]
    return min(due) if due else None


def send_due_reminders(now: datetime | None = None) -> int:
    """Queue every reminder due at `now` that was not queued yet; return how many were queued."""
    now = now or clock.utcnow()
    today = now.date()
    sent = 0
    accounts = Account.objects.filter(require_two_factor=False, require_two_factor_from__gt=today)
    for account in accounts:
        days = _due_reminder(account.require_two_factor_from, today)
        if days is None:
            continue
        key = f"{account.require_two_factor_from.isoformat()}:{days}"
        users = (User.objects.select_related("account")
                 .filter(account=account, is_active=True)
                 .exclude(email="")
                 .exclude(enabled_q())
                 .exclude(Exists(Notice.objects.filter(user=OuterRef("pk"), kind=KIND, key=key))))
        for user in users.iterator():
            if _remind(user, key, days, account.require_two_factor_from, now):
                sent += 1
    log.info("queued %d deadline reminders", sent)
    return sent


def _remind(user: User, key: str, days: int, deadline: date, now: datetime) -> bool:
    try:
        with transaction.atomic():
            Notice.objects.create(user=user, kind=KIND, key=key, sent_at=now)
            audit.record(Type.REMINDER_SENT, user=user, origin=Origin.command_line(),
                         deadline=deadline.isoformat(), days_before=days)
            notifications.notify(user, KIND, deadline=deadline, days_before=days)
    except IntegrityError:  # another run sent it a moment ago
        return False
    return True
