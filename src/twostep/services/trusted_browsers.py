"""Remembered browsers: after a full sign-in, a browser may skip the second step for a while.

The browser keeps a random token in a cookie; the server stores only
sha256(token + ":" + binding), where the binding is an HMAC over the user's security stamp. A
password change or any 2FA change (each rotates the stamp) changes the binding, so every
remembered browser stops matching at once; the rows are also deleted then (a signal below), so
the list never shows a dead one. New backup codes delete the rows too. A routine re-hash of the same
password at sign-in (new hasher parameters) changes neither, so it forgets no browser. The HMAC
is checked under every secret key (crypto.py): rotating the key forgets no browser either.
Remembering never replaces the password (NIST SP 800-63B-4 §5.1): it is checked only after it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils.translation import gettext as _

from .. import crypto
from ..core import clock
from ..models import Account, BackupCodeSet, SecurityEvent, TrustedBrowser, User
from . import audit
from .audit import Origin, Type
from .errors import NotFound

COOKIE_NAME = "twostep_remember"
MAX_DAYS = 90
TOKEN_BYTES = 32
# Fields whose change voids every remembered browser; a password counts when it is really set
# anew (set_password), not when the same password is re-hashed at sign-in.
_BINDING_FIELDS = frozenset({"security_stamp"})


@dataclass(frozen=True)
class Remembered:
    token: str  # for the cookie only; never stored
    expires_at: datetime
    max_age: int  # seconds, for the cookie


def _bindings(user: User) -> list[str]:
    return crypto.secret_digests("twostep.remembered_browser", user.security_stamp)


def _legacy_bindings(user: User) -> list[str]:
    # Before 1.1 the binding took in the password hash, so a re-hash at sign-in voided it. Rows
    # made then still match this way, once, and are moved to the new binding; none live past
    # MAX_DAYS after the upgrade.
    code_set = BackupCodeSet.objects.filter(user=user).values_list("salt", flat=True).first() or ""
    value = f"{user.password}:{user.security_stamp}:{code_set}"
    return crypto.secret_digests("twostep.trusted_browser", value)


def _digest(token: str, binding: str) -> str:
    return hashlib.sha256(f"{token}:{binding}".encode()).hexdigest()


def token_digest(user: User, token: str) -> str:
    """Return what is stored for a token: its hash bound to the user's current factors."""
    return _digest(token, _bindings(user)[0])


def days_allowed(user: User) -> int:
    """Return how many days the user's account lets a browser be remembered (0: not at all)."""
    return min(int(user.account.remember_browser_days or 0), MAX_DAYS)


def remember(user: User, origin: Origin) -> Remembered | None:
    """Remember this browser after a completed second step; None when the account does not allow it.

    Call only once both factors have passed: a token made before the second step would let a
    password alone through next time (scheb/two-factor-bundle #253).
    """
    user = User.objects.select_related("account").get(pk=user.pk)
    days = days_allowed(user)
    if days <= 0:
        return None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = clock.utcnow()
    expires = now + timedelta(days=days)
    with transaction.atomic():
        TrustedBrowser.objects.filter(user=user, expires_at__lte=now).delete()  # tidy up
        TrustedBrowser.objects.create(
            user=user, token_digest=token_digest(user, token), created_at=now, expires_at=expires,
            ip=origin.ip, user_agent=(origin.user_agent or "")[:300],
        )
        audit.record(Type.BROWSER_REMEMBERED, user=user, actor=user, origin=origin, days=days)
    return Remembered(token=token, expires_at=expires, max_age=days * 86400)


def recognise(user: User, token: str | None) -> bool:
    """Tell whether `token` is a live remembered browser of `user`; note its use.

    One indexed lookup by the token's digest under every key: a wrong token costs the same as
    a right one, and nothing is compared byte by byte.
    """
    if not token or not isinstance(token, str) or len(token) > 200:
        return False
    if days_allowed(user) <= 0:
        return False
    now = clock.utcnow()
    candidates = [_digest(token, b) for b in [*_bindings(user), *_legacy_bindings(user)]]
    row = (TrustedBrowser.objects.filter(user=user, token_digest__in=candidates, expires_at__gt=now)
           .only("pk").first())
    if row is None:
        return False
    # Stored again under the newest key, so the browser outlives the next rotation as well.
    TrustedBrowser.objects.filter(pk=row.pk).update(last_used_at=now, token_digest=candidates[0])
    return True


# Events after which every earlier remembered browser no longer matches its binding.
_VOIDING_EVENTS = (
    Type.TWO_FACTOR_ENABLED, Type.TWO_FACTOR_DISABLED, Type.AUTHENTICATOR_REPLACED,
    Type.BACKUP_CODES_GENERATED, Type.ADMIN_DISABLED_TWO_FACTOR, Type.OPERATOR_DISABLED_TWO_FACTOR,
    Type.PASSWORD_CHANGED,
)


def browsers(user: User) -> list[TrustedBrowser]:
    """Return the user's live remembered browsers, newest first.

    Rows the binding already voided are dropped here too, in case the change happened where the
    save signal was not connected (a process that never imported this module).
    """
    if days_allowed(User.objects.select_related("account").get(pk=user.pk)) <= 0:
        return []
    last_change = (SecurityEvent.objects.filter(user=user, type__in=_VOIDING_EVENTS)
                   .order_by("-at").values_list("at", flat=True).first())
    if last_change is not None:
        TrustedBrowser.objects.filter(user=user, created_at__lt=last_change).delete()
    return list(TrustedBrowser.objects.filter(user=user, expires_at__gt=clock.utcnow())
                .order_by("-created_at", "-pk"))


def _browser_id(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotFound(_("No such remembered browser.")) from None


def forget(user: User, browser_id, origin: Origin) -> None:
    """Forget one remembered browser of the user; another user's is "not found"."""
    with transaction.atomic():
        deleted, _rows = TrustedBrowser.objects.filter(pk=_browser_id(browser_id), user=user).delete()
        if not deleted:
            raise NotFound(_("No such remembered browser."))
        audit.record(Type.BROWSERS_FORGOTTEN, user=user, actor=user, origin=origin, count=1)


def forget_all(user: User, origin: Origin) -> int:
    """Forget every remembered browser of the user; return how many there were."""
    with transaction.atomic():
        deleted, _rows = TrustedBrowser.objects.filter(user=user).delete()
        audit.record(Type.BROWSERS_FORGOTTEN, user=user, actor=user, origin=origin, count=deleted)
    return deleted


def apply_policy(account: Account) -> None:
    """Hold existing browsers to a new account policy: none when off, none longer than allowed."""
    rows = TrustedBrowser.objects.filter(user__account=account)
    days = min(int(account.remember_browser_days or 0), MAX_DAYS)
    if days <= 0:
        rows.delete()
        return
    limit = F("created_at") + timedelta(days=days)
    rows.filter(expires_at__gt=limit).update(expires_at=limit)


def forget_on_new_codes(user: User) -> None:
    """Forget the user's remembered browsers because a new set of backup codes was made."""
    TrustedBrowser.objects.filter(user=user).delete()


# A password or stamp change voids the binding already; deleting the rows too keeps the list
# honest, and covers a password set outside the services (which rotate the stamp). Django
# re-hashes at sign-in with `_password` cleared: that is no password change.
# (QuerySet.update() skips signals; the binding still holds then.)

@receiver(pre_save, sender=User, dispatch_uid="twostep.trusted_browsers.pre_save")
def _note_binding_change(sender, instance, update_fields=None, raw=False, **kwargs):
    instance._twostep_binding_changed = False
    if raw or instance.pk is None:
        return
    new_password = getattr(instance, "_password", None) is not None
    watched = _BINDING_FIELDS | ({"password"} if new_password else set())
    if update_fields is not None and not (watched & set(update_fields)):
        return
    old = User.objects.filter(pk=instance.pk).values(*watched).first()
    if old is not None and any(old[f] != getattr(instance, f) for f in watched):
        instance._twostep_binding_changed = True


@receiver(post_save, sender=User, dispatch_uid="twostep.trusted_browsers.post_save")
def _drop_on_binding_change(sender, instance, created=False, raw=False, **kwargs):
    if getattr(instance, "_twostep_binding_changed", False):
        TrustedBrowser.objects.filter(user=instance).delete()
        instance._twostep_binding_changed = False
