"""E-mail the user about what happens to their account: in their language, as text and HTML.

Each kind has a subject below and two templates, twostep/email/<kind>.txt and <kind>.html.
`notify` queues the mail in the transaction of the action (services/outbox.py) and a worker
sends it, so an action that rolls back mails nobody and no request waits on SMTP; a mail that
cannot be sent is retried, logged, and never undoes or blocks the security action that caused it.
A mail tells what happened, when, from where and, for an admin's or the operator's action, who
and why — never a code or a password: callers pass facts only. The one secret, a reset link,
waits in the queue encrypted.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from ..core import clock
from . import outbox

log = logging.getLogger("twostep.notifications")

SUBJECTS = {
    "two_factor_enabled": _("Two-factor authentication is now on"),
    "two_factor_disabled": _("Two-factor authentication was switched off"),
    "authenticator_replaced": _("A new authenticator was registered"),
    "authenticator_added": _("An authenticator was added to your sign-in"),
    "authenticator_removed": _("An authenticator was removed from your sign-in"),
    "backup_codes_generated": _("New backup codes were made"),
    "backup_code_used": _("A backup code was used"),
    "second_factor_failed": _("Someone entered your password but not the right code"),
    "second_factor_locked": _("Your second factor is locked"),
    # Password reset, required-2FA deadlines and admin recovery passes (services/passwords.py,
    # deadlines.py, recovery_passes.py). "password_reset" is the one mail carrying a secret: the
    # single-use link the person asked for.
    "password_reset": _("Reset your password"),
    "password_changed": _("Your password was changed"),
    "two_factor_deadline_reminder": _("Set up two-factor authentication before the deadline"),
    "recovery_pass_issued": _("Your admin issued a one-time sign-in pass"),
    "recovery_pass_used": _("A one-time sign-in pass was used"),
}
SIGN_IN_BACKUP_CODE_SUBJECT = _("A backup code was used to sign in")
# Who switched 2FA off: the user themselves, their account admin, or the server operator.
ACTORS = ("user", "admin", "operator")
# Facts that are secrets: stored encrypted while the mail waits in the queue.
SECRET_FACTS = {"password_reset": ("reset_url",)}


def notify(user, kind: str, **context) -> None:
    """Queue an e-mail of `kind` to `user`, to be sent once the current transaction commits.

    `context` holds facts for the templates: `ip` (the client address), `by` ("user", "admin"
    or "operator") with `actor` and `reason`, `remaining` and `purpose` for a used backup code.
    """
    if kind not in SUBJECTS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if context.setdefault("by", "user") not in ACTORS:
        raise ValueError(f"unknown actor kind {context['by']!r}")
    if not user.email:
        return
    context.setdefault("actor", user.login)
    # Taken now, not when the mail leaves: the time of the event, from the one clock seam.
    context.update(login=user.login, when=clock.utcnow(),
                   setup_required=_two_factor_required(user))
    outbox.add(user, kind, context, recipient=user.email, language=_language(user),
               secret=SECRET_FACTS.get(kind, ()), expires_at=_expiry(kind))


def message(mail) -> EmailMultiAlternatives:
    """Write the e-mail a queued Mail row stands for."""
    message = _message(mail.kind, outbox.unpack(mail.context), mail.recipient, mail.language)
    # The same Message-ID on every attempt: a mail sent twice after a crash reads as one.
    message.extra_headers["Message-ID"] = (
        f"<twostep.{mail.pk}.{int(mail.created_at.timestamp())}@{DNS_NAME}>")
    return message


def queue_depth() -> int:
    """Return how many mails wait to be sent (for health checks and metrics)."""
    return outbox.queue_depth()


def failed_count() -> int:
    """Return how many mails were given up on after their last attempt (for metrics)."""
    return outbox.failed_count()


def _expiry(kind: str):
    if kind == "password_reset":
        # A reset link mailed after it stopped working would only confuse.
        return timezone.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
    return None


def _two_factor_required(user) -> bool:
    from .accounts import two_factor_required  # accounts imports audit, which is light; keep lazy

    return two_factor_required(user.account)


def _language(user) -> str:
    """Return the user's language if the site offers it, else the site's default."""
    try:
        return translation.get_supported_language_variant(user.language or settings.LANGUAGE_CODE)
    except LookupError:
        return settings.LANGUAGE_CODE


def _message(kind: str, context: dict, recipient: str, language: str) -> EmailMultiAlternatives:
    # Times read in UTC whatever the server's zone; dates and words follow the user's language.
    with translation.override(language), timezone.override(UTC):
        subject = _subject(kind, context)
        context = {**context, "kind": kind, "subject": subject, "issuer": settings.TWOSTEP_ISSUER,
                   **_backup_code_facts(context)}
        text = _tidy(render_to_string(f"twostep/email/{kind}.txt", context))
        html = render_to_string(f"twostep/email/{kind}.html", context)
    message = EmailMultiAlternatives(
        f"[{settings.TWOSTEP_ISSUER}] {subject}", text, to=[recipient],
        # RFC 3834: keeps out-of-office replies and auto-forwarders from answering.
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    return message


def _subject(kind: str, context: dict) -> str:
    if kind == "backup_code_used" and context.get("purpose", "sign_in") == "sign_in":
        return str(SIGN_IN_BACKUP_CODE_SUBJECT)
    return str(SUBJECTS[kind])


def _backup_code_facts(context: dict) -> dict:
    if "remaining" not in context:
        return {}
    from .factors.backup_codes import is_low  # backup_codes imports this module

    return {"low": is_low(context["remaining"]), "purpose": context.get("purpose", "sign_in")}


def _tidy(text: str) -> str:
    """Drop the blank lines and trailing spaces that template tags leave in a text mail."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"
