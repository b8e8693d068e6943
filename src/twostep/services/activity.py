"""Security activity: the audit log in words, for the user (their own) and the account admin.

Paging is keyset on the event id, newest first: a page never repeats or skips an event, and page
2000 costs what page 1 does. An admin reads only their own account's events (ASVS 8.2.2); a
filter naming a login of another account simply matches nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..models import SecurityEvent, User
from .errors import InvalidInput, NotAccountAdmin
from .user_agents import browser_name

Type = SecurityEvent.Type

PAGE_SIZE = 50
MAX_PAGE = 200
EXPORT_CHUNK = 500
MAX_ID = 2**63 - 1  # PostgreSQL's bigint

# Description ---------------------------------------------------------------------------------


def _sign_in(detail: dict) -> str:
    method = detail.get("method")
    if method == "totp":
        return _("Signed in with a code from the authenticator app")
    if method == "backup_code":
        return _("Signed in with a backup code")
    if method == "password":
        return _("Signed in with the password alone (two-factor authentication off)")
    if method == "remembered_browser":
        return _("Signed in with the password on a remembered browser")
    if method == "totp_setup":
        return _("Signed in by setting up an authenticator app")
    if method == "webauthn_setup":
        return _("Signed in by registering a security key or passkey")
    if method == "recovery_pass":
        return _("Signed in with a one-time sign-in pass")
    if method == "webauthn":
        return _("Signed in with a security key or passkey")
    if method == "passkey":
        return _("Signed in with a passkey, without a password")
    return _("Signed in")


def _sign_in_failed(detail: dict) -> str:
    if detail.get("method") == "passkey":
        if detail.get("reason") == "not_allowed":
            return _("Passkey sign-in refused: the account does not allow it")
        return _("Passkey sign-in refused")
    return str(Type.SIGN_IN_FAILED.label)


def _second_factor_failed(detail: dict) -> str:
    method = detail.get("method")
    if detail.get("purpose", "sign_in") == "sign_in":
        if method == "webauthn":
            text = _("Security key or passkey refused after a correct password")
        elif method == "recovery_pass":
            text = _("Wrong one-time sign-in pass after a correct password")
        elif method == "backup_code":
            text = _("Wrong backup code after a correct password")
        else:
            text = _("Wrong app code after a correct password")
    else:
        text = (_("Wrong backup code when confirming a change") if method == "backup_code"
                else _("Wrong app code when confirming a change"))
    failures = detail.get("failures")
    if isinstance(failures, int) and failures > 1:
        text += " " + ngettext("(%(count)d in a row)", "(%(count)d in a row)", failures) % {"count": failures}
    return text


def _throttled(detail: dict) -> str:
    if detail.get("step") == "password":
        return _("Password attempts paused after too many failures")
    if detail.get("step") == "second_factor":
        return _("Code attempts paused after too many wrong codes")
    if detail.get("step") == "recovery_pass":
        return _("One-time pass attempts paused after too many failures")
    return str(Type.THROTTLED.label)


def _backup_code_used(detail: dict) -> str:
    left = detail.get("remaining")
    purpose = detail.get("purpose", "sign_in")
    what = (_("Backup code used to sign in") if purpose == "sign_in"
            else _("Backup code used to confirm a change"))
    if isinstance(left, int):
        what += "; " + ngettext("%(count)d code left", "%(count)d codes left", left) % {"count": left}
    return what


def _codes_generated(detail: dict) -> str:
    count = detail.get("count")
    if isinstance(count, int):
        return ngettext("%(count)d new backup code made; the old ones stopped working",
                        "%(count)d new backup codes made; the old ones stopped working",
                        count) % {"count": count}
    return _("New backup codes made; the old ones stopped working")


def _policy_part(field: str, value) -> str | None:
    if field == "require_two_factor" and isinstance(value, bool):
        return (_("The account now requires two-factor authentication") if value
                else _("The account no longer requires two-factor authentication"))
    if field == "require_two_factor_from":
        if isinstance(value, str) and value:
            return _("Two-factor authentication is required from %(date)s") % {"date": value}
        if value is None:
            return _("The date from which two-factor authentication is required was removed")
    if field == "remember_browser_days" and isinstance(value, int) and not isinstance(value, bool):
        if value > 0:
            return ngettext("Browsers may be remembered for %(count)d day",
                            "Browsers may be remembered for %(count)d days", value) % {"count": value}
        return _("Browsers are no longer remembered")
    if field == "require_second_admin" and isinstance(value, bool):
        return (_("A second admin must now approve switching two-factor authentication off or a one-time sign-in pass")
                if value else _("A second admin's approval is no longer needed"))
    if field == "allow_passkeys" and isinstance(value, bool):
        return (_("Signing in with a passkey alone is now allowed") if value
                else _("Signing in with a passkey alone is no longer allowed"))
    return None


def _policy(detail: dict) -> str:
    """One sentence per setting that changed (a change of several settings is one event)."""
    parts = [part for field, value in detail.items() if (part := _policy_part(field, value))]
    return ". ".join(parts) if parts else str(Type.POLICY_CHANGED.label)


def _kind_name(kind) -> str | None:
    if kind == "totp":
        return _("authenticator app")
    if kind == "webauthn":
        return _("security key or passkey")
    return None


def _named(detail: dict, label: str) -> str:
    """The event's label with the authenticator's name and kind, when the detail has them."""
    name = detail.get("authenticator")
    if not isinstance(name, str) or not name:
        return label
    kind = _kind_name(detail.get("kind"))
    if kind and kind.casefold() != name.casefold():  # not "“Authenticator app” (authenticator app)"
        return _("%(what)s: “%(name)s” (%(kind)s)") % {"what": label, "name": name, "kind": kind}
    return _("%(what)s: “%(name)s”") % {"what": label, "name": name}


def _authenticator_renamed(detail: dict) -> str:
    old, new = detail.get("old_name"), detail.get("authenticator")
    if isinstance(old, str) and old and isinstance(new, str) and new:
        return _("Authenticator “%(old)s” renamed to “%(new)s”") % {"old": old, "new": new}
    return str(Type.AUTHENTICATOR_RENAMED.label)


def _two_factor_disabled(detail: dict) -> str:
    name = detail.get("authenticator")
    if isinstance(name, str) and name:
        return _("Two-factor authentication switched off by removing the last authenticator, “%(name)s”") % {
            "name": name}
    return str(Type.TWO_FACTOR_DISABLED.label)


def _cloned_key(detail: dict) -> str:
    name = detail.get("authenticator")
    if isinstance(name, str) and name:
        return _("Security key “%(name)s” refused: it may have been copied") % {"name": name}
    return str(Type.CLONED_KEY_SUSPECTED.label)


def _by_label(kind: Type):
    return lambda detail: _named(detail, str(kind.label))


def _user_created(detail: dict) -> str:
    return _("Account admin created") if detail.get("admin") else _("User created")


def _recovery(detail: dict, label: str) -> str:
    kind = detail.get("kind")
    if kind == "sign_in_pass":
        return _("%(what)s: one-time sign-in pass") % {"what": label}
    if kind == "disable_two_factor":
        return _("%(what)s: switch two-factor authentication off") % {"what": label}
    return label


def _count(detail: dict, key: str = "count") -> int | None:
    value = detail.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _session_ended(detail: dict) -> str:
    browser, ip = detail.get("browser"), detail.get("session_ip")
    if isinstance(browser, str) and browser and isinstance(ip, str) and ip:
        return _("A session was signed out: %(browser)s from %(ip)s") % {"browser": browser, "ip": ip}
    if isinstance(browser, str) and browser:
        return _("A session was signed out: %(browser)s") % {"browser": browser}
    return str(Type.SESSION_ENDED.label)


def _other_sessions_ended(detail: dict) -> str:
    count = _count(detail)
    if count is None:
        return str(Type.OTHER_SESSIONS_ENDED.label)
    return ngettext("Signed out everywhere else (%(count)d session)",
                    "Signed out everywhere else (%(count)d sessions)", count) % {"count": count}


def _browser_remembered(detail: dict) -> str:
    days = _count(detail, "days")
    if days is None:
        return str(Type.BROWSER_REMEMBERED.label)
    return ngettext("Browser remembered for %(count)d day", "Browser remembered for %(count)d days",
                    days) % {"count": days}


def _browsers_forgotten(detail: dict) -> str:
    count = _count(detail)
    if count is None:
        return str(Type.BROWSERS_FORGOTTEN.label)
    return ngettext("%(count)d remembered browser forgotten", "%(count)d remembered browsers forgotten",
                    count) % {"count": count}


def _password_changed(detail: dict) -> str:
    if detail.get("via") == "reset":
        return _("Password changed with a reset link")
    return str(Type.PASSWORD_CHANGED.label)


def _reminder(detail: dict) -> str:
    deadline = detail.get("deadline")
    if isinstance(deadline, str) and deadline:
        return _("Reminder sent: two-factor authentication is required from %(date)s") % {"date": deadline}
    return str(Type.REMINDER_SENT.label)


def _app_name(detail: dict) -> str | None:
    name = detail.get("app")
    return name if isinstance(name, str) and name else None


def _app_event(kind: Type, sentence):
    """An OpenID Connect event: a sentence naming the application, or the label without one."""
    def describe_app(detail: dict) -> str:
        name = _app_name(detail)
        return sentence(detail) % {"app": name} if name else str(kind.label)
    return describe_app


def _app_revoked(detail: dict) -> str:
    by = detail.get("by")
    if by == "app":
        return _("%(app)s gave up its access (a token was revoked)")
    if by == "user":
        return _("Access of %(app)s revoked")
    return _("Access of %(app)s ended: every session of the account was signed out")


_BY_DETAIL = {
    Type.SESSION_ENDED: _session_ended,
    Type.OTHER_SESSIONS_ENDED: _other_sessions_ended,
    Type.BROWSER_REMEMBERED: _browser_remembered,
    Type.BROWSERS_FORGOTTEN: _browsers_forgotten,
    Type.PASSWORD_CHANGED: _password_changed,
    Type.REMINDER_SENT: _reminder,
    Type.SIGN_IN: _sign_in,
    Type.SECOND_FACTOR_FAILED: _second_factor_failed,
    Type.THROTTLED: _throttled,
    Type.BACKUP_CODE_USED: _backup_code_used,
    Type.BACKUP_CODES_GENERATED: _codes_generated,
    Type.BACKUP_CODES_SAVED: lambda detail: _("Confirmed that the new backup codes are saved"),
    Type.POLICY_CHANGED: _policy,
    Type.USER_CREATED: _user_created,
    Type.SIGN_IN_FAILED: _sign_in_failed,
    Type.TWO_FACTOR_ENABLED: _by_label(Type.TWO_FACTOR_ENABLED),
    Type.AUTHENTICATOR_ADDED: _by_label(Type.AUTHENTICATOR_ADDED),
    Type.AUTHENTICATOR_REPLACED: _by_label(Type.AUTHENTICATOR_REPLACED),
    Type.AUTHENTICATOR_REMOVED: _by_label(Type.AUTHENTICATOR_REMOVED),
    Type.CLONED_KEY_SUSPECTED: _cloned_key,
    Type.AUTHENTICATOR_RENAMED: _authenticator_renamed,
    Type.TWO_FACTOR_DISABLED: _two_factor_disabled,
    Type.APP_AUTHORIZED: _app_event(Type.APP_AUTHORIZED, lambda d: _("Signed in to %(app)s")),
    Type.APP_DENIED: _app_event(Type.APP_DENIED, lambda d: _("Access for %(app)s refused")),
    Type.APP_CONSENTED: _app_event(Type.APP_CONSENTED, lambda d: _("Access granted to %(app)s")),
    Type.APP_TOKEN_ISSUED: _app_event(Type.APP_TOKEN_ISSUED, lambda d: _("%(app)s received a token")),
    Type.APP_TOKEN_REFRESHED: _app_event(Type.APP_TOKEN_REFRESHED, lambda d: _("%(app)s renewed its token")),
    Type.APP_REVOKED: _app_event(Type.APP_REVOKED, _app_revoked),
    Type.APP_CODE_REPLAYED: _app_event(Type.APP_CODE_REPLAYED, lambda d: _(
        "A sign-in code for %(app)s was used twice: the tokens it gave were revoked")),
    Type.APP_SIGNED_OUT: _app_event(Type.APP_SIGNED_OUT, lambda d: _("Signed out from %(app)s")),
}

# Actions an admin or the operator takes on a user: say who, and why when a reason was given.
_BY_OTHERS = (Type.ADMIN_DISABLED_TWO_FACTOR, Type.OPERATOR_DISABLED_TWO_FACTOR, Type.RECOVERY_REQUESTED,
              Type.RECOVERY_APPROVED, Type.RECOVERY_PASS_ISSUED)


def _by_whom(event: SecurityEvent, kind: Type, detail: dict) -> str:
    operator = not event.actor_id and event.actor_label == "operator"
    if kind == Type.OPERATOR_DISABLED_TWO_FACTOR or (kind == Type.ADMIN_DISABLED_TWO_FACTOR and operator):
        text = _("Two-factor authentication switched off by the server operator")
    elif kind == Type.ADMIN_DISABLED_TWO_FACTOR:
        text = _("Two-factor authentication switched off by the account admin %(actor)s") % {
            "actor": event.actor_label or "?"}
    else:
        text = _recovery(detail, str(kind.label))
        if operator:
            text += " " + _("by the server operator")
        elif event.actor_label:
            text += " " + _("by %(actor)s") % {"actor": event.actor_label}
    for key, words in (("requested_by", _("requested by %(login)s")),
                       ("approved_by", _("approved by %(login)s"))):
        if isinstance(detail.get(key), str) and detail[key]:
            text += " (" + words % {"login": detail[key]} + ")"
    reason = detail.get("reason")
    if isinstance(reason, str) and reason.strip():
        text += " — " + _("reason: %(reason)s") % {"reason": reason.strip()}
    return text


def describe(event: SecurityEvent) -> str:
    """Say what happened, in words, in the active language: the factor used, codes left, who, why.

    The one description of an event: the security page, the activity pages, the CSV export and
    both APIs (`description`) all show this text.
    """
    detail = event.detail if isinstance(event.detail, dict) else {}
    try:
        kind = Type(event.type)
    except ValueError:  # a type from a newer version: show it as stored
        return event.type
    if kind in _BY_OTHERS:
        return _by_whom(event, kind, detail)
    text = _BY_DETAIL[kind](detail) if kind in _BY_DETAIL else str(kind.label)
    if event.actor_id and event.actor_id != event.user_id and event.actor_label:
        # Done to the user by someone else (an admin made the user, changed a policy): said here,
        # once, so no page adds its own "by …" beside the description.
        text += " " + _("by %(actor)s") % {"actor": event.actor_label}
    return text


# Reading -------------------------------------------------------------------------------------

def event_types() -> list[tuple[str, str]]:
    """Return (type, label) of every kind of event, for a filter to choose from."""
    return list(Type.choices)


def _limit(limit) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def _page(rows, before: int | None, limit: int):
    if before:
        rows = rows.filter(pk__lt=before)
    page = list(rows.order_by("-pk")[: limit + 1])
    next_cursor = page[limit - 1].pk if len(page) > limit else None
    return page[:limit], next_cursor


def own_events(user: User, *, before: int | None = None, limit: int = PAGE_SIZE):
    """Return a page of the user's own events, newest first, and the cursor for older ones."""
    rows = SecurityEvent.objects.filter(user_id=user.pk).select_related("actor")
    return _page(rows, before, _limit(limit))


@dataclass(frozen=True)
class Filters:
    """What an admin narrows the account's log to. `since` is inclusive, `until` exclusive."""

    login: str = ""
    type: str = ""
    since: datetime | None = None
    until: datetime | None = None


def _utc(field: str, moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a time without a zone is read as UTC
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00, before the first representable instant
        _refuse(field, _("That date is out of range."))


def _refuse(field: str, message) -> None:
    raise InvalidInput(message, fields={field: str(message)})


def make_filters(*, login: str = "", type: str = "", since=None, until=None) -> Filters:
    """Check the admin's filters; raise InvalidInput naming the field that is wrong."""
    login = (login or "").strip()
    type = (type or "").strip()
    if len(login) > 150:
        _refuse("user", _("A login is at most 150 characters."))
    if type and type not in Type.values:
        _refuse("type", _("There is no event type “%(type)s”.") % {"type": type[:40]})
    since, until = _utc("since", since), _utc("until", until)
    if since and until and since >= until:
        _refuse("until", _("The start of the period must come before its end."))
    return Filters(login=login, type=type, since=since, until=until)


def _account_rows(admin: User, filters: Filters):
    if not admin.is_account_admin:
        raise NotAccountAdmin()
    # The account is the admin's own, always: no filter can widen it (ASVS 8.2.2).
    rows = SecurityEvent.objects.filter(account_id=admin.account_id).select_related("user", "actor")
    if filters.login:
        rows = rows.filter(user__login__caseless=filters.login, user__account_id=admin.account_id)
    if filters.type:
        rows = rows.filter(type=filters.type)
    if filters.since:
        rows = rows.filter(at__gte=filters.since)
    if filters.until:
        rows = rows.filter(at__lt=filters.until)
    return rows


def account_events(admin: User, filters: Filters = Filters(), *, before: int | None = None,
                   limit: int = PAGE_SIZE):
    """Return a page of the admin's account's events, newest first, and the next cursor."""
    return _page(_account_rows(admin, filters), before, _limit(limit))


# CSV export ----------------------------------------------------------------------------------

def csv_header() -> list[str]:
    """The CSV's column names in the active language (the cells stay as stored: ISO time, type)."""
    return [_("time (UTC)"), _("event type"), _("description"), _("user"), _("done by"),
            _("IP address"), _("browser"), _("user agent")]


def _actor(event: SecurityEvent) -> str:
    if not event.actor_id and event.actor_label == "operator":
        return _("server operator")
    return event.actor_label
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection, OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """Return the value as text a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Line:
    """A file-like object that hands back what csv.writer writes to it."""

    def write(self, value: str) -> str:
        return value


def export_csv(admin: User, filters: Filters = Filters()) -> Iterator[str]:
    """Return the account's filtered events as CSV lines, newest first, read in chunks.

    The permission is checked now, not when the first line is read.
    """
    rows = _account_rows(admin, filters)
    writer = csv.writer(_Line())

    def lines():
        yield writer.writerow(csv_header())
        before = None
        while True:
            page, before = _page(rows, before, EXPORT_CHUNK)
            for event in page:
                yield writer.writerow([safe_cell(v) for v in (
                    iso_utc(event.at), event.type, describe(event),
                    event.user.login if event.user is not None else "",
                    _actor(event), event.ip or "", browser_name(event.user_agent), event.user_agent,
                )])
            if before is None:
                return

    return lines()
