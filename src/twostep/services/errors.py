"""Domain errors. Each has a stable snake_case code, an HTTP status and a message for a person."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class ServiceError(Exception):
    code = "error"
    status = 400
    default_message = _("The request cannot be carried out.")

    def __init__(self, message=None, *, status: int | None = None, **extra):
        self.message = message or self.default_message
        if status is not None:
            self.status = status
        self.extra = extra
        super().__init__(str(self.message))


class InvalidCredentials(ServiceError):
    code, status = "invalid_credentials", 401
    default_message = _("The login or password is not right.")


class Throttled(ServiceError):
    code, status = "throttled", 429
    default_message = _("Too many failed attempts. Please wait and try again.")

    def __init__(self, retry_after: int, message=None, locked: bool = False):
        self.retry_after = max(1, int(retry_after))
        self.locked = locked
        super().__init__(message)


class InvalidCode(ServiceError):
    code, status = "invalid_code", 401
    default_message = _("That code is not right. Check it and try again.")


class NoPendingSignIn(ServiceError):
    code, status = "no_pending_sign_in", 409
    default_message = _("The sign-in has expired or was not started. Please sign in again.")


class NoPendingSetup(ServiceError):
    code, status = "no_pending_setup", 409
    default_message = _("There is no authenticator waiting to be confirmed. Start the setup again.")


class WrongPassword(ServiceError):
    code, status = "wrong_password", 403
    default_message = _("The password is not right.")


class TwoFactorDisabled(ServiceError):
    code, status = "two_factor_disabled", 409
    default_message = _("Two-factor authentication is not switched on.")


class TwoFactorAlreadyEnabled(ServiceError):
    code, status = "two_factor_enabled", 409
    default_message = _("Two-factor authentication is already on.")


class TwoFactorRequired(ServiceError):
    code, status = "two_factor_required_by_account", 403
    default_message = _("Your organisation requires two-factor authentication, so it cannot be switched off.")


class NotAccountAdmin(ServiceError):
    code, status = "not_account_admin", 403
    default_message = _("Only an account admin can do this.")


class NotFound(ServiceError):
    code, status = "not_found", 404
    default_message = _("No such user.")


class InvalidInput(ServiceError):
    code, status = "invalid_input", 422


class Conflict(ServiceError):
    code, status = "conflict", 409


class PasskeysNotAllowed(ServiceError):
    code, status = "passkeys_not_allowed", 403
    default_message = _("Your organisation does not allow signing in with a passkey alone. Sign in with "
                        "your login and password; your security key or passkey can still be the second step.")
