"""What an application can ask of a sign-in: prompt, max_age, a second factor, consent, login_hint."""

from __future__ import annotations

import pytest

from twostep.models import OAuthConsent, SecurityEvent
from twostep.services import accounts

from ..conftest import ORIGIN, PASSWORD, web_sign_in
from ..softkey import SoftKey
from .oidc_support import (
    REDIRECT,
    authorize_url,
    follow_to_code,
    make_client,
    query_of,
    redeem,
    verify_id_token,
)
from .test_api_support import api_fixture, make_api_fixture  # noqa: F401
from .test_webauthn_api import add_key, second_step_with

pytestmark = pytest.mark.django_db


def error_at_client(response) -> str:
    assert response.status_code == 302 and response["Location"].startswith(REDIRECT), response
    query = query_of(response["Location"])
    assert "code" not in query
    return query["error"]


def test_security_key_sign_in_gives_hwk(make_api, member):
    owner = make_api()
    owner.sign_in("member")
    key = SoftKey()
    assert add_key(owner, key, name="YubiKey").status_code == 200
    other = make_api()
    other.login("member")
    response, _ = second_step_with(other, key)
    assert response.status_code == 200, response.content
    app = make_client()
    query = follow_to_code(other.client, authorize_url(app))
    claims = verify_id_token(other.client, app, redeem(other.client, app, query["code"]).json()["id_token"])
    assert "hwk" in claims["amr"] and "mfa" in claims["amr"] and "pwd" in claims["amr"]
    assert claims["acr"] == "urn:twostep:mfa"


def test_half_signed_in_session_gets_no_code(client, enrolled):
    app = make_client()
    client.post("/login", {"login": "member", "password": PASSWORD})  # the second step is pending
    response = client.get(authorize_url(app))
    assert response.status_code == 302 and response["Location"].startswith("/login?")
    none = client.get(authorize_url(app, prompt="none"))
    assert error_at_client(none) == "login_required"


def test_prompt_none_signed_out_answers_login_required_with_state(client, member):
    app = make_client()
    response = client.get(authorize_url(app, prompt="none"))
    assert error_at_client(response) == "login_required"
    assert query_of(response["Location"])["state"] == "st4te"


def test_prompt_none_without_consent_answers_consent_required(client, enrolled):
    app = make_client("Untrusted", trusted=False)
    web_sign_in(client, "member", enrolled)
    assert error_at_client(client.get(authorize_url(app, prompt="none"))) == "consent_required"


def test_prompt_login_asks_the_password_again_and_the_new_auth_time_counts(client, enrolled, clock):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    first = verify_id_token(client, app, redeem(client, app, follow_to_code(client, authorize_url(app))["code"])
                            .json()["id_token"])
    clock.advance(120)
    response = client.get(authorize_url(app, prompt="login"))
    assert response.status_code == 302 and response["Location"].startswith("/login?")
    login = client.get(response["Location"])
    assert login.status_code == 200  # shown although signed in
    assert b'value="member"' in login.content
    next_url = query_of(response["Location"])["next"]
    assert "prompt" not in query_of(next_url)
    # Coming back without signing in again does not satisfy it.
    again = client.get(next_url)
    assert again.status_code == 302 and again["Location"].startswith("/login?")
    client.post("/login", {"login": "member", "password": PASSWORD, "next": next_url, "reauth": "1"})
    done = client.post("/login/code", {"code": enrolled.code(), "next": next_url})
    assert done["Location"] == next_url
    query = follow_to_code(client, next_url)
    later = verify_id_token(client, app, redeem(client, app, query["code"]).json()["id_token"])
    assert later["auth_time"] >= first["auth_time"] + 120


def test_max_age_forces_a_fresh_sign_in_only_when_older(client, enrolled, clock):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    assert "code" in follow_to_code(client, authorize_url(app, max_age="300"))
    clock.advance(301)
    response = client.get(authorize_url(app, max_age="300"))
    assert response.status_code == 302 and response["Location"].startswith("/login?")
    assert query_of(response["Location"])["reauth"] == "1"
    bad = client.get(authorize_url(app, max_age="soon"))
    assert error_at_client(bad) == "invalid_request"


@pytest.fixture
def password_only(client, enrolled, clock, admin):
    """A session that proved the password alone: a remembered browser skipped the second step."""
    accounts.set_remember_browser_days(admin, 30, ORIGIN)
    client.post("/login", {"login": "member", "password": PASSWORD})
    client.post("/login/code", {"code": enrolled.code(), "remember": "on"})
    clock.advance(30)
    client.post("/logout")
    response = client.post("/login", {"login": "member", "password": PASSWORD})
    assert response["Location"] == "/security"  # no second step
    assert client.session["twostep_proof"]["amr"] == ["pwd"]
    return client


def test_acr_mfa_steps_up_a_password_only_session(password_only, enrolled):
    from twostep.models import OAuthGrant

    client = password_only
    app = make_client()
    plain = follow_to_code(client, authorize_url(app))
    assert OAuthGrant.objects.get(code=plain["code"]).acr == ""
    response = client.get(authorize_url(app, acr_values="urn:twostep:mfa"))
    assert response.status_code == 302 and response["Location"].startswith("/login?")
    params = query_of(response["Location"])
    assert params["mfa"] == "1" and params["reauth"] == "1"
    # The remembered browser does not skip the second step this time.
    step = client.post("/login", {"login": "member", "password": PASSWORD, "next": params["next"], "mfa": "1",
                                  "reauth": "1"})
    assert step["Location"].startswith("/login/code")
    client.post("/login/code", {"code": enrolled.code(), "next": params["next"]})
    query = follow_to_code(client, params["next"])
    claims = verify_id_token(client, app, redeem(client, app, query["code"]).json()["id_token"])
    assert claims["acr"] == "urn:twostep:mfa" and "otp" in claims["amr"]


def test_client_requiring_2fa_sends_a_user_without_one_to_set_it_up(client, member):
    app = make_client("Payroll", require_two_factor=True)
    response = client.get(authorize_url(app))
    next_url = query_of(response["Location"])["next"]
    assert query_of(response["Location"])["mfa"] == "1"
    client.post("/login", {"login": "member", "password": PASSWORD, "next": next_url, "mfa": "1"})
    back = client.get(next_url)
    assert back.status_code == 302 and back["Location"] == "/security/setup"
    page = client.get("/security")
    assert b"Payroll" in page.content  # the way back to the application
    assert error_at_client(client.get(authorize_url(app, prompt="none"))) == "interaction_required"


def test_client_requiring_2fa_refuses_prompt_none_for_a_password_only_session(password_only):
    app = make_client("Payroll", require_two_factor=True)
    assert error_at_client(password_only.get(authorize_url(app, prompt="none"))) == "login_required"
    assert "code" in follow_to_code(password_only, authorize_url(make_client("Wiki"), prompt="none"))


def test_login_hint_fills_in_the_login(client, member):
    app = make_client()
    response = client.get(authorize_url(app, login_hint="member"))
    assert query_of(response["Location"])["login_hint"] == "member"
    page = client.get(response["Location"])
    assert b'value="member"' in page.content


def test_consent_page_for_an_untrusted_app_then_remembered(client, enrolled):
    app = make_client("Grafana", trusted=False)
    web_sign_in(client, "member", enrolled)
    url = authorize_url(app)
    page = client.get(url)
    assert page.status_code == 200
    assert b"Grafana" in page.content and b'name="decision"' in page.content
    allowed = client.post(url, {"decision": "allow"})
    assert allowed.status_code == 302 and "code" in query_of(allowed["Location"])
    assert OAuthConsent.objects.filter(user=enrolled.user, client__client_id=app.client_id).exists()
    assert SecurityEvent.objects.filter(type="app_consented", detail__app="Grafana").exists()
    assert "code" in follow_to_code(client, url)  # no page the second time
    # Asking for more than was granted asks again.
    assert client.get(authorize_url(app, scope="openid email offline_access")).status_code == 200


def test_consent_denied_answers_access_denied_and_is_audited(client, enrolled):
    app = make_client("Grafana", trusted=False)
    web_sign_in(client, "member", enrolled)
    denied = client.post(authorize_url(app), {"decision": "deny"})
    assert error_at_client(denied) == "access_denied"
    assert SecurityEvent.objects.filter(type="app_denied", user=enrolled.user).exists()
    assert not OAuthConsent.objects.exists()


def test_consent_page_in_russian(client, enrolled):
    app = make_client("Grafana", trusted=False)
    web_sign_in(client, "member", enrolled)
    page = client.get(authorize_url(app), HTTP_ACCEPT_LANGUAGE="ru")
    assert "Разрешить".encode() in page.content


def test_consent_post_without_csrf_is_refused(enrolled):
    from django.test import Client

    signed_in = web_sign_in(Client(), "member", enrolled)
    browser = Client(enforce_csrf_checks=True)
    browser.cookies = signed_in.cookies
    app = make_client("Grafana", trusted=False)
    assert browser.post(authorize_url(app), {"decision": "allow"}).status_code == 403


def test_forced_setup_leads_back_to_the_application_with_two_factors(client, member, clock):
    import pyotp

    from twostep.models import Account
    from twostep.services import authenticators

    Account.objects.update(require_two_factor=True)
    app = make_client("Payroll")
    response = client.get(authorize_url(app))
    next_url = query_of(response["Location"])["next"]
    assert client.post("/login", {"login": "member", "password": PASSWORD, "next": next_url})["Location"] \
        == "/security/setup"
    # Half signed in: no code for the application yet.
    assert client.get(next_url)["Location"] == "/security/setup"
    client.post("/security/setup", {})
    secret = authenticators.pending_app(member).secret
    assert client.post("/security/setup/confirm", {"code": pyotp.TOTP(secret).at(clock())}).status_code == 200
    page = client.get("/security").content.decode()
    assert "Continue signing in to Payroll" in page
    query = follow_to_code(client, next_url)
    claims = verify_id_token(client, app, redeem(client, app, query["code"]).json()["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:twostep:mfa"
    assert "Continue signing in to Payroll" not in client.get("/security").content.decode()
