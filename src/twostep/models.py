"""What twostep stores. Secrets appear only encrypted (TOTP keys) or as keyed hashes (codes)."""

from __future__ import annotations

import secrets

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _


class Account(models.Model):
    """An organisation: its users, its admins, its policy."""

    name = models.CharField(_("name"), max_length=150)
    require_two_factor = models.BooleanField(_("require two-factor authentication"), default=False)
    # A deadline for required 2FA: until it, users are reminded; from it, setup is forced.
    require_two_factor_from = models.DateField(_("require two-factor authentication from"), null=True, blank=True)
    # Days a browser may be remembered after a full sign-in (0: the option is off).
    remember_browser_days = models.PositiveSmallIntegerField(_("remember browsers for (days)"), default=0)
    # A second admin must approve an admin's switch-off or recovery pass before it takes effect.
    require_second_admin = models.BooleanField(_("require a second admin's approval"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="account_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    def get_by_natural_key(self, login):
        return self.get(login__iexact=login)


def _new_stamp() -> str:
    return secrets.token_hex(16)


class User(AbstractBaseUser):
    """A person who signs in. The login is unique across the server, ignoring case."""

    login = models.CharField(_("login"), max_length=150)
    email = models.EmailField(_("e-mail"))
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="users")
    is_account_admin = models.BooleanField(_("account admin"), default=False)
    is_active = models.BooleanField(default=True)
    # Server-wide superuser for the Django admin (reached only through our sign-in).
    is_staff = models.BooleanField(default=False)
    language = models.CharField(max_length=8, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Changing the stamp ends every session of the user (it is part of the session hash).
    security_stamp = models.CharField(max_length=32, default=_new_stamp)

    # Backup codes: the salt and time of the current set (codes themselves in BackupCode).
    backup_codes_salt = models.CharField(max_length=32, blank=True, default="")
    backup_codes_generated_at = models.DateTimeField(null=True, blank=True)

    # Second-factor throttle: consecutive failures (app and backup codes together).
    second_factor_failures = models.PositiveIntegerField(default=0)
    second_factor_blocked_until = models.DateTimeField(null=True, blank=True)
    # Last time a "failed second step" mail went out (at most one an hour).
    failure_notice_sent_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "login"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("login"), name="user_login_unique_ci")]
        indexes = [models.Index(fields=["account", "login"])]

    def __str__(self) -> str:
        return self.login

    def get_session_auth_hash(self):
        # Django re-checks this on every request: a new stamp or password ends all sessions.
        return salted_hmac(
            "twostep.session", f"{self.password}:{self.security_stamp}", algorithm="sha256"
        ).hexdigest()

    # The Django admin asks these; only server staff reach it, and only after both factors.
    @property
    def is_superuser(self) -> bool:
        return self.is_staff

    def has_perm(self, perm, obj=None) -> bool:
        return self.is_active and self.is_staff

    def has_module_perms(self, app_label) -> bool:
        return self.is_active and self.is_staff


class TotpDevice(models.Model):
    """An authenticator app. A pending device (confirmed=False) waits for its first code."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="totp_devices")
    encrypted_secret = models.BinaryField()
    confirmed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The newest time step accepted: any step at or before it is a replay (RFC 6238 §5.2).
    last_step = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(confirmed=True), name="one_confirmed_device"
            ),
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(confirmed=False), name="one_pending_device"
            ),
        ]


class BackupCode(models.Model):
    """One backup code, stored as HMAC(key, salt || code) only."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="backup_codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "digest"])]
        constraints = [models.UniqueConstraint(fields=["digest"], name="backup_code_digest_unique")]


class Throttle(models.Model):
    """Failed-password counters per key ("login+address" or "address"), shared by processes."""

    key = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0)
    blocked_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()


class UserSession(models.Model):
    """A signed-in session, so the user can see it and end it (the session data stays Django's)."""

    session_key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["user", "-last_seen_at"])]


class TrustedBrowser(models.Model):
    """A browser remembered after a full sign-in: the second step is skipped there until expiry.

    Only a hash of the cookie's token is stored. Rows are deleted when the password or the second
    factor changes, new codes are made, or the user forgets all browsers.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="trusted_browsers")
    token_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")


class RecoveryRequest(models.Model):
    """An admin's recovery action for a user: switch 2FA off, or a one-time sign-in pass.

    With the account's second-admin rule it waits for another admin's approval. A pass lets the
    user sign in once with the password alone, straight into registering a new authenticator;
    only a hash of the pass is stored.
    """

    class Kind(models.TextChoices):
        DISABLE_TWO_FACTOR = "disable_two_factor", _("Switch two-factor authentication off")
        SIGN_IN_PASS = "sign_in_pass", _("One-time sign-in pass")

    kind = models.CharField(max_length=30, choices=Kind.choices)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_requests")
    requested_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField()
    approved_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    token_digest = models.CharField(max_length=64, blank=True, default="", db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)


class Notice(models.Model):
    """A ledger of notices sent once (e.g. a deadline reminder), so none is sent twice."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=60)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind", "key"], name="notice_once")]


class SecurityEvent(models.Model):
    """An audit record: who did what to whom, when, from where."""

    class Type(models.TextChoices):
        SIGN_IN = "sign_in", _("Signed in")
        SIGN_IN_FAILED = "sign_in_failed", _("Wrong password")
        SIGN_OUT = "sign_out", _("Signed out")
        SECOND_FACTOR_FAILED = "second_factor_failed", _("Wrong code after a correct password")
        THROTTLED = "throttled", _("Attempts paused after too many failures")
        SECOND_FACTOR_LOCKED = "second_factor_locked", _("Second factor locked")
        TWO_FACTOR_ENABLED = "two_factor_enabled", _("Two-factor authentication switched on")
        TWO_FACTOR_DISABLED = "two_factor_disabled", _("Two-factor authentication switched off")
        AUTHENTICATOR_REPLACED = "authenticator_replaced", _("New authenticator registered")
        BACKUP_CODES_GENERATED = "backup_codes_generated", _("New backup codes made")
        BACKUP_CODE_USED = "backup_code_used", _("Backup code used")
        ADMIN_DISABLED_TWO_FACTOR = "admin_disabled_two_factor", _("Admin switched two-factor authentication off")
        OPERATOR_DISABLED_TWO_FACTOR = "operator_disabled_two_factor", _("Operator switched two-factor authentication off")
        POLICY_CHANGED = "policy_changed", _("Account policy changed")
        USER_CREATED = "user_created", _("User created")
        REAUTH_FAILED = "reauth_failed", _("Wrong password when confirming a change")
        SESSION_ENDED = "session_ended", _("A session was signed out")
        OTHER_SESSIONS_ENDED = "other_sessions_ended", _("Signed out everywhere else")
        BROWSER_REMEMBERED = "browser_remembered", _("Browser remembered")
        BROWSERS_FORGOTTEN = "browsers_forgotten", _("Remembered browsers forgotten")
        PASSWORD_RESET_REQUESTED = "password_reset_requested", _("Password reset requested")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        RECOVERY_REQUESTED = "recovery_requested", _("Admin recovery requested")
        RECOVERY_APPROVED = "recovery_approved", _("Admin recovery approved")
        RECOVERY_PASS_ISSUED = "recovery_pass_issued", _("One-time sign-in pass issued")
        RECOVERY_PASS_USED = "recovery_pass_used", _("One-time sign-in pass used")
        REMINDER_SENT = "reminder_sent", _("Reminder to set up two-factor authentication sent")
        ADMIN_ACCESS_DENIED = "admin_access_denied", _("Admin action on a user outside the account refused")

    type = models.CharField(max_length=40, choices=Type.choices)
    at = models.DateTimeField(db_index=True)
    account = models.ForeignKey(Account, null=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, null=True, on_delete=models.CASCADE, related_name="security_events")
    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-at"]),
            models.Index(fields=["account", "-at"]),
            models.Index(fields=["account", "type", "-at"]),
        ]
