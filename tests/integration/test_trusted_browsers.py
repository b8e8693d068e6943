"""Remember this browser: after both factors, a browser may skip the code (never the password)
until it expires or the user's password, second factor or backup codes change."""

from __future__ import annotations

import pyotp
import pytest
from django.test import Client

from twostep.models import SecurityEvent, TrustedBrowser
from twostep.services import accounts, authenticators, recovery, signin, trusted_browsers
from twostep.services.errors import InvalidCredentials, InvalidInput, NotAccountAdmin
from twostep.services.factors import backup_codes

from ..conftest import ORIGIN, PASSWORD
from .policy_page import save_policy
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

COOKIE = trusted_browsers.COOKIE_NAME


@pytest.fixture
def policy(admin):
    """The account lets browsers be remembered for 30 days."""
    accounts.set_remember_browser_days(admin, 30, ORIGIN)
    return 30


def remembered_client(enrolled, clock, **extra) -> Client:
    """Sign in on the web with the code and "remember this browser" ticked."""
    client = Client()
    client.post("/login", {"login": enrolled.user.login, "password": PASSWORD})
    response = client.post("/login/code", {"code": enrolled.code(), "remember": "on", **extra})
    assert response.status_code == 302, response.content
    clock.advance(30)
    return client


def password_step(client, login="member", password=PASSWORD):
    return client.post("/login", {"login": login, "password": password})


def skipped_code(client, login="member") -> bool:
    client.post("/logout")
    response = password_step(client, login)
    return response.status_code == 302 and response["Location"] == "/security"


# Remembering ------------------------------------------------------------------------------

def test_sign_in_skips_the_code_with_a_remembered_browser(enrolled, clock, policy):
    client = remembered_client(enrolled, clock)
    assert skipped_code(client)
    assert "_auth_user_id" in client.session
    sign_in = SecurityEvent.objects.filter(type=SecurityEvent.Type.SIGN_IN).latest("pk")
    assert sign_in.detail["method"] == "remembered_browser"
    assert TrustedBrowser.objects.get().last_used_at is not None


def test_sign_in_with_remembered_browser_still_needs_the_password(enrolled, clock, policy):
    client = remembered_client(enrolled, clock)
    client.post("/logout")
    response = password_step(client, password="wrong password")
    assert response.status_code == 401
    token = client.cookies[COOKIE].value
    with pytest.raises(InvalidCredentials):
        signin.check_password("member", "wrong password", ORIGIN, remembered_token=token)


def test_remember_cookie_has_safe_flags(enrolled, clock, policy, settings):
    settings.SESSION_COOKIE_SECURE = True
    client = Client()
    password_step(client)
    response = client.post("/login/code", {"code": enrolled.code(), "remember": "on"})
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] is True
    assert int(cookie["max-age"]) == 30 * 86400
    # Only a hash of the token is stored.
    assert not TrustedBrowser.objects.filter(token_digest=cookie.value).exists()
    assert cookie.value not in str(list(TrustedBrowser.objects.values()))


def test_remember_cookie_is_never_set_before_the_second_step(enrolled, clock, policy):
    client = Client()
    response = client.post("/login", {"login": "member", "password": PASSWORD, "remember": "on"})
    assert COOKIE not in response.cookies
    response = client.post("/login/code", {"code": "000000", "remember": "on"})
    assert COOKIE not in response.cookies
    assert not TrustedBrowser.objects.exists()


def test_remember_without_the_box_ticked_sets_nothing(enrolled, clock, policy):
    client = Client()
    password_step(client)
    response = client.post("/login/code", {"code": enrolled.code()})
    assert COOKIE not in response.cookies and not TrustedBrowser.objects.exists()


def test_remember_with_a_backup_code_works_too(enrolled, clock, policy):
    client = Client()
    password_step(client)
    response = client.post("/login/backup-code", {"code": enrolled.codes[0], "remember": "on"})
    assert COOKIE in response.cookies
    assert skipped_code(client)


def test_code_pages_offer_the_box_only_when_the_policy_allows(enrolled, clock, admin):
    client = Client()
    password_step(client)
    assert "Remember this browser" not in client.get("/login/code").content.decode()
    accounts.set_remember_browser_days(admin, 7, ORIGIN)
    assert "Remember this browser for 7 days" in client.get("/login/code").content.decode()
    assert "Remember this browser for 7 days" in client.get("/login/backup-code").content.decode()


def test_remembered_browser_of_one_user_does_not_serve_another(enrolled, clock, policy, make_user, enroll):
    client = remembered_client(enrolled, clock)
    other = enroll(make_user("other"))
    client.post("/logout")
    response = password_step(client, "other")
    assert response["Location"].startswith("/login/code")
    assert other.user.pk != enrolled.user.pk


# What voids it ----------------------------------------------------------------------------

def test_sign_in_needs_the_code_after_a_password_change(enrolled, clock, policy):
    client = remembered_client(enrolled, clock)
    user = enrolled.user
    user.refresh_from_db()
    user.set_password("another good password 7")
    user.save(update_fields=["password"])
    assert not TrustedBrowser.objects.exists()
    client.post("/logout")
    response = password_step(client, password="another good password 7")
    assert response["Location"].startswith("/login/code")


def test_binding_voids_the_token_even_if_the_row_survives(enrolled, clock, policy):
    client = remembered_client(enrolled, clock)
    token = client.cookies[COOKIE].value
    from twostep.models import User

    # QuerySet.update() skips the signal: the row stays, yet the token no longer matches.
    User.objects.filter(pk=enrolled.user.pk).update(security_stamp="f" * 32)
    assert TrustedBrowser.objects.exists()
    step = signin.check_password("member", PASSWORD, ORIGIN, remembered_token=token)
    assert step.stage == signin.SECOND_FACTOR


def test_sign_in_needs_the_code_after_new_backup_codes(enrolled, clock, policy):
    client = remembered_client(enrolled, clock)
    backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    assert not skipped_code(client)


def test_sign_in_needs_the_code_after_the_authenticator_is_replaced(enrolled, clock, policy):
    client = remembered_client(enrolled, clock)
    setup = authenticators.start_app(enrolled.user, PASSWORD, ORIGIN)
    authenticators.confirm_app(enrolled.user, pyotp.TOTP(setup.secret).at(clock()), ORIGIN)
    assert not skipped_code(client)


def test_remembered_browser_is_void_after_disable_and_re_enable(enrolled, clock, policy, enroll):
    client = remembered_client(enrolled, clock)
    authenticators.disable(enrolled.user, PASSWORD, enrolled.code(), ORIGIN)
    clock.advance(30)
    enroll(enrolled.user)
    assert not TrustedBrowser.objects.exists()
    assert not skipped_code(client)


def test_remembered_browser_is_void_after_admin_reset(enrolled, clock, policy, admin, enroll, admin_factor):
    client = remembered_client(enrolled, clock)
    recovery.admin_disable_two_factor(admin, enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                      second_factor_fresh=True)
    enroll(enrolled.user)
    assert not skipped_code(client)


def test_remembered_browser_expires(enrolled, clock, policy):
    client = remembered_client(enrolled, clock)
    clock.advance(29 * 86400)
    assert skipped_code(client)
    clock.advance(86400 + 1)
    assert not skipped_code(client)


def test_forgotten_browser_needs_the_code(enrolled, clock, policy):
    client = remembered_client(enrolled, clock)
    browser = TrustedBrowser.objects.get()
    assert client.post(f"/security/browsers/{browser.pk}/forget").status_code == 302
    assert not skipped_code(client)
    assert SecurityEvent.objects.filter(type=SecurityEvent.Type.BROWSERS_FORGOTTEN).exists()


def test_forget_all_browsers(enrolled, clock, policy):
    first = remembered_client(enrolled, clock)
    second = remembered_client(enrolled, clock)
    assert TrustedBrowser.objects.count() == 2
    assert second.post("/security/browsers/forget").status_code == 302
    assert not TrustedBrowser.objects.exists()
    assert not skipped_code(first)


def test_policy_off_forgets_and_refuses_remembered_browsers(enrolled, clock, policy, admin):
    client = remembered_client(enrolled, clock)
    accounts.set_remember_browser_days(admin, 0, ORIGIN)
    assert not TrustedBrowser.objects.exists()
    assert not skipped_code(client)


def test_policy_off_refuses_a_row_left_behind(enrolled, clock, policy, admin):
    client = remembered_client(enrolled, clock)
    type(admin.account).objects.filter(pk=admin.account_id).update(remember_browser_days=0)
    assert not skipped_code(client)


def test_shorter_policy_shortens_remembered_browsers(enrolled, clock, policy, admin):
    remembered_client(enrolled, clock)
    accounts.set_remember_browser_days(admin, 2, ORIGIN)
    browser = TrustedBrowser.objects.get()
    assert (browser.expires_at - browser.created_at).days == 2


def test_remember_does_nothing_when_policy_is_off(enrolled, clock):
    client = Client()
    password_step(client)
    response = client.post("/login/code", {"code": enrolled.code(), "remember": "on"})
    assert response.status_code == 302 and COOKIE not in response.cookies


# The lists ---------------------------------------------------------------------------------

def test_security_page_lists_remembered_browsers(enrolled, clock, policy):
    client = remembered_client(enrolled, clock)
    page = client.get("/security").content.decode()
    assert "Remembered browsers" in page and "Forget all browsers" in page


def test_forget_another_users_browser_is_not_found(enrolled, clock, policy, make_user):
    remembered_client(enrolled, clock)
    make_user("other")
    client = Client()
    password_step(client, "other")
    browser = TrustedBrowser.objects.get()
    assert client.post(f"/security/browsers/{browser.pk}/forget").status_code == 404
    assert TrustedBrowser.objects.exists()


# Policy -----------------------------------------------------------------------------------

def test_policy_needs_an_account_admin(member):
    with pytest.raises(NotAccountAdmin):
        accounts.set_remember_browser_days(member, 30, ORIGIN)


@pytest.mark.parametrize("days", [-1, 91, True, "7"])
def test_policy_refuses_days_out_of_range(admin, days):
    with pytest.raises(InvalidInput):
        accounts.set_remember_browser_days(admin, days, ORIGIN)


def test_policy_form_on_the_users_page(client, admin):
    client.post("/login", {"login": "admin", "password": PASSWORD})
    assert "Remember browsers" in client.get("/account/users").content.decode()
    assert save_policy(client, remember_browser_days="14").status_code == 302
    admin.account.refresh_from_db()
    assert admin.account.remember_browser_days == 14
    assert save_policy(client, remember_browser_days="500").status_code == 400
    admin.account.refresh_from_db()
    assert admin.account.remember_browser_days == 14


def test_policy_form_is_forbidden_to_members(client, member):
    client.post("/login", {"login": "member", "password": PASSWORD})
    assert client.post("/account/policy", {"remember_browser_days": "14"}).status_code == 403


# API --------------------------------------------------------------------------------------

def api_remember(api, enrolled, clock):
    api.login(enrolled.user.login)
    response = api.post("/auth/second-factor", {"method": "totp", "code": enrolled.code(), "remember_browser": True})
    assert response.status_code == 200, response.content
    clock.advance(30)
    return response


def test_api_policy_sets_remember_days(api, admin):
    api.sign_in("admin")
    response = api.put("/account/policy", {"remember_browser_days": 30})
    assert response.status_code == 200 and response.json()["remember_browser_days"] == 30
    assert_error(api.put("/account/policy", {"remember_browser_days": 91}), 422, "invalid_input")
    assert_error(api.put("/account/policy", {"remember_browser_days": "7"}), 422, "invalid_input")


def test_api_second_factor_remembers_then_login_skips_the_code(api, make_api, enrolled, clock, policy):
    response = api_remember(api, enrolled, clock)
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    other = make_api()
    other.client.cookies[COOKIE] = cookie.value
    assert other.login("member").json() == {"stage": "authenticated"}
    assert make_api().login("member").json()["stage"] == "second_factor"


def test_api_login_never_sets_the_remember_cookie(api, enrolled, clock, policy):
    response = api.login("member")
    assert COOKIE not in response.cookies
    response = api.post("/auth/second-factor", {"method": "totp", "code": "000000", "remember_browser": True})
    assert response.status_code == 401 and COOKIE not in response.cookies


def test_api_lists_and_forgets_browsers(api, make_api, enrolled, clock, policy):
    api_remember(api, enrolled, clock)
    api_remember(make_api(), enrolled, clock)
    browsers = api.get("/me/trusted-browsers").json()["browsers"]
    assert len(browsers) == 2
    assert set(browsers[0]) == {"id", "browser", "ip", "created_at", "expires_at", "last_used_at"}
    assert api.send("DELETE", f"/me/trusted-browsers/{browsers[0]['id']}").json() == {"forgotten": 1}
    assert api.send("DELETE", "/me/trusted-browsers").json() == {"forgotten": 1}
    assert api.get("/me/trusted-browsers").json() == {"browsers": []}


def test_api_forgetting_another_users_browser_is_not_found(api, make_api, enrolled, clock, policy, make_user):
    api_remember(make_api(), enrolled, clock)
    make_user("other")
    api.sign_in("other")
    browser = TrustedBrowser.objects.get()
    assert_error(api.send("DELETE", f"/me/trusted-browsers/{browser.pk}"), 404, "not_found")
    assert TrustedBrowser.objects.exists()


def test_remembering_is_audited_and_expired_rows_are_tidied(enrolled, clock, policy):
    remembered_client(enrolled, clock)
    assert SecurityEvent.objects.filter(type=SecurityEvent.Type.BROWSER_REMEMBERED).count() == 1
    clock.advance(31 * 86400)
    remembered_client(enrolled, clock)
    assert TrustedBrowser.objects.count() == 1


def test_list_drops_browsers_voided_where_the_signal_did_not_run(enrolled, clock, policy):
    from twostep.models import User
    from twostep.services import audit

    remembered_client(enrolled, clock)
    clock.advance(1)
    # A change made with QuerySet.update() (no signal), as a process without this module would.
    User.objects.filter(pk=enrolled.user.pk).update(security_stamp="e" * 32)
    audit.record(SecurityEvent.Type.OPERATOR_DISABLED_TWO_FACTOR, user=enrolled.user, origin=ORIGIN)
    assert trusted_browsers.browsers(enrolled.user) == []
    assert not TrustedBrowser.objects.exists()
