"""API: an account that requires 2FA holds a user without it at `setup_required` until set up."""

from __future__ import annotations

import pyotp
import pytest

from twostep.models import Account

from ..conftest import PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

BODY = {"password": PASSWORD, "code": "123456", "reason": "lost phone", "require_two_factor": False,
        "login": "member", "method": "totp"}
CLOSED = [
    ("GET", "/me/security-events"), ("GET", "/account/users"), ("POST", "/me/backup-codes"),
    ("POST", "/me/two-factor/disable"), ("PUT", "/account/policy"),
    ("POST", "/account/users/1/two-factor/disable"), ("POST", "/auth/second-factor"), ("POST", "/auth/login"),
]


@pytest.fixture
def required(admin):
    Account.objects.filter(pk=admin.account_id).update(require_two_factor=True)  # as the policy left it


def set_up(api, clock) -> dict:
    secret = api.post("/me/two-factor/setup", {"password": PASSWORD}).json()["secret"]
    response = api.post("/me/two-factor/confirm", {"code": pyotp.TOTP(secret).at(clock())})
    assert response.status_code == 200, response.content
    return response.json()


def test_login_without_two_factor_when_required_asks_for_setup(api, member, required):
    assert api.login("member").json() == {"stage": "setup_required"}
    session = api.get("/auth/session").json()
    assert session["stage"] == "setup_required" and session["user"]["login"] == "member"
    assert "_auth_user_id" not in api.client.session


@pytest.mark.parametrize(("method", "path"), CLOSED)
def test_setup_required_stage_closes_other_routes(api, member, required, method, path):
    api.login("member")
    response = api.get(path) if method == "GET" else api.send(method, path, BODY)
    assert_error(response, 403, "two_factor_setup_required")


def test_setup_required_stage_may_read_status(api, member, required):
    api.login("member")
    body = api.get("/me/two-factor").json()
    assert body["enabled"] is False and body["required_by_account"] is True


def test_setup_required_stage_may_sign_out(api, member, required):
    api.login("member")
    assert api.post("/auth/logout").status_code == 200
    assert api.stage() == "anonymous"


def test_forced_setup_completes_the_sign_in(api, member, required, clock):
    api.login("member")
    halfway = api.session_cookie()
    body = set_up(api, clock)
    assert body["stage"] == "authenticated" and len(body["backup_codes"]) == 10
    assert api.session_cookie() not in (None, halfway)
    assert "_auth_user_id" in api.client.session
    assert api.stage() == "authenticated"
    assert api.get("/me/security-events").status_code == 200


def test_forced_setup_with_wrong_password_is_refused(api, member, required):
    api.login("member")
    response = api.post("/me/two-factor/setup", {"password": "not the password"})
    assert_error(response, 403, "wrong_password")


def test_signed_in_user_is_held_when_account_starts_requiring(api, member, admin, clock):
    api.sign_in("member")
    Account.objects.filter(pk=admin.account_id).update(require_two_factor=True)  # as the policy left it
    assert api.stage() == "setup_required"
    assert_error(api.get("/me/security-events"), 403, "two_factor_setup_required")
    body = set_up(api, clock)
    assert body["stage"] == "authenticated"
    assert api.stage() == "authenticated"
    assert api.get("/me/security-events").status_code == 200


def test_admin_without_two_factor_cannot_turn_policy_on_and_is_not_held(api, admin):
    api.sign_in("admin")
    assert_error(api.put("/account/policy", {"require_two_factor": True}), 403, "admin_two_factor_required")
    assert api.stage() == "authenticated"
    assert api.get("/account/users").status_code == 200


def test_admin_with_two_factor_turning_policy_on_is_not_held(api, admin, admin_factor):
    api.sign_in("admin", enrolled=admin_factor)
    assert api.put("/account/policy", {"require_two_factor": True}).status_code == 200
    assert api.get("/account/users").status_code == 200


def test_user_with_two_factor_is_not_held(api, enrolled, required):
    api.sign_in("member", enrolled=enrolled)
    assert api.get("/me/security-events").status_code == 200
