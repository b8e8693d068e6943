"""A sign-in for an application ends with a form post whose redirects reach the application:
Chromium holds those redirects to the posting page's CSP `form-action`, so the pages of that
sign-in (and the consent and logout pages) name the application's registered origin — and only
then, and only that origin."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection
from oauth2_provider import oauth2_validators

from twostep import signin_state

from ..conftest import PASSWORD, web_sign_in
from .oidc_support import LOGOUT_REDIRECT, authorize_url, make_client, query_of, redeem

pytestmark = pytest.mark.django_db


def form_action(response) -> str:
    policy = response["Content-Security-Policy"]
    return next(part.strip() for part in policy.split(";") if part.strip().startswith("form-action"))


def test_the_pages_of_an_applications_sign_in_may_post_on_to_it(client, enrolled):
    assert form_action(client.get("/login")) == "form-action 'self'"
    app = make_client(redirect="https://wiki.example:8443/oidc/callback")
    response = client.get(authorize_url(app, redirect="https://wiki.example:8443/oidc/callback"))
    next_url = query_of(response["Location"])["next"]
    assert form_action(client.get(response["Location"])) == "form-action 'self' https://wiki.example:8443"
    step = client.post("/login", {"login": "member", "password": PASSWORD, "next": next_url})["Location"]
    assert form_action(client.get(step)) == "form-action 'self' https://wiki.example:8443"


def test_an_untrusted_applications_consent_page_may_post_on_to_it(client, enrolled):
    web_sign_in(client, "member", enrolled)
    app = make_client(trusted=False)
    page = client.get(authorize_url(app))
    assert page.status_code == 200
    assert form_action(page) == "form-action 'self' https://app.example"


def test_another_browser_is_not_given_the_applications_origin(client, enrolled, django_user_model):
    from django.test import Client

    app = make_client()
    client.get(authorize_url(app))
    assert form_action(Client().get("/login")) == "form-action 'self'"


def test_the_logout_confirmation_may_post_on_to_the_post_logout_address(client, enrolled):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    page = client.get("/oauth/logout", {"client_id": app.client_id, "post_logout_redirect_uri": LOGOUT_REDIRECT})
    assert page.status_code == 200
    assert form_action(page) == "form-action 'self' https://app.example"
    unregistered = client.get("/oauth/logout", {"client_id": app.client_id,
                                                "post_logout_redirect_uri": "https://evil.example/x"})
    assert "evil.example" not in unregistered.get("Content-Security-Policy", "")


@pytest.mark.parametrize(("url", "expected"), [
    ("https://app.example/cb", "https://app.example"),
    ("http://127.0.0.1:9000/cb?x=1", "http://127.0.0.1:9000"),
    ("http://[::1]:9000/cb", "http://[::1]:9000"),
    ("https://app.example;script-src *", None),
    ("https://app example/cb", None),
    ("javascript:alert(1)", None),
    ("com.example.app:/cb", None),
])
def test_only_a_plain_origin_becomes_a_csp_source(url, expected):
    assert signin_state.form_target(url) == expected


@pytest.mark.django_db(transaction=True)
def test_a_client_secret_is_hashed_once_and_outside_the_token_transaction(client, enrolled):
    from .oidc_support import sign_in_through

    app = make_client()
    query = sign_in_through(client, authorize_url(app), "member", enrolled)
    seen = []
    real = oauth2_validators.check_password

    def spy(provided, stored, *args, **kwargs):
        seen.append(connection.in_atomic_block)
        return real(provided, stored, *args, **kwargs)

    with mock.patch.object(oauth2_validators, "check_password", spy):
        response = redeem(client, app, query["code"])
        assert response.status_code == 200, response.content
        assert seen == [False]
        seen.clear()
        wrong = redeem(client, app, query["code"], secret="not the secret")
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        assert seen == [False]
