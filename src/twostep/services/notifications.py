"""E-mail the user about what happens to their account, in their language.

Mail goes out after the transaction commits; a mail that cannot be sent is logged and never
undoes or blocks the security action that caused it (SECURITY.md, "Fail closed").
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

log = logging.getLogger("twostep.notifications")


def _subjects():
    return {
        "two_factor_enabled": _("Two-factor authentication is now on"),
        "two_factor_disabled": _("Two-factor authentication was switched off"),
        "authenticator_replaced": _("A new authenticator was registered"),
        "backup_codes_generated": _("New backup codes were made"),
        "backup_code_used": _("A backup code was used"),
        "second_factor_failed": _("Someone entered your password but not the right code"),
        "second_factor_locked": _("Your second factor is locked"),
    }


def _body(kind: str, context: dict) -> str:
    lines = {
        "two_factor_enabled": _("Two-factor authentication was switched on for your sign-in {login}."),
        "two_factor_disabled": _("Two-factor authentication was switched off for {login} by {actor}. Reason: {reason}"),
        "authenticator_replaced": _("A new authenticator app was registered for {login}. The old one no longer works."),
        "backup_codes_generated": _("New backup codes were made for {login}. The old codes no longer work."),
        "backup_code_used": _("One of the backup codes of {login} was used. Backup codes left: {remaining}."),
        "second_factor_failed": _("Someone entered the right password for {login} but a wrong second-factor code. If it was not you, change your password."),
        "second_factor_locked": _("Too many wrong codes were entered for {login}; the second factor is locked. Ask your account admin to let you back in."),
    }[kind]
    text = lines.format(**context)
    when = timezone.localtime().strftime("%Y-%m-%d %H:%M %Z")
    footer = _("Time: {when}. From: {ip}.").format(when=when, ip=context.get("ip") or "-")
    warning = _("If this was not you, contact your account admin at once.")
    return f"{text}\n\n{footer}\n{warning}\n\n— {settings.TWOSTEP_ISSUER}\n"


def notify(user, kind: str, **context) -> None:
    """Queue an e-mail of `kind` to `user` for when the current transaction commits."""
    if not user.email:
        return
    context.setdefault("login", user.login)
    context.setdefault("actor", user.login)
    context.setdefault("reason", "-")

    def send():
        try:
            with translation.override(user.language or settings.LANGUAGE_CODE):
                subject = f"[{settings.TWOSTEP_ISSUER}] {_subjects()[kind]}"
                body = _body(kind, context)
            send_mail(subject, body, None, [user.email])
        except Exception:  # noqa: BLE001 — a mail never breaks the action that caused it
            log.exception("could not send %s mail to user %s", kind, user.pk)

    transaction.on_commit(send)
