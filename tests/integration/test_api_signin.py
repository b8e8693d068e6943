"""API sign-in: session stage, CSRF, password step, second step, throttles, sign-out."""

from __future__ import annotations

import pytest

from twostep.core import backup_codes
from twostep.models import User

from ..conftest import PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def is_signed_in(api) -> bool:
    return "_auth_user_id" in api.client.session


# GET /auth/session ------------------------------------------------------------------------

def test_session_when_anonymous_sets_csrf_cookie(api):
    response = api.get("/auth/session")
    assert response.status_code == 200
    assert response.json() == {"stage": "anonymous", "user": None}
    assert response.cookies["csrftoken"].value
    assert "no-store" in response["Cache-Control"]


def test_session_when_signed_in_shows_user(api, member):
    api.sign_in("member")
    body = api.get("/auth/session").json()
    assert body["stage"] == "authenticated"
    assert body["user"] == {
        "id": member.pk, "login": "member", "email": "member@acme.example", "is_admin": False,
        "account": {"id": member.account_id, "name": "Acme", "require_two_factor": False},
    }


def test_session_at_second_factor_shows_pending_user(api, enrolled):
    api.login("member")
    body = api.get("/auth/session").json()
    assert body["stage"] == "second_factor"
    assert body["user"]["login"] == "member"
    assert not is_signed_in(api)


# CSRF -----------------------------------------------------------------------------------------

def test_login_without_csrf_token_is_refused(api, member):
    api.csrf_token()
    response = api.post("/auth/login", {"login": "member", "password": PASSWORD}, csrf=False)
    body = assert_error(response, 403, "csrf_failed")
    assert body["reason"]
    assert not is_signed_in(api)


def test_login_with_wrong_csrf_token_is_refused(api, member):
    api.csrf_token()
    response = api.post("/auth/login", {"login": "member", "password": PASSWORD}, csrf="x" * 32)
    assert_error(response, 403, "csrf_failed")


def test_login_without_csrf_cookie_is_refused(api, member):
    response = api.post("/auth/login", {"login": "member", "password": PASSWORD}, csrf="a" * 64)
    assert_error(response, 403, "csrf_failed")


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/auth/second-factor"), ("POST", "/auth/logout"), ("POST", "/me/two-factor/setup"),
    ("POST", "/me/two-factor/confirm"), ("POST", "/me/backup-codes"), ("POST", "/me/two-factor/disable"),
    ("POST", "/account/users/1/two-factor/disable"), ("PUT", "/account/policy"),
])
def test_unsafe_request_without_csrf_token_is_refused(api, member, method, path):
    api.sign_in("member")
    assert_error(api.send(method, path, {}, csrf=False), 403, "csrf_failed")
    assert is_signed_in(api)


def test_csrf_token_changes_at_sign_in(api, member):
    before = api.csrf_token()
    api.sign_in("member")
    after = api.csrf_token()
    assert after != before
    assert_error(api.post("/auth/logout", csrf=before), 403, "csrf_failed")


# POST /auth/login -------------------------------------------------------------------------------

def test_login_without_two_factor_signs_in(api, member):
    response = api.login("member")
    assert response.status_code == 200
    assert response.json() == {"stage": "authenticated"}
    assert is_signed_in(api)
    assert User.objects.get(pk=member.pk).last_login is not None


def test_login_ignores_case_of_login(api, member):
    assert api.login("MEMBER").json() == {"stage": "authenticated"}


def test_login_with_wrong_password_is_refused(api, member):
    assert_error(api.login("member", "not the password"), 401, "invalid_credentials")
    assert api.stage() == "anonymous"


def test_login_with_unknown_login_answers_as_wrong_password(api, member):
    wrong_password = api.login("member", "not the password").json()
    unknown = api.login("nobody", "not the password").json()
    assert unknown == wrong_password


def test_login_after_many_wrong_passwords_is_throttled(api, member, clock):
    for _ in range(6):
        assert_error(api.login("member", "not the password"), 401, "invalid_credentials")
    response = api.login("member")  # the right password, but not checked while throttled
    body = assert_error(response, 429, "throttled")
    wait = int(response["Retry-After"])
    assert wait > 0 and body["retry_after"] == wait
    assert not is_signed_in(api)
    clock.advance(wait + 1)
    assert api.login("member").json() == {"stage": "authenticated"}


def test_login_with_two_factor_asks_for_second_factor(api, enrolled):
    response = api.login("member")
    assert response.status_code == 200
    assert response.json() == {"stage": "second_factor", "methods": ["totp", "backup_code"]}
    assert not is_signed_in(api)


def test_login_changes_session_key(api, member):
    before = api.client.session.session_key
    api.login("member")
    assert api.session_cookie() not in (None, before)


def test_login_as_someone_else_ends_current_sign_in(api, admin, enrolled):
    api.sign_in("admin")
    assert api.login("member").json()["stage"] == "second_factor"
    session = api.get("/auth/session").json()
    assert session["stage"] == "second_factor" and session["user"]["login"] == "member"
    assert_error(api.get("/account/users"), 401, "not_authenticated")


# POST /auth/second-factor ------------------------------------------------------------------------

def test_second_factor_with_app_code_signs_in(api, enrolled):
    api.login("member")
    response = api.second_factor(enrolled.code())
    assert response.status_code == 200
    assert response.json() == {"stage": "authenticated", "method": "totp", "backup_codes_remaining": 10}
    assert is_signed_in(api)
    assert api.stage() == "authenticated"


def test_second_factor_changes_session_key(api, enrolled):
    api.login("member")
    halfway = api.session_cookie()
    api.second_factor(enrolled.code())
    assert api.session_cookie() not in (None, halfway)


def test_second_factor_with_backup_code_signs_in_and_counts_down(api, enrolled):
    api.login("member")
    response = api.second_factor(enrolled.codes[0], method="backup_code")
    assert response.json() == {"stage": "authenticated", "method": "backup_code", "backup_codes_remaining": 9}


def test_second_factor_accepts_backup_code_typed_loosely(api, enrolled):
    api.login("member")
    typed = " " + enrolled.codes[1].replace("-", " ").lower() + " "
    assert api.second_factor(typed, method="backup_code").status_code == 200


def test_second_factor_backup_code_sent_as_app_code_is_taken_as_backup_code(api, enrolled):
    api.login("member")
    assert api.second_factor(enrolled.codes[0], method="totp").json()["method"] == "backup_code"


def test_second_factor_with_used_backup_code_is_refused(api, make_api, enrolled):
    api.login("member")
    assert api.second_factor(enrolled.codes[0], method="backup_code").status_code == 200
    other = make_api()
    other.login("member")
    assert_error(other.second_factor(enrolled.codes[0], method="backup_code"), 401, "code_already_used")
    assert other.stage() == "second_factor"


def test_second_factor_replayed_app_code_is_refused(api, make_api, enrolled):
    code = enrolled.code()
    api.login("member")
    assert api.second_factor(code).status_code == 200
    other = make_api()
    other.login("member")
    assert_error(other.second_factor(code), 401, "invalid_code")


def test_second_factor_with_wrong_code_is_refused(api, enrolled):
    api.login("member")
    wrong = f"{(int(enrolled.code()) + 1) % 1_000_000:06d}"
    assert_error(api.second_factor(wrong), 401, "invalid_code")
    assert api.stage() == "second_factor"
    assert not is_signed_in(api)


@pytest.mark.parametrize("code", ["12345", "1234567", "１２３４５６", "+12345", "12345a"])
def test_second_factor_with_malformed_app_code_is_refused(api, enrolled, code):
    api.login("member")
    assert_error(api.second_factor(code), 401, "invalid_code")


def test_second_factor_without_pending_sign_in_is_conflict(api, enrolled):
    assert_error(api.second_factor(enrolled.code()), 409, "no_pending_sign_in")


def test_second_factor_after_full_sign_in_is_conflict(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    assert_error(api.second_factor(enrolled.code(1)), 409, "no_pending_sign_in")


def _wrong(enrolled) -> str:
    return f"{(int(enrolled.code()) + 500_000) % 1_000_000:06d}"


def test_second_factor_after_many_wrong_codes_refuses_even_right_code(api, make_api, enrolled, clock):
    api.login("member")
    for _ in range(6):
        assert_error(api.second_factor(_wrong(enrolled)), 401, "invalid_code")
    response = api.second_factor(enrolled.code())
    body = assert_error(response, 429, "throttled")
    wait = int(response["Retry-After"])
    assert wait > 0 and body["retry_after"] == wait and body["locked"] is False
    # A new sign-in from another client does not reset the count (Keycloak #26177).
    other = make_api()
    other.login("member")
    assert_error(other.second_factor(enrolled.code()), 429, "throttled")
    clock.advance(wait + 1)
    assert other.second_factor(enrolled.code()).status_code == 200


def test_second_factor_throttle_counts_app_and_backup_codes_together(api, enrolled):
    api.login("member")
    for index in range(6):
        if index % 2:
            assert_error(api.second_factor(_wrong(enrolled)), 401, "invalid_code")
        else:
            stranger = backup_codes.format_code(backup_codes.make_code())  # well-formed, not the user's
            assert_error(api.second_factor(stranger, method="backup_code"), 401, "invalid_code")
    assert_error(api.second_factor(enrolled.codes[0], method="backup_code"), 429, "throttled")


def test_second_factor_locked_after_hard_limit(api, enrolled, settings, clock):
    settings.TWOSTEP_SECOND_FACTOR_FREE_ATTEMPTS = 10
    settings.TWOSTEP_SECOND_FACTOR_LOCK_AFTER = 3
    api.login("member")
    for _ in range(3):
        assert_error(api.second_factor(_wrong(enrolled)), 401, "invalid_code")
    clock.advance(3600)
    api.login("member")  # the held sign-in expired meanwhile; the lock did not
    body = assert_error(api.second_factor(enrolled.code()), 429, "throttled")
    assert body["locked"] is True


# A half-signed-in session opens no other door ---------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/me/two-factor"), ("GET", "/me/security-events"), ("GET", "/account/users"),
    ("POST", "/me/two-factor/setup"), ("POST", "/me/two-factor/confirm"), ("POST", "/me/backup-codes"),
    ("POST", "/me/two-factor/disable"), ("PUT", "/account/policy"),
    ("POST", "/account/users/1/two-factor/disable"),
])
def test_second_factor_stage_is_anonymous_elsewhere(api, admin, enroll, method, path):
    enroll(admin)
    assert api.login("admin").json()["stage"] == "second_factor"
    body = {"password": PASSWORD, "code": "123456", "reason": "x", "require_two_factor": True}
    response = api.get(path) if method == "GET" else api.send(method, path, body)
    assert_error(response, 401, "not_authenticated")


# POST /auth/logout ------------------------------------------------------------------------------

def test_logout_ends_session(api, member):
    api.sign_in("member")
    response = api.post("/auth/logout")
    assert response.status_code == 200 and response.json() == {"stage": "anonymous"}
    assert not is_signed_in(api)
    assert_error(api.get("/me/two-factor"), 401, "not_authenticated")


def test_logout_abandons_half_done_sign_in(api, enrolled):
    api.login("member")
    assert api.post("/auth/logout").status_code == 200
    assert api.stage() == "anonymous"
    assert_error(api.second_factor(enrolled.code()), 409, "no_pending_sign_in")


def test_logout_when_anonymous_is_fine(api):
    assert api.post("/auth/logout").json() == {"stage": "anonymous"}
