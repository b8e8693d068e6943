"""The account's security log over the API, and the user's own events."""

from __future__ import annotations

import pytest

from twostep.services import accounts, audit
from twostep.services.audit import Origin, Type

from ..conftest import ORIGIN, PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

URL = "/account/security-events"


@pytest.fixture
def outsider(account):
    accounts.create_account("Globex", "globex-admin", "admin@globex.example", PASSWORD)
    return accounts.create_user("outsider", "Globex", "outsider@globex.example", PASSWORD)


def test_account_events_shape(api, admin, member):
    audit.record(Type.BACKUP_CODE_USED, user=member, actor=member, origin=ORIGIN, remaining=5)
    api.sign_in("admin")
    response = api.get(URL, {"type": "backup_code_used"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next"] is None
    [event] = body["events"]
    assert set(event) == {"id", "type", "at", "ip", "user_agent", "actor", "user", "description"}
    assert event["type"] == "backup_code_used" and event["user"] == "member"
    assert event["actor"] == "member" and event["ip"] == "192.0.2.10" and event["user_agent"] == "pytest"
    assert event["description"] == "Backup code used to sign in; 5 codes left"


def test_account_events_never_show_another_account(api, admin, outsider):
    audit.record(Type.SIGN_IN, user=outsider, actor=outsider, origin=ORIGIN, method="password")
    api.sign_in("admin")
    everything = api.get(URL, {"limit": 200}).json()["events"]
    assert everything and all(e["user"] != "outsider" for e in everything)
    assert api.get(URL, {"user": "outsider"}).json() == {"events": [], "next": None}
    assert api.get(URL, {"user": "globex-admin"}).json() == {"events": [], "next": None}


def test_account_events_filter_by_user_type_and_period(api, admin, member, clock):
    audit.record(Type.SIGN_IN, user=member, actor=member, origin=ORIGIN, method="totp")
    clock.advance(86400)
    later = audit.record(Type.SIGN_IN, user=member, actor=member, origin=ORIGIN, method="backup_code")
    audit.record(Type.SIGN_IN, user=admin, actor=admin, origin=ORIGIN, method="password")
    api.sign_in("admin")
    since = later.at.replace(tzinfo=None).isoformat()  # no zone: UTC
    events = api.get(URL, {"user": "member", "type": "sign_in", "since": since}).json()["events"]
    assert [e["id"] for e in events] == [later.pk]
    until = api.get(URL, {"user": "member", "type": "sign_in", "until": later.at.isoformat()}).json()
    assert [e["description"] for e in until["events"]] == ["Signed in with a code from the authenticator app"]


def test_account_events_page_without_duplicates_or_gaps(api, admin, member):
    for n in range(9):
        audit.record(Type.SIGN_IN, user=member, actor=member, origin=Origin(ip=f"192.0.2.{n + 1}"),
                     method="totp")
    api.sign_in("admin")
    seen, cursor = [], None
    while True:
        body = api.get(URL, {"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        seen += [e["id"] for e in body["events"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert len(seen) >= 9 + 2


def test_account_events_refuse_non_admins_and_strangers(api, make_api, member):
    assert_error(api.get(URL), 401, "not_authenticated")
    api.sign_in("member")
    assert_error(api.get(URL), 403, "not_account_admin")


@pytest.mark.parametrize(("params", "field"), [
    ({"type": "nonsense"}, "type"),
    ({"since": "yesterday"}, "since"),
    ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ({"cursor": "0"}, "cursor"),
    ({"cursor": str(2**64)}, "cursor"),
    ({"limit": "1000"}, "limit"),
    ({"user": "x" * 151}, "user"),
    ({"since": "0001-01-01T00:00:00+05:00"}, "since"),
    ({"until": "9999-12-31T23:59:59-05:00"}, "until"),
    ({"type": "x" * 41}, "type"),
])
def test_account_events_bad_filters_are_readable_422(api, admin, params, field):
    api.sign_in("admin")
    body = assert_error(api.get(URL, params), 422, "invalid_input")
    assert field in body["fields"], body


def test_own_events_keep_their_shape(api, member):
    audit.record(Type.SIGN_IN, user=member, actor=member, origin=ORIGIN, method="totp")
    api.sign_in("member")
    body = api.get("/me/security-events").json()
    assert {"type", "at", "ip", "user_agent", "actor"} <= set(body["events"][0])
    assert "next" in body


def test_openapi_lists_the_account_events(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert "/api/v1/account/security-events" in paths
