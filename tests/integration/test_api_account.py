"""API /account: the admin's user list, switching a user's 2FA off, the account's policy."""

from __future__ import annotations

import datetime

import pytest

from twostep.core import clock as clock_module
from twostep.models import Account, SecurityEvent, User
from twostep.services import accounts

from ..conftest import PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def stranger(db):
    """A user with 2FA in another account, and that account's admin."""
    accounts.create_account("Globex", "globex-admin", "admin@globex.example", PASSWORD)
    return accounts.create_user("stranger", "Globex", "stranger@globex.example", PASSWORD)


def disable(api, user_id, reason="lost phone", password=PASSWORD):
    return api.post(f"/account/users/{user_id}/two-factor/disable", {"reason": reason, "password": password})


# GET /account/users -------------------------------------------------------------------------

def test_users_lists_own_account(api, admin, enrolled, stranger):
    api.sign_in("admin")
    body = api.get("/account/users").json()
    assert body["next"] is None
    assert [u["login"] for u in body["users"]] == ["admin", "member"]
    row = body["users"][1]
    assert row == {
        "id": enrolled.user.pk, "login": "member", "email": "member@acme.example", "is_admin": False,
        "two_factor_enabled": True, "backup_codes_remaining": 10, "last_login": None,
        "authenticators": [{"kind": "totp", "name": "Authenticator app"}],
    }
    assert body["users"][0]["is_admin"] is True and body["users"][0]["last_login"]


def test_users_pages_with_cursor(api, admin, make_user):
    for login in ("bob", "carol", "dave"):
        make_user(login)
    api.sign_in("admin")
    first = api.get("/account/users", {"limit": 2}).json()
    assert [u["login"] for u in first["users"]] == ["admin", "bob"] and first["next"] == "bob"
    second = api.get("/account/users", {"limit": 2, "cursor": first["next"]}).json()
    assert [u["login"] for u in second["users"]] == ["carol", "dave"]


def test_users_filters_by_query(api, admin, make_user):
    make_user("bob")
    make_user("carol", email="c@elsewhere.example")
    api.sign_in("admin")
    assert [u["login"] for u in api.get("/account/users", {"q": "elsewhere"}).json()["users"]] == ["carol"]


def test_users_for_non_admin_is_forbidden(api, member):
    api.sign_in("member")
    assert_error(api.get("/account/users"), 403, "not_account_admin")


def test_users_when_anonymous_is_401(api):
    assert_error(api.get("/account/users"), 401, "not_authenticated")


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "201"}, {"limit": "many"}, {"q": "x" * 151}])
def test_users_with_bad_query_is_invalid_input(api, admin, params):
    api.sign_in("admin")
    body = assert_error(api.get("/account/users", params), 422, "invalid_input")
    assert next(iter(params)) in body["message"]


# POST /account/users/{id}/two-factor/disable -------------------------------------------------

def test_admin_disable_switches_users_two_factor_off(api, make_api, admin, enrolled, admin_factor):
    signed_in = make_api().sign_in("member", enrolled=enrolled)
    api.sign_in("admin", enrolled=admin_factor)
    response = disable(api, enrolled.user.pk)
    assert response.status_code == 200 and response.json() == {"enabled": False}
    assert_error(signed_in.get("/me/two-factor"), 401, "not_authenticated")  # sessions ended
    event = SecurityEvent.objects.filter(type="admin_disabled_two_factor").get()
    assert event.user_id == enrolled.user.pk and event.actor_id == admin.pk
    assert make_api().login("member").json() == {"stage": "authenticated"}


def test_admin_disable_with_wrong_password_is_refused(api, admin, enrolled, admin_factor):
    api.sign_in("admin", enrolled=admin_factor)
    assert_error(disable(api, enrolled.user.pk, password="not the password"), 403, "wrong_password")


def test_admin_disable_without_reason_is_invalid_input(api, admin, enrolled, admin_factor):
    api.sign_in("admin", enrolled=admin_factor)
    assert_error(disable(api, enrolled.user.pk, reason="  "), 422, "invalid_input")


def test_admin_disable_for_non_admin_is_forbidden(api, make_user, enrolled):
    make_user("other")
    api.sign_in("other")
    assert_error(disable(api, enrolled.user.pk), 403, "not_account_admin")


def test_admin_disable_for_other_accounts_user_is_not_found(api, admin, stranger, enroll):
    enroll(stranger)
    api.sign_in("admin")
    other_account = assert_error(disable(api, stranger.pk), 404, "not_found")
    missing = assert_error(disable(api, 999_999), 404, "not_found")
    assert other_account == missing  # no telling "elsewhere" from "nowhere"
    assert User.objects.get(pk=stranger.pk).authenticators.exists()


@pytest.mark.parametrize("user_id", ["abc", "1.0", "-1", "0x1", str(10**30), "9" * 5000, "%00", "%E2%80%8B"])
def test_admin_disable_with_odd_id_is_not_found(api, admin, enrolled, user_id):
    api.sign_in("admin")
    assert_error(disable(api, user_id), 404, "not_found")


def test_admin_disable_own_two_factor_is_conflict(api, admin, enroll):
    enrolled_admin = enroll(admin)
    api.sign_in("admin", enrolled=enrolled_admin)
    assert_error(disable(api, admin.pk), 409, "conflict")


def test_admin_disable_for_user_without_two_factor_is_conflict(api, admin, member, admin_factor):
    api.sign_in("admin", enrolled=admin_factor)
    assert_error(disable(api, member.pk), 409, "two_factor_disabled")


# PUT /account/policy ------------------------------------------------------------------------

def test_policy_requires_two_factor(api, admin, admin_factor):
    api.sign_in("admin", enrolled=admin_factor)
    response = api.put("/account/policy", {"require_two_factor": True})
    assert response.status_code == 200 and response.json() == {"require_two_factor": True}
    assert Account.objects.get(pk=admin.account_id).require_two_factor is True


def test_policy_requiring_two_factor_of_an_admin_without_it_is_refused(api, admin):
    api.sign_in("admin")
    body = assert_error(api.put("/account/policy", {"require_two_factor": True}), 403, "admin_two_factor_required")
    assert list(body["fields"]) == ["require_two_factor"]
    assert Account.objects.get(pk=admin.account_id).require_two_factor is False
    assert not SecurityEvent.objects.filter(type="policy_changed").exists()
    assert api.get("/account/users").status_code == 200  # not held at setup


def test_policy_deadline_of_today_for_an_admin_without_two_factor_is_refused(api, admin, clock):
    api.sign_in("admin")
    today = clock_module.utcnow().date()
    body = assert_error(api.put("/account/policy", {"require_two_factor_from": today.isoformat()}),
                        403, "admin_two_factor_required")
    assert list(body["fields"]) == ["require_two_factor_from"]
    # A later deadline gives the admin the same grace as everyone.
    later = (today + datetime.timedelta(days=7)).isoformat()
    assert api.put("/account/policy", {"require_two_factor_from": later}).status_code == 200


def test_policy_can_be_switched_back_off(api, admin, enroll):
    enrolled_admin = enroll(admin)
    api.sign_in("admin", enrolled=enrolled_admin)
    api.put("/account/policy", {"require_two_factor": True})
    assert api.put("/account/policy", {"require_two_factor": False}).json() == {"require_two_factor": False}


def test_policy_for_non_admin_is_forbidden(api, member):
    api.sign_in("member")
    assert_error(api.put("/account/policy", {"require_two_factor": True}), 403, "not_account_admin")


@pytest.mark.parametrize("value", ["yes", 1, None, "true", [True]])
def test_policy_with_non_boolean_is_invalid_input(api, admin, value):
    api.sign_in("admin")
    body = assert_error(api.put("/account/policy", {"require_two_factor": value}), 422, "invalid_input")
    assert "require_two_factor" in body["message"]


def test_policy_by_post_is_method_not_allowed(api, admin):
    api.sign_in("admin")
    response = api.post("/account/policy", {"require_two_factor": True})
    assert_error(response, 405, "method_not_allowed")
    assert "PUT" in response["Allow"]


# PUT /account/policy is all or nothing ------------------------------------------------------

POLICY_BEFORE = {"require_two_factor": False, "require_two_factor_from": None, "remember_browser_days": 0,
                 "require_second_admin": False, "allow_passkeys": False}


def policy_of(admin) -> dict:
    account = Account.objects.get(pk=admin.account_id)
    return {field: getattr(account, field) for field in POLICY_BEFORE}


@pytest.mark.parametrize(("body", "wrong"), [
    ({"require_second_admin": True, "remember_browser_days": None}, "remember_browser_days"),
    ({"require_two_factor": True, "allow_passkeys": None}, "allow_passkeys"),
    ({"remember_browser_days": 30, "allow_passkeys": True, "require_two_factor": None}, "require_two_factor"),
    ({"allow_passkeys": True, "require_second_admin": True, "require_two_factor_from": "2001-01-01"},
     "require_two_factor_from"),
    ({"require_two_factor_from": None, "require_second_admin": None}, "require_second_admin"),
])
def test_policy_with_one_wrong_field_changes_nothing(api, admin, body, wrong):
    api.sign_in("admin")
    events = SecurityEvent.objects.filter(type="policy_changed").count()
    answer = assert_error(api.put("/account/policy", body), 422, "invalid_input")
    assert list(answer["fields"]) == [wrong]
    assert answer["fields"][wrong] in answer["message"]
    assert policy_of(admin) == POLICY_BEFORE
    assert SecurityEvent.objects.filter(type="policy_changed").count() == events


def test_policy_changes_every_field_sent_with_one_event(api, admin, admin_factor, clock):
    api.sign_in("admin", enrolled=admin_factor)
    day = clock_module.utcnow().date().isoformat()
    body = {"require_second_admin": True, "remember_browser_days": 30, "allow_passkeys": True,
            "require_two_factor_from": day, "require_two_factor": False}
    assert api.put("/account/policy", body).json() == body
    event = SecurityEvent.objects.get(type="policy_changed")
    # require_two_factor was False already: the event says what changed, nothing else.
    assert event.detail == {"require_second_admin": True, "remember_browser_days": 30, "allow_passkeys": True,
                            "require_two_factor_from": day}


def test_policy_sent_as_it_is_records_no_event(api, admin):
    api.sign_in("admin")
    assert api.put("/account/policy", {"require_two_factor": False, "allow_passkeys": False}).status_code == 200
    assert not SecurityEvent.objects.filter(type="policy_changed").exists()
