"""What twostep stores. Secrets appear only encrypted (TOTP keys) or as keyed hashes (codes)."""

from __future__ import annotations

import secrets
import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from oauth2_provider import models as oauth2

from . import crypto
from .prepared import PreparedQuery


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
    # Users may sign in with a passkey alone (a discoverable credential with user verification).
    allow_passkeys = models.BooleanField(_("allow passkey sign-in"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="account_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


@models.CharField.register_lookup
class Caseless(models.Lookup):
    """`login__caseless=x`: LOWER(login) = LOWER(x), the expression of the unique indexes on LOWER(…).

    Django's `iexact` is `LIKE` on SQLite and `UPPER(…) = UPPER(…)` on PostgreSQL, which neither
    database can answer from an index on LOWER(…): a sign-in read every user to find one. Letters
    are folded by the database on both sides, as its unique index folds them.
    """

    lookup_name = "caseless"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"LOWER({lhs}) = LOWER({rhs})", [*lhs_params, *rhs_params]


class UserManager(BaseUserManager):
    def get_by_natural_key(self, login):
        """The user with this login, whatever its letters' case (one statement compiled once, by index)."""
        user = _USER_BY_LOGIN.first(login, using=self.db)
        if user is None:
            raise self.model.DoesNotExist("no user with this login")
        return user

    def with_account(self, pk) -> User | None:
        """The user with this primary key and its account, in one statement compiled once.

        Nearly every request reads it: the signed-in user, or the one half-way through a sign-in.
        """
        return _USER_WITH_ACCOUNT.first(pk, using=self.db)

    def locked_with_account(self, pk) -> User | None:
        """The same, its row locked until the transaction ends (SELECT … FOR UPDATE, as the ORM's)."""
        return _USER_WITH_ACCOUNT_LOCKED.first(pk, using=self.db)


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
    # The IANA time zone pages show times in (e.g. "Europe/Moscow"); empty: the browser's, else UTC.
    time_zone = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Changing the stamp ends every session of the user (it is part of the session hash).
    security_stamp = models.CharField(max_length=32, default=_new_stamp)
    # The opaque WebAuthn user handle (base64url of 32 random bytes), made at the first key.
    webauthn_handle = models.CharField(max_length=64, blank=True, default="")
    # The OpenID Connect `sub`: opaque, random, stable; made at the first sign-in to an application.
    oidc_subject = models.CharField(max_length=64, blank=True, default="")

    # Second-factor throttle: consecutive failures of every kind of second factor together.
    second_factor_failures = models.PositiveIntegerField(default=0)
    second_factor_blocked_until = models.DateTimeField(null=True, blank=True)
    # Last time a "failed second step" mail went out (at most one an hour).
    failure_notice_sent_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "login"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("login"), name="user_login_unique_ci"),
            models.UniqueConstraint(fields=["oidc_subject"], condition=~models.Q(oidc_subject=""),
                                    name="user_oidc_subject_unique"),
        ]
        indexes = [models.Index(fields=["account", "login"])]

    def __str__(self) -> str:
        return self.login

    def _get_session_auth_hash(self, secret=None):
        # Django re-checks this on every request, under SECRET_KEY and then each of
        # SECRET_KEY_FALLBACKS: a new stamp ends all sessions, a new key none. A new password
        # is a new stamp (save() below); the password hash itself is left out, so re-hashing the
        # same password with new parameters at sign-in ends no other session.
        return crypto.session_auth_hash(f"stamp:{self.security_stamp}", secret)

    def get_session_auth_fallback_hash(self):
        yield from super().get_session_auth_fallback_hash()
        # Sessions signed in by earlier versions hold a hash over the password hash and the
        # stamp: still good until either changes; Django stores the current hash on their next
        # request.
        for secret in crypto.secret_keys():
            yield crypto.session_auth_hash(f"{self.password}:{self.security_stamp}", secret)

    def save(self, *args, **kwargs):
        # set_password() leaves the new password in _password until saved: a real new password
        # (not Django's re-hash at sign-in, which clears it first) gets a new stamp, which ends
        # every session and remembered browser of the user, whoever set it (the services, the
        # Django admin, a management command).
        if self._password is not None and self.pk is not None:
            self.security_stamp = _new_stamp()
            fields = kwargs.get("update_fields")
            if fields is not None and "password" in fields:
                kwargs["update_fields"] = {*fields, "security_stamp"}
        super().save(*args, **kwargs)

    # The Django admin asks these; only server staff reach it, and only after both factors.
    @property
    def is_superuser(self) -> bool:
        return self.is_staff

    def has_perm(self, perm, obj=None) -> bool:
        return self.is_active and self.is_staff

    def has_module_perms(self, app_label) -> bool:
        return self.is_active and self.is_staff


_USER_BY_LOGIN = PreparedQuery(lambda login: User.objects.filter(login__caseless=login), text=True)
_USER_WITH_ACCOUNT = PreparedQuery(lambda pk: User.objects.select_related("account").filter(pk=pk))
_USER_WITH_ACCOUNT_LOCKED = PreparedQuery(
    lambda pk: User.objects.select_for_update().select_related("account").filter(pk=pk))


class Authenticator(models.Model):
    """A second factor the user registered: an authenticator app, or a security key / passkey.

    The common fields come first; each kind keeps a few columns of its own, read and written only
    by the slice that owns the kind (services/factors/). Two-factor authentication is on when the
    user has one confirmed row of any kind. An app waits unconfirmed until its first code.
    """

    class Kind(models.TextChoices):
        TOTP = "totp", _("Authenticator app")
        WEBAUTHN = "webauthn", _("Security key or passkey")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="authenticators")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=60)
    confirmed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    # totp: the Fernet-encrypted key, and the newest time step accepted: any step at or before
    # it is a replay (RFC 6238 §5.2).
    encrypted_secret = models.BinaryField(null=True, blank=True)
    last_step = models.BigIntegerField(null=True, blank=True)

    # webauthn: the credential as registered (W3C WebAuthn Level 3 §6.5). The id is base64url.
    credential_id = models.CharField(max_length=1400, null=True, blank=True, unique=True)
    public_key = models.BinaryField(null=True, blank=True)
    sign_count = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    aaguid = models.CharField(max_length=36, blank=True, default="")
    backup_eligible = models.BooleanField(default=False)
    backup_state = models.BooleanField(default=False)
    # A discoverable credential registered with user verification: signs in on its own.
    passkey = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # One app waiting for its first code at a time; a new start replaces it.
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(confirmed=False), name="one_pending_authenticator"
            ),
            models.UniqueConstraint(
                "user", Lower("name"), condition=models.Q(confirmed=True), name="authenticator_name_unique"
            ),
        ]
        indexes = [models.Index(fields=["user", "confirmed"], name="authenticator_user_confirmed")]

    def __str__(self) -> str:
        return self.name


class BackupCodeSet(models.Model):
    """The user's current set of backup codes: its salt, size and when it was made.

    Making a new set replaces the row and every code of the old one. `saved_at` is when the user
    said they had saved the codes.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="backup_code_set")
    salt = models.CharField(max_length=32)
    size = models.PositiveSmallIntegerField()
    generated_at = models.DateTimeField()
    saved_at = models.DateTimeField(null=True, blank=True)


class BackupCode(models.Model):
    """One backup code, stored as HMAC(key, salt || code) only."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="backup_codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "digest"])]
        constraints = [models.UniqueConstraint(fields=["digest"], name="backup_code_digest_unique")]


class SpentChallenge(models.Model):
    """A WebAuthn challenge already answered: a second answer to it is a replay.

    The session hands a challenge out once, but requests racing on one session could each read
    it before any of them saved; the unique digest makes the answer count once whatever happens.
    Rows older than a challenge's life are deleted as new ones come.
    """

    digest = models.CharField(max_length=64, unique=True)
    at = models.DateTimeField(db_index=True)


class Throttle(models.Model):
    """Failed-password counters per key ("login+address" or "address"), shared by processes."""

    key = models.CharField(max_length=200, unique=True)
    # Failures, counting the attempts still being checked (each counts until proved right).
    failures = models.PositiveIntegerField(default=0)
    # Attempts admitted whose password is still being checked.
    pending = models.PositiveIntegerField(default=0)
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
        AUTHENTICATOR_ADDED = "authenticator_added", _("Authenticator added")
        AUTHENTICATOR_REMOVED = "authenticator_removed", _("Authenticator removed")
        AUTHENTICATOR_RENAMED = "authenticator_renamed", _("Authenticator renamed")
        CLONED_KEY_SUSPECTED = "cloned_key_suspected", _("Security key refused: it may have been copied")
        BACKUP_CODES_GENERATED = "backup_codes_generated", _("New backup codes made")
        BACKUP_CODE_USED = "backup_code_used", _("Backup code used")
        BACKUP_CODES_SAVED = "backup_codes_saved", _("Backup codes saved")
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
        ADMIN_ACCESS_DENIED = "admin_access_denied", _("Admin action on another user refused")
        APP_AUTHORIZED = "app_authorized", _("Signed in to an application")
        APP_DENIED = "app_denied", _("Access for an application refused")
        APP_CONSENTED = "app_consented", _("Access granted to an application")
        APP_TOKEN_ISSUED = "app_token_issued", _("Application received a token")
        APP_TOKEN_REFRESHED = "app_token_refreshed", _("Application refreshed its token")
        APP_REVOKED = "app_revoked", _("Application access revoked")
        APP_CODE_REPLAYED = "app_code_replayed", _("Application sign-in code used twice")
        APP_SIGNED_OUT = "app_signed_out", _("Signed out from an application")

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


class Mail(models.Model):
    """One e-mail on its way: the facts to write it from, and how its delivery went.

    The row is written in the transaction of the action the mail tells about, and a worker sends
    it once: it claims the row (queued -> sending) with a conditional UPDATE, hands the message to
    SMTP, then marks it sent. A mail that fails goes back to queued with a later attempt time, and
    after the last attempt stays failed, for the operator to see (`twostep mail status`).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40)
    # Taken when the event happened: the address and language the mail goes to.
    recipient = models.EmailField()
    language = models.CharField(max_length=10)
    # Facts for the templates, as JSON; the one secret (a reset link) only encrypted.
    context = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True)
    claimed_at = models.DateTimeField(null=True)
    sent_at = models.DateTimeField(null=True)
    # Not sent by then: given up (a reset link that would no longer work).
    expires_at = models.DateTimeField(null=True)
    last_error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"])]


# OpenID Connect provider: django-oauth-toolkit's models, swapped in (settings.OAUTH2_PROVIDER_*_MODEL)
# with the columns twostep needs. What a sign-in proved (amr, acr, auth_time) travels from the
# session to the code and from the code to the refresh token, so a refreshed ID token says the
# same. Every token made from one code shares the code's `family`, so a replayed code revokes
# them all (RFC 6749 §4.1.2).


class OAuthClient(oauth2.AbstractApplication):
    """An application that signs its users in through twostep (`twostep client create`)."""

    # Every sign-in to it needs a second factor, as if it always asked acr_values=urn:twostep:mfa.
    require_two_factor = models.BooleanField(default=False)

    objects = oauth2.ApplicationManager()

    class Meta(oauth2.AbstractApplication.Meta):
        abstract = False

    def natural_key(self):
        return (self.client_id,)

    @property
    def jwk_key(self):
        # RS256 with twostep's own keys (generated into the data dir, or given by settings).
        return crypto.signing_jwk()


class OAuthGrant(oauth2.AbstractGrant):
    """An authorization code, kept after it is redeemed so that a second use is recognised."""

    family = models.UUIDField(default=uuid.uuid4, editable=False)
    amr = models.JSONField(default=list, blank=True)
    acr = models.CharField(max_length=60, blank=True, default="")
    auth_time = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)

    class Meta(oauth2.AbstractGrant.Meta):
        abstract = False


class OAuthAccessToken(oauth2.AbstractAccessToken):
    family = models.UUIDField(null=True, blank=True, db_index=True)

    class Meta(oauth2.AbstractAccessToken.Meta):
        abstract = False


class OAuthRefreshToken(oauth2.AbstractRefreshToken):
    """A refresh token; it carries what the sign-in proved to every ID token made from it."""

    amr = models.JSONField(default=list, blank=True)
    acr = models.CharField(max_length=60, blank=True, default="")
    auth_time = models.DateTimeField(null=True, blank=True)

    class Meta(oauth2.AbstractRefreshToken.Meta):
        abstract = False


class OAuthIDToken(oauth2.AbstractIDToken):
    class Meta(oauth2.AbstractIDToken.Meta):
        abstract = False


class OAuthConsent(models.Model):
    """A person's yes to an application (or a trusted application's first use): "Apps with access"."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="app_consents")
    client = models.ForeignKey(OAuthClient, on_delete=models.CASCADE, related_name="consents")
    scope = models.TextField(blank=True, default="")
    granted_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "client"], name="oauth_consent_once")]
