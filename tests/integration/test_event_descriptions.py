"""One description per event: the security page, the activity pages and both APIs say the same."""

from __future__ import annotations

import html
import re

import pytest
from django.utils import translation

from twostep.models import User
from twostep.services import accounts, activity, audit
from twostep.services.audit import Type

from ..conftest import ORIGIN
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english_afterwards():
    """A page in Russian leaves Russian active in this thread; the next test starts in English."""
    yield
    translation.activate("en")

# What a user's log holds after a few weeks, each with the detail that makes its sentence.
EVENTS = [
    (Type.SIGN_IN, {"method": "webauthn"}),
    (Type.AUTHENTICATOR_ADDED, {"authenticator": "YubiKey", "kind": "webauthn"}),
    (Type.AUTHENTICATOR_RENAMED, {"authenticator": "Work key", "old_name": "YubiKey"}),
    (Type.AUTHENTICATOR_REMOVED, {"authenticator": "Pixel 8", "kind": "totp"}),
    (Type.BACKUP_CODE_USED, {"remaining": 3, "purpose": "sign_in"}),
    (Type.POLICY_CHANGED, {"require_second_admin": True, "remember_browser_days": 7}),
]


@pytest.fixture
def logged(admin, make_user):
    """The admin's own events (so the account's log shows them too), one by a second admin."""
    other = make_user("second-admin", is_admin=True)
    rows = [audit.record(kind, user=admin, actor=admin, origin=ORIGIN, **detail) for kind, detail in EVENTS]
    rows.append(audit.record(Type.RECOVERY_PASS_ISSUED, user=admin, actor=other, origin=ORIGIN,
                             reason="lost phone"))
    return rows


def page_events(client, path) -> list[str]:
    page = client.get(path).content.decode()
    whats = re.findall(r'<span class="event-what">(.*?)</span>\s*<span class="event-meta">', page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", what)).strip() for what in whats]


def described(logged) -> list[str]:
    return [activity.describe(event) for event in reversed(logged)]


def test_event_reads_the_same_on_every_page_and_in_both_apis(client, api, admin, logged):
    expected = described(logged)
    assert expected[-1] == "Signed in with a security key or passkey"
    assert "Authenticator added: “YubiKey” (security key or passkey)" in expected
    assert "Authenticator “YubiKey” renamed to “Work key”" in expected
    assert "Backup code used to sign in; 3 codes left" in expected
    assert expected[0] == "One-time sign-in pass issued by second-admin — reason: lost phone"

    client.force_login(User.objects.get(pk=admin.pk))
    assert page_events(client, "/security")[:len(expected)] == expected
    assert page_events(client, "/security/activity")[:len(expected)] == expected
    account_log = page_events(client, "/account/activity")
    assert account_log[:len(expected)] == [f"admin: {text}" for text in expected]

    api.sign_in("admin")  # adds a sign-in of its own, the newest event
    mine = [e["description"] for e in api.get("/me/security-events").json()["events"]]
    theirs = [e["description"] for e in api.get("/account/security-events").json()["events"]]
    assert mine[0] == theirs[0] == "Signed in with the password alone (two-factor authentication off)"
    assert mine[1:len(expected) + 1] == theirs[1:len(expected) + 1] == expected


def test_event_reads_the_same_everywhere_in_russian(client, api, admin, logged):
    accounts.set_language(admin, "ru")
    client.force_login(User.objects.get(pk=admin.pk))
    security = page_events(client, "/security")
    own = page_events(client, "/security/activity")
    api.sign_in("admin")
    mine = [e["description"] for e in api.get("/me/security-events").json()["events"]][1:len(logged) + 1]
    theirs = [e["description"] for e in api.get("/account/security-events").json()["events"]][1:len(logged) + 1]
    assert security[:len(logged)] == own[:len(logged)] == mine == theirs
    assert "Аутентификатор добавлен: «YubiKey» (ключ безопасности или ключ доступа)" in mine
    assert "Аутентификатор «YubiKey» переименован в «Work key»" in mine
    assert all(not re.search(r"\b(the|with|added|renamed)\b", text) for text in mine), mine


def test_policy_change_of_several_settings_reads_as_each_of_them(admin):
    event = audit.record(Type.POLICY_CHANGED, user=admin, actor=admin, origin=ORIGIN,
                         require_two_factor_from="2027-03-01", allow_passkeys=False, remember_browser_days=0)
    assert activity.describe(event) == (
        "Two-factor authentication is required from 2027-03-01. Signing in with a passkey alone is no "
        "longer allowed. Browsers are no longer remembered")


@pytest.mark.parametrize(("kind", "detail", "words"), [
    (Type.SIGN_IN, {"method": "passkey"}, "Signed in with a passkey, without a password"),
    (Type.SIGN_IN_FAILED, {"method": "passkey", "reason": "not_allowed"},
     "Passkey sign-in refused: the account does not allow it"),
    (Type.SECOND_FACTOR_FAILED, {"method": "webauthn", "purpose": "sign_in"},
     "Security key or passkey refused after a correct password"),
    (Type.TWO_FACTOR_ENABLED, {"authenticator": "Pixel 8", "kind": "totp"},
     "Two-factor authentication switched on: “Pixel 8” (authenticator app)"),
    (Type.TWO_FACTOR_DISABLED, {"authenticator": "Pixel 8"},
     "Two-factor authentication switched off by removing the last authenticator, “Pixel 8”"),
    (Type.CLONED_KEY_SUSPECTED, {"authenticator": "YubiKey", "sign_count": 3},
     "Security key “YubiKey” refused: it may have been copied"),
])
def test_describe_names_the_method_and_the_authenticator(member, kind, detail, words):
    assert activity.describe(audit.record(kind, user=member, actor=member, origin=ORIGIN, **detail)) == words
