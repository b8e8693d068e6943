"""Record security events: who did what to whom, when, from where."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from .. import metrics
from ..core import clock
from ..models import SecurityEvent
from ..prepared import PreparedInsert
from .user_agents import COMMAND_LINE

log = logging.getLogger("twostep.audit")
# Every security event is one row: its INSERT compiled once (prepared.py).
_INSERT_EVENT = PreparedInsert(SecurityEvent)
Type = SecurityEvent.Type


@dataclass(frozen=True)
class Origin:
    """Where a request came from: the client address and user agent (or the command line)."""

    ip: str | None = None
    user_agent: str = ""
    actor_label: str = ""

    @classmethod
    def command_line(cls) -> Origin:
        return cls(ip=None, user_agent=COMMAND_LINE, actor_label="operator")


def record(type: str, *, user=None, actor=None, origin: Origin | None = None, account=None,
           **detail) -> SecurityEvent:
    """Store one event; `detail` must never hold a secret (codes, passwords, keys)."""
    origin = origin or Origin()
    event = _INSERT_EVENT.create(
        type=type,
        at=clock.utcnow(),
        account=account or (user.account if user is not None else None),
        user=user,
        actor=actor,
        actor_label=(actor.login if actor is not None else origin.actor_label)[:150],
        ip=origin.ip,
        user_agent=(origin.user_agent or "")[:300],
        detail=detail,
    )
    log.info("event=%s user=%s actor=%s ip=%s", type, getattr(user, "pk", None),
             event.actor_label or "-", origin.ip or "-")
    if settings.TWOSTEP_METRICS:
        metrics.count_event(type, detail)  # every security event passes here: the one place to count
    return event
