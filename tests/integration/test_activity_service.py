"""Security activity as a service: descriptions, who sees what, filters, paging, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from twostep.models import SecurityEvent
from twostep.services import accounts, activity, audit
from twostep.services.audit import Origin, Type
from twostep.services.errors import InvalidInput, NotAccountAdmin

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider(account):
    accounts.create_account("Globex", "globex-admin", "admin@globex.example", PASSWORD)
    return accounts.create_user("outsider", "Globex", "outsider@globex.example", PASSWORD)


def event(type, user, **detail):
    return audit.record(type, user=user, actor=detail.pop("actor", user), origin=ORIGIN, **detail)


def read_csv(lines) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines))))


def own_ids(user, **kwargs):
    return [e.pk for e in activity.own_events(user, **kwargs)[0]]


# Descriptions --------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "words"), [
    ("totp", "authenticator app"),
    ("backup_code", "backup code"),
    ("password", "password alone"),
    ("remembered_browser", "remembered browser"),
    ("totp_setup", "setting up an authenticator"),
    ("webauthn_setup", "registering a security key or passkey"),
])
def test_describe_sign_in_names_the_factor(member, method, words):
    assert words in activity.describe(event(Type.SIGN_IN, member, method=method))


def test_describe_backup_code_use_says_how_many_are_left(member):
    text = activity.describe(event(Type.BACKUP_CODE_USED, member, remaining=3, purpose="sign_in"))
    assert text == "Backup code used to sign in; 3 codes left"
    one = activity.describe(event(Type.BACKUP_CODE_USED, member, remaining=1, purpose="disable"))
    assert one == "Backup code used to confirm a change; 1 code left"


def test_describe_failure_after_a_correct_password(member):
    text = activity.describe(event(Type.SECOND_FACTOR_FAILED, member, method="totp", purpose="sign_in",
                                   failures=4))
    assert text == "Wrong app code after a correct password (4 in a row)"
    backup = activity.describe(event(Type.SECOND_FACTOR_FAILED, member, method="backup_code",
                                     purpose="sign_in", failures=1))
    assert backup == "Wrong backup code after a correct password"


def test_describe_admin_and_operator_actions_with_the_reason(admin, member):
    by_admin = event(Type.ADMIN_DISABLED_TWO_FACTOR, member, actor=admin, reason="lost phone")
    assert activity.describe(by_admin) == (
        "Two-factor authentication switched off by the account admin admin — reason: lost phone")
    issued = event(Type.RECOVERY_PASS_ISSUED, member, actor=admin, reason="new phone")
    assert activity.describe(issued) == "One-time sign-in pass issued by admin — reason: new phone"
    by_operator = audit.record(Type.OPERATOR_DISABLED_TWO_FACTOR, user=member,
                               origin=Origin.command_line(), reason="ticket 42")
    text = activity.describe(by_operator)
    assert "by the server operator" in text and "reason: ticket 42" in text


def test_describe_codes_policy_and_two_factor_changes(admin, member):
    assert "old ones stopped working" in activity.describe(event(Type.BACKUP_CODES_GENERATED, member))
    assert activity.describe(event(Type.POLICY_CHANGED, admin, require_two_factor=True)) == (
        "The account now requires two-factor authentication")
    assert activity.describe(event(Type.TWO_FACTOR_ENABLED, member)) == (
        "Two-factor authentication switched on")
    assert activity.describe(event(Type.THROTTLED, member, step="password")).startswith("Password attempts")


def test_describe_sessions_browsers_passwords_and_reminders(admin, member):
    assert activity.describe(event(Type.SESSION_ENDED, member, browser="Firefox on Linux",
                                   session_ip="192.0.2.4")) == (
        "A session was signed out: Firefox on Linux from 192.0.2.4")
    assert activity.describe(event(Type.OTHER_SESSIONS_ENDED, member, count=2)) == (
        "Signed out everywhere else (2 sessions)")
    assert activity.describe(event(Type.BROWSER_REMEMBERED, member, days=30)) == "Browser remembered for 30 days"
    assert activity.describe(event(Type.BROWSERS_FORGOTTEN, member, count=1)) == "1 remembered browser forgotten"
    assert activity.describe(event(Type.PASSWORD_CHANGED, member, via="reset")) == (
        "Password changed with a reset link")
    assert "from 2027-01-01" in activity.describe(event(Type.REMINDER_SENT, member, deadline="2027-01-01",
                                                        days_before=7))
    approved = event(Type.ADMIN_DISABLED_TWO_FACTOR, member, actor=admin, reason="lost", approved_by="carol")
    assert "(approved by carol)" in activity.describe(approved)


def test_describe_every_type_without_detail(member):
    for kind in Type:
        assert activity.describe(event(kind, member)), kind


def test_describe_keeps_an_unknown_type_as_stored(member):
    stray = SecurityEvent(type="from_the_future", at=datetime.now(UTC), detail=[])
    assert activity.describe(stray) == "from_the_future"


# The user's own ------------------------------------------------------------------------------

def test_own_events_are_only_the_users(admin, member, outsider):
    mine = event(Type.SIGN_IN, member, method="totp")
    event(Type.SIGN_IN, admin, method="password")
    event(Type.SIGN_IN, outsider, method="password")
    ids = own_ids(member)
    assert ids[0] == mine.pk
    assert set(ids) == set(SecurityEvent.objects.filter(user=member).values_list("pk", flat=True))
    assert len(ids) == 2  # user_created, sign_in


def test_own_events_page_without_duplicates_or_gaps(member):
    for _ in range(12):
        event(Type.SIGN_IN, member, method="totp")
    made = list(SecurityEvent.objects.filter(user=member).values_list("pk", flat=True))
    assert len(made) == 13
    seen, before = [], None
    while True:
        page, before = activity.own_events(member, before=before, limit=5)
        seen += [e.pk for e in page]
        if before is None:
            break
    assert seen == sorted(made, reverse=True)


# The account's log ---------------------------------------------------------------------------

def test_account_events_refuse_a_non_admin(member):
    with pytest.raises(NotAccountAdmin):
        activity.account_events(member)
    with pytest.raises(NotAccountAdmin):
        activity.export_csv(member)


def test_account_events_never_show_another_account(admin, member, outsider):
    ours = {event(Type.SIGN_IN, member).pk, event(Type.SIGN_IN, admin).pk}
    event(Type.SIGN_IN, outsider)
    seen = {e.pk for e in activity.account_events(admin)[0]}
    assert ours <= seen
    assert not any(e.user_id == outsider.pk for e in activity.account_events(admin, limit=200)[0])


def test_account_events_filtered_by_another_accounts_login_match_nothing(admin, outsider):
    event(Type.SIGN_IN, outsider)
    filters = activity.make_filters(login="outsider")
    assert activity.account_events(admin, filters)[0] == []
    assert read_csv(activity.export_csv(admin, filters)) == [activity.csv_header()]


def test_account_events_filter_by_login_ignoring_case(admin, member):
    mine = event(Type.SIGN_IN, member)
    event(Type.SIGN_IN, admin)
    page, _ = activity.account_events(admin, activity.make_filters(login="MEMBER", type="sign_in"))
    assert [e.pk for e in page] == [mine.pk]
    assert {e.user_id for e in activity.account_events(admin, activity.make_filters(login="Member"))[0]} == {
        mine.user_id}


def test_account_events_filter_by_type(admin, member):
    used = event(Type.BACKUP_CODE_USED, member, remaining=9)
    event(Type.SIGN_IN, member)
    page, _ = activity.account_events(admin, activity.make_filters(type="backup_code_used"))
    assert [e.pk for e in page] == [used.pk]


def test_account_events_filter_by_period(admin, member, clock):
    old = event(Type.SIGN_IN, member)
    clock.advance(3 * 86400)
    middle = event(Type.SIGN_IN, member)
    clock.advance(3 * 86400)
    event(Type.SIGN_IN, member)
    filters = activity.make_filters(since=middle.at - timedelta(seconds=1), until=middle.at + timedelta(days=1))
    page, _ = activity.account_events(admin, filters)
    assert [e.pk for e in page] == [middle.pk]
    since_only = activity.make_filters(since=middle.at)
    assert old.pk not in [e.pk for e in activity.account_events(admin, since_only)[0]]


def test_make_filters_reads_a_time_without_zone_as_utc():
    filters = activity.make_filters(since=datetime(2026, 1, 2, 3, 4))
    assert filters.since == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


@pytest.mark.parametrize("kwargs", [
    {"type": "no_such_type"},
    {"since": datetime(2026, 2, 1, tzinfo=UTC), "until": datetime(2026, 1, 1, tzinfo=UTC)},
    {"login": "x" * 151},
    {"since": datetime.fromisoformat("0001-01-01T00:00:00+05:00")},
    {"until": datetime.fromisoformat("9999-12-31T23:59:59-05:00")},
])
def test_make_filters_refuses_bad_filters(kwargs):
    with pytest.raises(InvalidInput):
        activity.make_filters(**kwargs)


def test_account_events_page_stably_while_new_events_arrive(admin, make_user):
    users = [make_user(f"user{n}") for n in range(3)]
    made = {event(Type.SIGN_IN, users[n % 3]).pk for n in range(23)} | {
        e.pk for e in SecurityEvent.objects.filter(account=admin.account)}
    seen, before = [], None
    while True:
        page, before = activity.account_events(admin, before=before, limit=7)
        seen += [e.pk for e in page]
        event(Type.SIGN_OUT, users[0])  # newer events never shift the pages still to come
        if before is None:
            break
    assert seen == sorted(made, reverse=True)
    assert len(seen) == len(set(seen))


# CSV -----------------------------------------------------------------------------------------

def test_export_csv_columns_and_values(admin, member):
    used = event(Type.BACKUP_CODE_USED, member, remaining=2)
    rows = read_csv(activity.export_csv(admin, activity.make_filters(login="member",
                                                                     type="backup_code_used")))
    assert rows[0] == ["time (UTC)", "event type", "description", "user", "done by", "IP address", "browser",
                       "user agent"]
    assert rows[1:] == [[used.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "backup_code_used",
                         "Backup code used to sign in; 2 codes left", "member", "member",
                         "192.0.2.10", "Unknown browser", "pytest"]]


def test_export_csv_defuses_formula_cells(admin, member):
    audit.record(Type.ADMIN_DISABLED_TWO_FACTOR, user=member, actor=admin,
                 origin=Origin(ip="192.0.2.1", user_agent='=HYPERLINK("http://evil.example")'),
                 reason="x")
    audit.record(Type.SIGN_IN, user=member, origin=Origin(user_agent="+1"), method="totp")
    audit.record(Type.SIGN_IN, user=member, origin=Origin(user_agent="-2"), method="totp")
    audit.record(Type.SIGN_IN, user=member, origin=Origin(user_agent="@SUM(A1)"), method="totp")
    agents = [row[7] for row in read_csv(activity.export_csv(admin))[1:]]
    assert {"'@SUM(A1)", "'-2", "'+1", "'=HYPERLINK(\"http://evil.example\")"} <= set(agents)
    assert activity.safe_cell("plain") == "plain" and activity.safe_cell(None) == ""


def test_export_csv_reads_every_chunk(admin, member, monkeypatch):
    monkeypatch.setattr(activity, "EXPORT_CHUNK", 4)
    for _ in range(10):
        event(Type.SIGN_IN, member)
    rows = read_csv(activity.export_csv(admin, activity.make_filters(type="sign_in")))
    assert len(rows) == 11


def test_describe_names_who_else_did_it_once(admin, member):
    made = audit.record(Type.USER_CREATED, user=member, actor=admin, origin=ORIGIN)
    own = audit.record(Type.SIGN_IN, user=member, actor=member, origin=ORIGIN, method="totp")
    disabled = audit.record(Type.ADMIN_DISABLED_TWO_FACTOR, user=member, actor=admin, origin=ORIGIN, reason="x")
    assert activity.describe(made) == "User created by admin"
    assert "by" not in activity.describe(own)
    assert activity.describe(disabled).count("admin") == 2  # "…by the account admin admin": one "by"
    assert activity.describe(disabled).count(" by ") == 1


def test_describe_names_the_kind_only_when_the_name_does_not_say_it(member):
    default = event(Type.TWO_FACTOR_ENABLED, member, authenticator="Authenticator app", kind="totp")
    named = event(Type.AUTHENTICATOR_ADDED, member, authenticator="Pixel 8", kind="totp")
    assert activity.describe(default) == "Two-factor authentication switched on: “Authenticator app”"
    assert activity.describe(named) == "Authenticator added: “Pixel 8” (authenticator app)"
