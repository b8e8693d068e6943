"""Bad input to the OpenID Connect endpoints gets the protocol's errors, never a 500; keys rotate."""

from __future__ import annotations

import base64

import pytest

from twostep.services import signing_keys

from ..conftest import web_sign_in
from .oidc_support import REDIRECT, authorize_url, follow_to_code, make_client, pkce, redeem, verify_id_token

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("data, headers", [
    ({}, {}),
    ({"grant_type": "authorization_code"}, {}),
    ({"grant_type": "authorization_code", "code": "x", "client_id": "nope"}, {}),
    ({"grant_type": "refresh_token", "refresh_token": "x", "client_id": "nope", "client_secret": "y"}, {}),
    ({"grant_type": "authorization_code", "code": "x"}, {"HTTP_AUTHORIZATION": "Basic !!!not base64"}),
    ({"grant_type": "authorization_code", "code": "x"}, {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(
        b"no-colon").decode()}),
    ({"grant_type": "client_credentials"}, {}),
])
def test_token_endpoint_refuses_garbage_with_a_json_error(client, data, headers):
    make_client()
    response = client.post("/oauth/token", data, **headers)
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_token_endpoint_answers_cors_for_a_public_apps_origin(client, enrolled):
    app = make_client("Spa", public=True)
    web_sign_in(client, "member", enrolled)
    verifier, challenge = pkce()
    code = follow_to_code(client, authorize_url(app, challenge=challenge))["code"]
    response = client.post("/oauth/token", {"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": REDIRECT, "client_id": app.client_id,
                                            "code_verifier": verifier}, HTTP_ORIGIN="https://app.example")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example"


def test_other_endpoints_refuse_garbage(client):
    assert client.get("/oauth/token").status_code == 405
    assert client.post("/oauth/revoke", {}).status_code in (400, 401)
    assert client.get("/oauth/userinfo", HTTP_AUTHORIZATION="Bearer nonsense").status_code == 401
    assert client.get("/oauth/logout", {"id_token_hint": "not.a.jwt"}).status_code == 400
    assert client.get("/oauth/logout", {"id_token_hint": "garbage"}).status_code == 400
    assert client.get("/oauth/authorize").status_code == 400
    assert client.get("/oauth/authorize", {"client_id": "x" * 5000}).status_code == 400


def test_authorize_refuses_what_it_does_not_offer_at_the_client(client, enrolled):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    for extra in ({"response_type": "token"}, {"response_type": "id_token"}, {"scope": "openid admin"}):
        url = authorize_url(app, **extra)
        response = client.get(url)
        assert response.status_code in (302, 400)
        assert "code=" not in response.get("Location", "")


def test_rotated_key_signs_new_tokens_and_the_old_ones_still_verify(client, enrolled, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    app = make_client()
    web_sign_in(client, "member", enrolled)
    old = redeem(client, app, follow_to_code(client, authorize_url(app))["code"]).json()["id_token"]
    rotation = signing_keys.rotate()
    assert rotation.rotated and rotation.published == 2
    assert (tmp_path / "oidc_signing_keys.json").stat().st_mode & 0o777 == 0o600
    new = redeem(client, app, follow_to_code(client, authorize_url(app))["code"]).json()["id_token"]
    import jwt

    assert jwt.get_unverified_header(new)["kid"] == rotation.kid != jwt.get_unverified_header(old)["kid"]
    verify_id_token(client, app, old)
    verify_id_token(client, app, new)
    assert [k["kid"] for k in client.get("/oauth/jwks").json()["keys"]][0] == rotation.kid


def test_retired_key_leaves_the_jwks_once_its_tokens_expired(client, settings, tmp_path, clock):
    settings.DATA_DIR = tmp_path
    first = signing_keys.published()[0]["kid"]
    signing_keys.rotate()
    assert first in [k["kid"] for k in signing_keys.published()]
    clock.advance(3601)
    assert first not in [k["kid"] for k in signing_keys.published()]


def test_issuer_is_the_public_url_when_set(client, settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": "https://sso.example.com"}
    data = client.get("/.well-known/openid-configuration").json()
    assert data["issuer"] == "https://sso.example.com"
    assert data["token_endpoint"] == "https://sso.example.com/oauth/token"


def test_prune_removes_expired_codes_and_tokens(client, enrolled):
    from datetime import timedelta

    from django.utils import timezone

    from twostep.models import OAuthAccessToken, OAuthGrant
    from twostep.services import oidc

    app = make_client()
    web_sign_in(client, "member", enrolled)
    redeem(client, app, follow_to_code(client, authorize_url(app))["code"])
    follow_to_code(client, authorize_url(app))  # a code never redeemed
    past = timezone.now() - timedelta(days=2)
    OAuthGrant.objects.update(expires=past)
    OAuthAccessToken.objects.update(expires=past)
    oidc.prune()
    assert not OAuthGrant.objects.exists() and not OAuthAccessToken.objects.exists()


def test_logout_accepts_an_id_token_signed_before_a_rotation(client, enrolled, settings, tmp_path):
    from .oidc_support import LOGOUT_REDIRECT

    settings.DATA_DIR = tmp_path
    app = make_client()
    web_sign_in(client, "member", enrolled)
    old = redeem(client, app, follow_to_code(client, authorize_url(app))["code"]).json()["id_token"]
    signing_keys.rotate()
    response = client.get("/oauth/logout", {"id_token_hint": old, "post_logout_redirect_uri": LOGOUT_REDIRECT})
    assert response.status_code == 302 and response["Location"] == LOGOUT_REDIRECT
    assert "_auth_user_id" not in client.session


def test_keys_given_by_settings_are_used_and_not_rotated(client, settings, tmp_path):
    from twostep import crypto

    settings.DATA_DIR = tmp_path
    active, older = crypto.new_signing_pem(), crypto.new_signing_pem()
    settings.TWOSTEP_OIDC_RSA_PRIVATE_KEY = active
    settings.TWOSTEP_OIDC_RSA_PRIVATE_KEYS_INACTIVE = [older]
    keys = client.get("/oauth/jwks").json()["keys"]
    assert len(keys) == 2
    rotation = signing_keys.rotate()
    assert not rotation.rotated and rotation.kid == keys[0]["kid"]
    assert not (tmp_path / "oidc_signing_keys.json").exists()
