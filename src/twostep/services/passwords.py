"""Passwords: reset by e-mail and change while signed in.

A reset never signs anyone in and never touches the second factor (ASVS 6.4.3; flask-security
#258, Ghost #25806): it sets the password, ends every session and sends the person to the
sign-in page, where a user with 2FA still needs a code. Asking for a reset answers the same,
in the same time, whether or not the login exists (ASVS 6.3.8): the request only counts against
the throttle and queues the login (encrypted); who is mailed is looked up by the worker.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import transaction
from django.db.models import Q
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.translation import gettext_lazy as _
from django_tasks import task

from .. import crypto
from ..core import clock
from ..models import TrustedBrowser, User
from . import audit, notifications, oidc, outbox, throttling
from .accounts import _check_password
from .audit import Origin, Type
from .errors import InvalidInput, ServiceError
from .reauth import confirm_password

log = logging.getLogger("twostep.passwords")

MAX_RECIPIENTS = 5  # one e-mail address may serve a few logins; never mail a whole list
# Stand-ins for the link's parts, replaced by the worker once it made the token.
_UID, _TOKEN = "~uid~", "~token~"


class InvalidResetLink(ServiceError):
    code = "invalid_reset_link"
    default_message = _("This password reset link is not valid: it was used already, has expired, "
                        "or was copied incompletely. Ask for a new one.")


class _TokenGenerator(PasswordResetTokenGenerator):
    """Django's reset tokens, bound to the password hash and the security stamp: single use."""

    key_salt = "twostep.services.passwords"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.password}{user.security_stamp}{timestamp}{user.email}"

    def _now(self):
        return clock.utcnow().replace(tzinfo=None)


tokens = _TokenGenerator()


def reset_link_parts(user: User) -> tuple[str, str]:
    """Return the (uidb64, token) pair of a fresh reset link for `user`."""
    return urlsafe_base64_encode(force_bytes(user.pk)), tokens.make_token(user)


def _reset_keys(login: str, ip: str | None) -> tuple[str, str]:
    address = ip or "unknown"
    wanted = hashlib.sha256(login.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"reset:{address}:{wanted}", f"reset-ip:{address}"


def _recipients(login: str) -> list[User]:
    login = (login or "").strip()
    if not login:
        return []
    rows = User.objects.select_related("account").filter(is_active=True)
    by_login = list(rows.filter(login__caseless=login)[:1])
    if by_login:
        return by_login
    return list(rows.filter(Q(email__iexact=login)).order_by("pk")[:MAX_RECIPIENTS])


def request_reset(login: str, origin: Origin, make_url: Callable[[str, str], str]) -> None:
    """Mail a single-use reset link to the user with this login (or e-mail address), if any.

    The caller answers the same either way. Requests are throttled per address and per
    (address, login) whether the login exists or not, so the throttle reveals nothing either.
    `make_url(uidb64, token)` builds the link the mail carries. The request does the same work
    for a known and an unknown login: the look-up, the audit record, the token and the mail
    happen in the worker (`send_reset_links`), so the answer's timing tells nothing.
    """
    now = clock.utcnow()
    keys = _reset_keys(login or "", origin.ip)
    # Every request counts, as a failure would: a reset mail is something to ration.
    throttling.record_password_failure(throttling.reserve_password_attempt(keys, now))
    with transaction.atomic():
        # The login is kept encrypted (people type passwords into login fields), the link as a pattern.
        outbox.enqueue(send_reset_links, crypto.seal(login or ""), origin.ip, origin.user_agent,
                       make_url(_UID, _TOKEN))


@task()
def send_reset_links(sealed_login: str, ip: str | None, user_agent: str, link_pattern: str) -> int:
    """Mail a reset link to each user a reset request names (run by a worker); return how many."""
    origin = Origin(ip=ip, user_agent=user_agent)
    hours = max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)
    sent = 0
    with transaction.atomic():
        for user in _recipients(crypto.unseal(sealed_login)):
            if not user.email:
                continue
            uid, token = reset_link_parts(user)
            audit.record(Type.PASSWORD_RESET_REQUESTED, user=user, origin=origin)
            notifications.notify(user, "password_reset", valid_hours=hours, ip=ip,
                                 reset_url=link_pattern.replace(_UID, uid).replace(_TOKEN, token))
            sent += 1
    return sent


def user_for_link(uidb64: str, token: str) -> User:
    """Return the user a reset link is for, or raise InvalidResetLink."""
    try:
        uid = int(force_str(urlsafe_base64_decode(uidb64 or "")))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        raise InvalidResetLink() from None
    user = User.objects.select_related("account").filter(pk=uid, is_active=True).first()
    if user is None or not isinstance(token, str) or not tokens.check_token(user, token):
        raise InvalidResetLink()
    return user


def _set_password(user: User, password: str) -> None:
    """Set a new password on a locked row; end every session and remembered browser."""
    user.set_password(password)
    user.security_stamp = User._meta.get_field("security_stamp").default()
    user.save(update_fields=["password", "security_stamp"])
    TrustedBrowser.objects.filter(user=user).delete()
    oidc.revoke_user_tokens(user, reason="password_changed")  # applications sign the person in again


def confirm_reset(uidb64: str, token: str, password: str, origin: Origin) -> User:
    """Set a new password through a reset link. Signs nobody in; 2FA stays as it was.

    The token is checked again on the locked row, so of two concurrent uses only one sets a
    password (the first changes the hash the token is bound to).
    """
    user = user_for_link(uidb64, token)
    _check_password(password or "", user)
    with transaction.atomic():
        user = User.objects.select_for_update().select_related("account").get(pk=user.pk)
        if not tokens.check_token(user, token):
            raise InvalidResetLink()
        _set_password(user, password)
        audit.record(Type.PASSWORD_CHANGED, user=user, origin=origin, via="reset")
        notifications.notify(user, "password_changed", via="reset", ip=origin.ip)
    return user


def change_password(user: User, current: str | None, new: str, origin: Origin) -> User:
    """Change a signed-in user's password with the current one; other sessions end.

    The caller keeps its own session (signin_state.keep_session).
    """
    confirm_password(user, current, origin)
    if not new:
        raise InvalidInput(_("Enter a new password."))
    _check_password(new, user)
    with transaction.atomic():
        user = User.objects.select_for_update().select_related("account").get(pk=user.pk)
        _set_password(user, new)
        audit.record(Type.PASSWORD_CHANGED, user=user, actor=user, origin=origin, via="change")
        notifications.notify(user, "password_changed", via="change", ip=origin.ip)
    return user
