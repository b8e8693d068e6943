"""Security activity pages: the user's own log, the account admin's log, the CSV export."""

from __future__ import annotations

import csv
import io

import pytest

from twostep.models import SecurityEvent
from twostep.services import accounts, activity, audit
from twostep.services.audit import Origin, Type

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db


def force_login(client, user):
    user.refresh_from_db()
    client.force_login(user)


@pytest.fixture
def outsider(account):
    accounts.create_account("Globex", "globex-admin", "admin@globex.example", PASSWORD)
    return accounts.create_user("outsider", "Globex", "outsider@globex.example", PASSWORD)


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_security_page_links_to_all_activity(client, member):
    force_login(client, member)
    page = client.get("/security").content.decode()
    assert 'href="/security/activity"' in page


def test_own_activity_shows_descriptions_of_the_users_events_only(client, member, admin):
    audit.record(Type.BACKUP_CODE_USED, user=member, actor=member, origin=ORIGIN, remaining=4)
    audit.record(Type.SIGN_IN, user=admin, actor=admin, origin=Origin(ip="198.51.100.7"), method="password")
    force_login(client, member)
    response = client.get("/security/activity")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Backup code used to sign in; 4 codes left" in page and "192.0.2.10" in page
    assert "198.51.100.7" not in page


def test_own_activity_pages_with_a_cursor(client, member):
    for n in range(activity.PAGE_SIZE + 3):
        audit.record(Type.SIGN_IN, user=member, actor=member, origin=Origin(ip=f"192.0.2.{n + 1}"),
                     method="totp")
    force_login(client, member)
    first = client.get("/security/activity").content.decode()
    assert "Older events" in first
    cursor = activity.own_events(member)[1]
    assert f'href="/security/activity?before={cursor}"' in first
    second = client.get("/security/activity", {"before": cursor}).content.decode()
    assert "Newest events" in second and "Older events" not in second
    assert "from 192.0.2.1<" in second and "from 192.0.2.53<" not in second
    assert "from 192.0.2.53<" in first and "from 192.0.2.1<" not in first


def test_own_activity_ignores_a_bad_cursor(client, member):
    force_login(client, member)
    assert client.get("/security/activity", {"before": "x"}).status_code == 200
    assert client.get("/security/activity", {"before": str(2**70)}).status_code == 200


def test_own_activity_needs_sign_in(client):
    response = client.get("/security/activity")
    assert response.status_code == 302 and "/login" in response["Location"]


def test_account_activity_is_forbidden_to_non_admins(client, member):
    force_login(client, member)
    for url in ("/account/activity", "/account/activity.csv"):
        response = client.get(url)
        assert response.status_code == 403
        assert "Only an account admin can do this." in response.content.decode()


def test_users_page_links_to_the_account_activity(client, admin):
    force_login(client, admin)
    assert 'href="/account/activity"' in client.get("/account/users").content.decode()


def test_account_activity_shows_own_account_only(client, admin, member, outsider):
    audit.record(Type.SIGN_IN, user=member, actor=member, origin=ORIGIN, method="totp")
    audit.record(Type.SIGN_IN, user=outsider, actor=outsider, origin=Origin(ip="203.0.113.9"),
                 method="password")
    force_login(client, admin)
    page = client.get("/account/activity").content.decode()
    assert "Signed in with a code from the authenticator app" in page
    assert "outsider" not in page and "203.0.113.9" not in page
    filtered = client.get("/account/activity", {"user": "outsider"}).content.decode()
    assert "203.0.113.9" not in filtered and "No event matches." in filtered


def test_account_activity_filters_and_links_the_csv_with_them(client, admin, member):
    audit.record(Type.BACKUP_CODE_USED, user=member, actor=member, origin=ORIGIN, remaining=7)
    audit.record(Type.SIGN_IN, user=admin, actor=admin, origin=ORIGIN, method="password")
    force_login(client, admin)
    response = client.get("/account/activity", {"user": "member", "type": "backup_code_used",
                                                "since": "2000-01-01", "until": "2999-12-31"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "7 codes left" in page and "Signed in with the password alone" not in page
    assert ('href="/account/activity.csv?user=member&amp;type=backup_code_used&amp;since=2000-01-01'
            '&amp;until=2999-12-31"') in page


def test_account_activity_date_range_includes_the_whole_last_day(client, admin, member):
    stamped = audit.record(Type.SIGN_IN, user=member, actor=member, origin=ORIGIN, method="totp")
    day = stamped.at.date().isoformat()
    force_login(client, admin)
    rows = csv_rows(client.get("/account/activity.csv", {"since": day, "until": day, "type": "sign_in"}))
    assert len(rows) == 2
    rows = csv_rows(client.get("/account/activity.csv", {"until": "2000-01-01"}))
    assert len(rows) == 1


def test_account_activity_refuses_a_bad_filter_readably(client, admin):
    force_login(client, admin)
    response = client.get("/account/activity", {"type": "nonsense", "since": "yesterday"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid date." in page and "Select a valid choice." in page
    reversed_dates = client.get("/account/activity", {"since": "2026-02-01", "until": "2026-01-01"})
    assert reversed_dates.status_code == 400
    assert "must not be before the start date" in reversed_dates.content.decode()
    assert client.get("/account/activity.csv", {"type": "nonsense"}).status_code == 400


def test_account_activity_takes_the_first_and_last_representable_days(client, admin):
    force_login(client, admin)
    for params in ({"since": "0001-01-01"}, {"until": "9999-12-31"}):
        assert client.get("/account/activity", params).status_code == 200
        assert client.get("/account/activity.csv", params).status_code == 200


def test_account_activity_pages_keep_the_filters(client, admin, member):
    for _ in range(activity.PAGE_SIZE + 2):
        audit.record(Type.SIGN_IN, user=member, actor=member, origin=ORIGIN, method="totp")
    force_login(client, admin)
    first = client.get("/account/activity", {"type": "sign_in"}).content.decode()
    cursor = activity.account_events(admin, activity.make_filters(type="sign_in"))[1]
    assert f'href="/account/activity?type=sign_in&amp;before={cursor}"' in first
    second = client.get("/account/activity", {"type": "sign_in", "before": cursor}).content.decode()
    assert second.count("Signed in with a code from the authenticator app") == 2  # the two oldest


def test_account_csv_is_streamed_with_columns_and_defused_cells(client, admin, member, outsider):
    audit.record(Type.ADMIN_DISABLED_TWO_FACTOR, user=member, actor=admin,
                 origin=Origin(ip="192.0.2.3", user_agent="=cmd|' /C calc'!A0"), reason="-lost phone")
    audit.record(Type.SIGN_IN, user=outsider, actor=outsider, origin=ORIGIN, method="password")
    force_login(client, admin)
    response = client.get("/account/activity.csv", {"type": "admin_disabled_two_factor"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="security-activity-')
    rows = csv_rows(response)
    assert rows[0] == ["time (UTC)", "event type", "description", "user", "done by", "IP address", "browser",
                       "user agent"]
    assert len(rows) == 2
    at, kind, description, user, actor, ip, _browser, agent = rows[1]
    assert at.endswith("Z") and "T" in at
    assert (kind, user, actor, ip) == ("admin_disabled_two_factor", "member", "admin", "192.0.2.3")
    assert "reason: -lost phone" in description
    assert agent == "'=cmd|' /C calc'!A0"


def test_account_csv_never_holds_another_account(client, admin, outsider):
    audit.record(Type.SIGN_IN, user=outsider, actor=outsider, origin=ORIGIN, method="password")
    force_login(client, admin)
    for params in ({}, {"user": "outsider"}):
        rows = csv_rows(client.get("/account/activity.csv", params))
        assert all(row[3] != "outsider" for row in rows[1:])
    assert SecurityEvent.objects.filter(user=outsider).exists()


def test_account_csv_header_is_in_the_readers_language(client, admin, member):
    audit.record(Type.SIGN_IN, user=member, actor=member, origin=Origin.command_line(), method="password")
    admin.language = "ru"
    admin.save(update_fields=["language"])
    force_login(client, admin)
    rows = csv_rows(client.get("/account/activity.csv"))
    assert rows[0] == ["время (UTC)", "тип события", "описание", "пользователь", "кто сделал", "IP-адрес",
                       "браузер", "user agent (строка браузера)"]
    assert rows[1][1] == "sign_in"  # the cells a program reads stay as stored
    assert rows[1][6:] == ["командная строка twostep", "twostep command line"]


def test_activity_pages_name_the_browser_not_the_raw_header(client, admin, member):
    agent = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/126.0.0.0 Mobile Safari/537.36")
    audit.record(Type.SIGN_IN, user=member, actor=member, origin=Origin(ip="192.0.2.1", user_agent=agent),
                 method="totp")
    force_login(client, member)
    own = client.get("/security/activity").content.decode()
    force_login(client, admin)
    log = client.get("/account/activity").content.decode()
    for page in (own, log):
        assert "Chrome on Android" in page
        assert ">" + agent not in page  # the raw header only in the title, never as the text


def test_an_event_reads_the_same_on_the_users_page_and_the_admins_log(client, admin, member):
    audit.record(Type.ADMIN_DISABLED_TWO_FACTOR, user=member, actor=admin, origin=ORIGIN, reason="lost phone")
    words = "Two-factor authentication switched off by the account admin admin — reason: lost phone"
    force_login(client, member)
    own = client.get("/security/activity").content.decode()
    force_login(client, admin)
    log = client.get("/account/activity").content.decode()
    assert words in own and f"member: {words}</span>" in log
    assert "· by admin" not in log  # no second "by …" beside the description
