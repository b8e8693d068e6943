"""Authenticator apps (TOTP, RFC 6238): enrol with a QR code and a first code, then verify codes.

A code is good once: the newest accepted time step is stored on the authenticator's row and the
UPDATE that stores a newer one carries the condition, so of any number of concurrent requests
with one code exactly one wins (RFC 6238 §5.2; nextcloud twofactor_totp #245).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ... import crypto
from ...core import clock, totp
from ...core.errors import MalformedCode
from ...models import Authenticator, SecurityEvent, User
from ...prepared import PreparedQuery, change, column
from ..errors import InvalidCode, InvalidConfirmationCode
from . import MalformedProof, Verified

METHOD = "totp"
KIND = Authenticator.Kind.TOTP
AMR = ("otp",)
# The apps a code may come from, read at every second step: compiled once (prepared.py).
_CONFIRMED_APPS = PreparedQuery(
    lambda user_id: Authenticator.objects.filter(user_id=user_id, kind=KIND, confirmed=True).order_by("pk"))
DEFAULT_NAME = _("Authenticator app")
# A replay from where the code was just accepted is the person themselves, not an attacker.
SAME_PERSON_SECONDS = 120


@dataclass(frozen=True)
class Setup:
    authenticator_id: int
    secret: str
    otpauth_uri: str
    qr_svg: str

    @property
    def grouped_secret(self) -> str:
        return totp.group_secret(self.secret)


class CodeAlreadyUsed(InvalidCode):
    """A right code whose time step was accepted already: a replay, told apart for the person."""

    default_message = _("That code was used a moment ago. Wait for the app to show the next one.")

    def __init__(self, *, quiet: bool):
        self.quiet = quiet  # the same person a moment later: no "someone has your password" mail
        super().__init__()


def offered(user, facts) -> bool:
    return KIND in facts.kinds


def describe(authenticator: Authenticator) -> str:
    return str(_("Authenticator app"))


def _setup_for(user: User, row: Authenticator, secret: str) -> Setup:
    import segno  # only enrolment draws a QR code: no sign-in loads it

    uri = totp.provisioning_uri(secret, user.login, settings.TWOSTEP_ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=4, title=_("QR code for your authenticator app"))
    return Setup(authenticator_id=row.pk, secret=secret, otpauth_uri=uri, qr_svg=svg)


def start_enrolment(user: User, name: str) -> Setup:
    """Create the pending app (replacing an earlier pending one; caller holds the user's row)."""
    secret = totp.new_secret()
    Authenticator.objects.filter(user=user, confirmed=False).delete()
    row = Authenticator.objects.create(user=user, kind=KIND, name=name,
                                       encrypted_secret=crypto.encrypt_secret(secret))
    return _setup_for(user, row, secret)


def pending(user: User) -> Setup | None:
    """Return the pending app's key again (the page was reloaded), or None."""
    row = Authenticator.objects.filter(user=user, kind=KIND, confirmed=False).first()
    if row is None:
        return None
    return _setup_for(user, row, crypto.decrypt_secret(row.encrypted_secret))


def _clock_off_message(skew: int) -> str:
    minutes = max(1, round(abs(skew) / 60))
    if skew > 0:
        text = ngettext("That code is from the future: your phone's clock looks about "
                        "%(minutes)d minute fast.",
                        "That code is from the future: your phone's clock looks about "
                        "%(minutes)d minutes fast.", minutes)
    else:
        text = ngettext("That code is from the past: your phone's clock looks about "
                        "%(minutes)d minute slow.",
                        "That code is from the past: your phone's clock looks about "
                        "%(minutes)d minutes slow.", minutes)
    return (text % {"minutes": minutes}) + " " + str(
        _("Let the phone set its time automatically, then enter the new code."))


def check_first_code(row: Authenticator, code: str) -> int:
    """Return the time step of a pending app's first code; raise InvalidCode saying what is off."""
    try:
        typed = totp.normalize_code(code)
    except MalformedCode:
        raise InvalidConfirmationCode(_("Enter the 6-digit code your app shows.")) from None
    secret = crypto.decrypt_secret(row.encrypted_secret)
    now_unix = clock.now()
    match = totp.match_code(secret, typed, now_unix)
    if match is not None:
        return match.step
    skew = totp.find_clock_skew(secret, typed, now_unix)
    if skew is not None:
        raise InvalidConfirmationCode(_clock_off_message(skew), clock_skew_seconds=skew)
    raise InvalidConfirmationCode(_("That code is not right. Check the app shows the new entry and try again."))


def verify(user: User, code, now, origin) -> Verified | None:
    """Spend an app code of any of the user's apps; None when no app made it."""
    if not isinstance(code, str):
        return None
    try:
        typed = totp.normalize_code(code)
    except MalformedCode:
        raise MalformedProof(_("An app code is 6 digits.")) from None
    now_unix = clock.now()
    for row in _CONFIRMED_APPS.all(user.pk):
        match = totp.match_code(crypto.decrypt_secret(row.encrypted_secret), typed, now_unix)
        if match is None:
            continue
        if _accept_step(row.pk, match.step, now):
            return Verified(METHOD, AMR, authenticator_id=row.pk)
        raise CodeAlreadyUsed(quiet=_just_used_here(user, origin, now))
    return None


def _accept_step(authenticator_id: int, step: int, now) -> bool:
    """Record `step` as the app's last accepted one, unless that step or a newer one was accepted.

    One conditional UPDATE (the ORM's `.exclude(last_step__gte=step).update(…)`, written once):
    of concurrent requests with one code, exactly one changes the row.
    """
    from django.db import connection

    return change(_accept_step_statement, [step, connection.ops.adapt_datetimefield_value(now), authenticator_id,
                                           step]) == 1


def _accept_step_statement(quote) -> str:
    step_column = column(Authenticator, quote, "last_step")
    return (f"UPDATE {quote(Authenticator._meta.db_table)} SET {step_column} = %s, "  # noqa: S608 — quoted names, values bound
            f"{column(Authenticator, quote, 'last_used_at')} = %s WHERE {column(Authenticator, quote, 'id')} = %s "
            f"AND ({step_column} IS NULL OR {step_column} < %s)")


def _just_used_here(user: User, origin, now) -> bool:
    """Tell whether this user's code was accepted moments ago from this same address."""
    Type = SecurityEvent.Type
    return SecurityEvent.objects.filter(
        user=user, ip=origin.ip, at__gte=now - timedelta(seconds=SAME_PERSON_SECONDS),
        type__in=[Type.SIGN_IN, Type.TWO_FACTOR_ENABLED, Type.AUTHENTICATOR_ADDED,
                  Type.AUTHENTICATOR_REPLACED],
    ).exists()
