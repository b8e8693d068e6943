"""Accounts and users: create them, read their status, set the account's policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils.translation import gettext_lazy as _

from ..core import clock
from ..models import Account, Authenticator, User
from . import audit
from .audit import Origin, Type
from .errors import AdminNeedsTwoFactor, Conflict, InvalidInput, NotAccountAdmin, NotFound
from .factors import enabled, enabled_q

MAX_LOGIN = 150
# The longest password, the same wherever one is typed or set (sign-in page and API, change,
# reset, the command line): a password someone set can always be typed everywhere. Longer is no
# password a person or a manager makes; it would only cost hashing time.
MAX_PASSWORD = 1024


def _clean_login(login: str) -> str:
    login = (login or "").strip()
    if not login or len(login) > MAX_LOGIN or any(c.isspace() or not c.isprintable() for c in login):
        raise InvalidInput(_("A login is 1 to 150 characters without spaces."))
    return login


def _clean_email(email: str) -> str:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("%(email)s is not an e-mail address.") % {"email": email}) from None
    return email


def _check_password(password: str, user: User) -> None:
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(_("Keep the password to %(max)d characters or fewer.") % {"max": MAX_PASSWORD})
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages)) from None


def _make_user(login, email, password, account, is_admin) -> User:
    login, email = _clean_login(login), _clean_email(email)
    if User.objects.filter(login__caseless=login).exists():
        raise Conflict(_("The login %(login)s is taken.") % {"login": login})
    user = User(login=login, email=email, account=account, is_account_admin=is_admin)
    _check_password(password, user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise Conflict(_("The login %(login)s is taken.") % {"login": login}) from None
    audit.record(Type.USER_CREATED, user=user, origin=Origin.command_line(), admin=is_admin)
    return user


def create_account(name: str, admin_login: str, email: str, password: str) -> Account:
    """Create an account with its first admin."""
    name = (name or "").strip()
    if not name or len(name) > 150:
        raise InvalidInput(_("An account name is 1 to 150 characters."))
    with transaction.atomic():
        taken = Conflict(_("An account named %(name)s exists already.") % {"name": name})
        if Account.objects.filter(name__caseless=name).exists():
            raise taken
        try:  # a concurrent create of the same name passes the check above too
            account = Account.objects.create(name=name)
        except IntegrityError:
            raise taken from None
        _make_user(admin_login, email, password, account, is_admin=True)
    return account


def create_user(login: str, account_name: str, email: str, password: str, *, is_admin: bool = False) -> User:
    """Create a user in an existing account."""
    account = Account.objects.filter(name__caseless=(account_name or "").strip()).first()
    if account is None:
        raise NotFound(_("No account named %(name)s.") % {"name": account_name})
    with transaction.atomic():
        return _make_user(login, email, password, account, is_admin)


@dataclass(frozen=True)
class UserStatus:
    user: User
    two_factor_enabled: bool
    backup_codes_remaining: int
    last_login: datetime | None
    backup_codes_generated_at: datetime | None = None
    authenticators: tuple = ()  # (kind, name) of each confirmed authenticator


def _status_queryset():
    return User.objects.select_related("account").annotate(
        two_factor_enabled=enabled_q(),
        codes_left=Count("backup_codes", filter=Q(backup_codes__used_at__isnull=True)),
        codes_made=F("backup_code_set__generated_at"),
    )


def _status(user, authenticators=()) -> UserStatus:
    return UserStatus(user, user.two_factor_enabled, user.codes_left, user.last_login, user.codes_made,
                      tuple(authenticators))


def _with_authenticators(users: list) -> list[UserStatus]:
    """Attach each user's authenticators (kind, name), one query for the whole page."""
    names: dict[int, list] = {}
    rows = (Authenticator.objects.filter(user__in=users, confirmed=True).order_by("confirmed_at", "pk")
            .values_list("user_id", "kind", "name"))
    for user_id, kind, name in rows:
        names.setdefault(user_id, []).append((kind, name))
    return [_status(u, names.get(u.pk, ())) for u in users]


def user_status(login: str) -> UserStatus:
    """Return a user's 2FA status by login (for the operator)."""
    user = _status_queryset().filter(login__caseless=(login or "").strip()).first()
    if user is None:
        raise NotFound(_("No user with the login %(login)s.") % {"login": login})
    return _with_authenticators([user])[0]


PAGE_SIZE = 50


def list_users(admin: User, *, query: str = "", after: str | None = None,
               limit: int = PAGE_SIZE, enrolled: bool | None = None) -> tuple[list[UserStatus], str | None]:
    """Return one page of the admin's account users, ordered by login, and the next cursor.

    Keyset paging on (account, login) stays as fast on page 2000 as on page 1. `enrolled`
    keeps only users with (True) or without (False) a confirmed authenticator.
    """
    if not admin.is_account_admin:
        raise NotAccountAdmin()
    limit = max(1, min(int(limit), 200))
    # Page over bare user rows first (the (account, login) index answers it), then count codes
    # for that page only: an aggregate over the whole account would cost every page O(users).
    rows = User.objects.filter(account_id=admin.account_id)
    if enrolled is not None:
        has_device = enabled_q()
        rows = rows.filter(has_device) if enrolled else rows.exclude(has_device)
    query = (query or "").strip()[:150]
    if query:
        rows = rows.filter(Q(login__icontains=query) | Q(email__icontains=query))
    if after:
        rows = rows.filter(login__gt=after)
    ids = list(rows.order_by("login").values_list("pk", flat=True)[: limit + 1])
    page = list(_status_queryset().filter(pk__in=ids[:limit]).order_by("login"))
    next_cursor = page[-1].login if len(ids) > limit else None
    return _with_authenticators(page), next_cursor


# The account's policy ---------------------------------------------------------------------------

POLICY_FIELDS = ("require_two_factor", "require_two_factor_from", "remember_browser_days",
                 "require_second_admin", "allow_passkeys")
_BOOLEAN_FIELDS = ("require_two_factor", "require_second_admin", "allow_passkeys")


def _refuse(field: str, message) -> None:
    raise InvalidInput(message, fields={field: str(message)})


def _clean_policy_value(field: str, value):
    """Return the value to store for one policy field, or raise InvalidInput naming the field."""
    from .trusted_browsers import MAX_DAYS

    if field in _BOOLEAN_FIELDS:
        if not isinstance(value, bool):
            _refuse(field, _("%(field)s must be true or false.") % {"field": field})
        return value
    if field == "remember_browser_days":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
            _refuse(field, _("Remembering a browser lasts 1 to 90 days, or 0 to switch it off."))
        return value
    if field == "require_two_factor_from":
        if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
            _refuse(field, _("Enter a date as YYYY-MM-DD, or leave it empty."))
        # A date in the past would force everyone at once without a warning; the plain
        # requirement is the way to do that.
        if value is not None and value < clock.utcnow().date():
            _refuse(field, _("The date is in the past: choose today or a later day."))
        return value
    _refuse(field, _("There is no policy setting “%(field)s”.") % {"field": str(field)[:40]})


def _audit_value(value):
    return value.isoformat() if isinstance(value, date) else value


def change_policy(admin: User, changes: dict, origin: Origin) -> Account:
    """Change some of the account's policy fields at once: all of them, or none.

    `changes` maps names of POLICY_FIELDS to their new values. Every value is checked before
    anything is written; one that is wrong raises InvalidInput naming its field (`fields`) and
    nothing changes. The fields are then written together with the account row locked, and one
    `policy_changed` event records exactly the fields whose value changed (none: no event); the
    account returned names them in `changed_policy` (a tuple, in the order of `changes`).

    A change that makes 2FA required at once (the plain requirement, or a deadline of today) is
    refused with AdminNeedsTwoFactor while the admin has none: it would hold the admin's own
    session on the setup page too, with no way back to the policy (a later deadline gives the
    admin the same grace as everyone).
    """
    from . import trusted_browsers

    if not admin.is_account_admin:
        raise NotAccountAdmin()
    if not changes:
        raise InvalidInput(_("Send at least one policy field."))
    wanted = {field: _clean_policy_value(field, value) for field, value in changes.items()}
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=admin.account_id)
        changed = {field: value for field, value in wanted.items() if getattr(account, field) != value}
        _refuse_self_lock_out(admin, account, changed)
        if changed:
            for field, value in changed.items():
                setattr(account, field, value)
            account.save(update_fields=list(changed))
            if "remember_browser_days" in changed:
                trusted_browsers.apply_policy(account)
            audit.record(Type.POLICY_CHANGED, user=admin, actor=admin, origin=origin,
                         **{field: _audit_value(value) for field, value in changed.items()})
    account.changed_policy = tuple(changed)
    return account


def _refuse_self_lock_out(admin: User, account: Account, changed: dict) -> None:
    """Refuse `changed` if it would start requiring 2FA now of an admin who has none."""
    if not changed or two_factor_required(account) or enabled(admin):
        return
    after = Account(**{field: getattr(account, field) for field in POLICY_FIELDS} | changed)
    if two_factor_required(after):
        field = "require_two_factor" if after.require_two_factor else "require_two_factor_from"
        message = _("Set up two-factor authentication for yourself first: requiring it now would send "
                    "you to the setup page too, at once.")
        raise AdminNeedsTwoFactor(message, fields={field: str(message)})


def set_require_two_factor(admin: User, require: bool, origin: Origin) -> Account:
    """Require (or stop requiring) 2FA of every user of the admin's account."""
    return change_policy(admin, {"require_two_factor": bool(require)}, origin)


def set_allow_passkeys(admin: User, allow: bool, origin: Origin) -> Account:
    """Let the account's users sign in with a passkey alone (or stop letting them)."""
    return change_policy(admin, {"allow_passkeys": bool(allow)}, origin)


def two_factor_required(account: Account, today: date | None = None) -> bool:
    """Tell whether the account forces 2FA now: always, or from its deadline on (the one rule)."""
    if account.require_two_factor:
        return True
    deadline = account.require_two_factor_from
    return deadline is not None and (today or clock.utcnow().date()) >= deadline


def enrolment_counts(admin: User) -> tuple[int, int]:
    """Return (users with 2FA, all users) of the admin's account."""
    if not admin.is_account_admin:
        raise NotAccountAdmin()
    users = User.objects.filter(account_id=admin.account_id, is_active=True)
    enrolled = users.filter(enabled_q()).count()
    return enrolled, users.count()


def set_two_factor_deadline(admin: User, deadline: date | None, origin: Origin) -> Account:
    """Set (or clear, with None) the date from which the admin's account requires 2FA (not a past one)."""
    return change_policy(admin, {"require_two_factor_from": deadline}, origin)


def set_require_second_admin(admin: User, require: bool, origin: Origin) -> Account:
    """Make an admin's switch-off or recovery pass wait for another admin's approval (or not)."""
    return change_policy(admin, {"require_second_admin": bool(require)}, origin)


def set_remember_browser_days(admin: User, days: int, origin: Origin) -> Account:
    """Let the account's users skip the second step on a browser for 1-90 days (0: never)."""
    return change_policy(admin, {"remember_browser_days": days}, origin)


def set_language(user: User, language: str) -> None:
    """Remember the language the user reads pages and e-mails in (one of settings.LANGUAGES)."""
    from django.conf import settings

    if language not in dict(settings.LANGUAGES):
        raise InvalidInput(_("That language is not available."))
    User.objects.filter(pk=user.pk).update(language=language)
    user.language = language
