"""Domain errors. Each has a stable snake_case code and a message for a person.

They say nothing of HTTP: each transport maps them to its answers in one place (http.py).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class ServiceError(Exception):
    code = "error"
    default_message = _("The request cannot be carried out.")

    def __init__(self, message=None, **extra):
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(str(self.message))


class InvalidCredentials(ServiceError):
    code = "invalid_credentials"
    default_message = _("The login or password is not right.")


class Throttled(ServiceError):
    code = "throttled"
    default_message = _("Too many failed attempts. Please wait and try again.")

    def __init__(self, retry_after: int, message=None, locked: bool = False):
        self.retry_after = max(1, int(retry_after))
        self.locked = locked
        super().__init__(message)


class InvalidCode(ServiceError):
    code = "invalid_code"
    default_message = _("That code is not right. Check it and try again.")


class InvalidConfirmationCode(InvalidCode):
    """A wrong code given to confirm a change (a first code, switching off): bad input, not a sign-in."""


class NoPendingSignIn(ServiceError):
    code = "no_pending_sign_in"
    default_message = _("The sign-in has expired or was not started. Please sign in again.")


class NoPendingSetup(ServiceError):
    code = "no_pending_setup"
    default_message = _("There is no authenticator waiting to be confirmed. Start the setup again.")


class WrongPassword(ServiceError):
    code = "wrong_password"
    default_message = _("The password is not right.")


class TwoFactorDisabled(ServiceError):
    code = "two_factor_disabled"
    default_message = _("Two-factor authentication is not switched on.")


class TwoFactorAlreadyEnabled(ServiceError):
    code = "two_factor_enabled"
    default_message = _("Two-factor authentication is already on.")


class TwoFactorRequired(ServiceError):
    code = "two_factor_required_by_account"
    default_message = _("Your organisation requires two-factor authentication, so it cannot be switched off.")


class NotAccountAdmin(ServiceError):
    code = "not_account_admin"
    default_message = _("Only an account admin can do this.")


class AdminNeedsTwoFactor(ServiceError):
    """An admin without a second factor of their own may not act on anyone else's."""

    code = "admin_two_factor_required"
    default_message = _("Switch on two-factor authentication for yourself before changing someone else's.")


class SecondFactorRequired(ServiceError):
    """An action on someone else's factors needs the admin's own second factor, proved just now."""

    code = "second_factor_required"
    default_message = _("Confirm with a current code from your authenticator app, or a backup code.")


class NotFound(ServiceError):
    code = "not_found"
    default_message = _("No such user.")


class InvalidInput(ServiceError):
    code = "invalid_input"


class Conflict(ServiceError):
    code = "conflict"


class PasskeysNotAllowed(ServiceError):
    code = "passkeys_not_allowed"
    default_message = _("Your organisation does not allow signing in with a passkey alone. Sign in with "
                        "your login and password; your security key or passkey can still be the second step.")
