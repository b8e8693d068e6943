"""Re-authentication before a change to the second factor (ASVS 7.5.1)."""

from __future__ import annotations

from ..core import clock
from . import audit, throttling
from .audit import Origin, Type
from .errors import WrongPassword


def confirm_password(user, password: str | None, origin: Origin, *, fresh: bool = False) -> None:
    """Raise WrongPassword unless `password` is the user's, or the caller vouches it was just given.

    `fresh` is true only when the same session proved the password moments ago (the sign-in
    that led straight here); the API always sends the password. Guessing is throttled like the
    sign-in form, so a stolen session cannot be used to find the password.
    """
    if password is None or password == "":
        if fresh:
            return
        raise WrongPassword()
    keys = throttling.password_keys(user.login, origin.ip)
    now = clock.utcnow()
    attempt = throttling.reserve_password_attempt(keys, now)
    if not user.check_password(password):
        throttling.record_password_failure(attempt)
        audit.record(Type.REAUTH_FAILED, user=user, actor=user, origin=origin)
        raise WrongPassword()
    throttling.record_password_success(attempt)
