"""The admin's one-time sign-in pass, used at the second step in place of an authenticator.

Issuing and approving passes is the admins' business (services/recovery_passes.py); this slice
only spends one: an approved, unused, unexpired pass of this user, by one conditional UPDATE.
"""

from __future__ import annotations

from ...models import RecoveryRequest, User
from .. import audit, notifications
from ..audit import Origin, Type
from . import Verified

METHOD = "recovery_pass"
AMR = ("kba",)


def offered(user, facts) -> bool:
    return facts.recovery_pass


def verify(user: User, code, now, origin: Origin) -> Verified | None:
    from ..recovery_passes import digests, normalize

    typed = normalize(code)
    won = typed is not None and RecoveryRequest.objects.filter(
        user=user, kind=RecoveryRequest.Kind.SIGN_IN_PASS, token_digest__in=digests(typed),
        approved_at__isnull=False, used_at__isnull=True, cancelled_at__isnull=True, expires_at__gt=now,
    ).update(used_at=now) == 1
    if not won:
        return None
    audit.record(Type.RECOVERY_PASS_USED, user=user, actor=user, origin=origin)
    notifications.notify(user, "recovery_pass_used", ip=origin.ip)
    return Verified(METHOD, AMR, recovery=True)
