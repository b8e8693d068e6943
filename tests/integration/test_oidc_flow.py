"""The OpenID Connect provider: the code flow through twostep's own sign-in, claims, refresh, errors."""

from __future__ import annotations

import pytest

from twostep.models import OAuthAccessToken, OAuthRefreshToken

from ..conftest import web_sign_in
from .oidc_support import (
    REDIRECT,
    authorize_url,
    follow_to_code,
    make_client,
    pkce,
    redeem,
    refresh,
    sign_in_through,
    verify_id_token,
)

pytestmark = pytest.mark.django_db


def test_discovery_names_the_endpoints_under_the_issuer(client):
    data = client.get("/.well-known/openid-configuration").json()
    assert data["issuer"] == "http://testserver"
    assert data["authorization_endpoint"] == "http://testserver/oauth/authorize"
    assert data["token_endpoint"] == "http://testserver/oauth/token"
    assert data["jwks_uri"] == "http://testserver/oauth/jwks"
    assert data["end_session_endpoint"] == "http://testserver/oauth/logout"
    assert data["revocation_endpoint"] == "http://testserver/oauth/revoke"
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert data["response_types_supported"] == ["code"]
    assert "urn:twostep:mfa" in data["acr_values_supported"]


def test_app_code_sign_in_gives_an_id_token_with_pwd_otp_mfa(client, enrolled):
    app = make_client()
    query = sign_in_through(client, authorize_url(app), "member", enrolled)
    assert query["state"] == "st4te"
    response = redeem(client, app, query["code"])
    assert response.status_code == 200, response.content
    body = response.json()
    claims = verify_id_token(client, app, body["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "urn:twostep:mfa"
    assert claims["preferred_username"] == "member"
    assert claims["account"] == "Acme"
    assert claims["groups"] == []
    assert claims["email"] == "member@acme.example"
    assert claims["sub"] not in ("member", str(enrolled.user.pk))
    assert len(claims["sub"]) >= 40
    assert "refresh_token" not in body  # no offline_access



def test_refresh_keeps_amr_acr_and_auth_time_and_rotates(client, enrolled, clock):
    app = make_client()
    query = sign_in_through(client, authorize_url(app, scope="openid offline_access"), "member", enrolled)
    first = redeem(client, app, query["code"]).json()
    claims = verify_id_token(client, app, first["id_token"])
    clock.advance(600)
    again = refresh(client, app, first["refresh_token"])
    assert again.status_code == 200, again.content
    renewed = again.json()
    assert renewed["refresh_token"] != first["refresh_token"]
    later = verify_id_token(client, app, renewed["id_token"], nonce=None)
    assert later["amr"] == claims["amr"] == ["pwd", "otp", "mfa"]
    assert later["acr"] == "urn:twostep:mfa"
    assert later["auth_time"] == claims["auth_time"]
    assert later["sub"] == claims["sub"]
    # The old refresh token is spent: using it again is refused, and the family is revoked.
    replay = refresh(client, app, first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # A spent refresh token coming back means it leaked: the whole family ends, the new one too.
    assert refresh(client, app, renewed["refresh_token"]).status_code == 400


def test_password_only_sign_in_has_pwd_and_no_acr(client, member):
    app = make_client()
    query = sign_in_through(client, authorize_url(app), "member")
    claims = verify_id_token(client, app, redeem(client, app, query["code"]).json()["id_token"])
    assert claims["amr"] == ["pwd"]
    assert "acr" not in claims


def test_public_client_needs_pkce_s256(client, enrolled):
    app = make_client("Spa", public=True)
    web_sign_in(client, "member", enrolled)
    response = client.get(authorize_url(app))
    assert response.status_code == 302
    assert response["Location"].startswith(REDIRECT)
    assert "error=invalid_request" in response["Location"]
    verifier, challenge = pkce()
    query = follow_to_code(client, authorize_url(app, challenge=challenge))
    wrong = redeem(client, app, query["code"], verifier=pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    right = redeem(client, app, query["code"], verifier=verifier)
    assert right.status_code == 200, right.content
    plain = client.get(authorize_url(app, code_challenge="x" * 43, code_challenge_method="plain"))
    assert plain.status_code == 302 and "error=" in plain["Location"] and "code=" not in plain["Location"]


def test_confidential_client_may_use_pkce_and_client_secret_post(client, enrolled):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    verifier, challenge = pkce()
    query = follow_to_code(client, authorize_url(app, challenge=challenge))
    response = redeem(client, app, query["code"], verifier=verifier, basic=False)
    assert response.status_code == 200, response.content


def test_replayed_code_is_refused_and_revokes_its_tokens(client, enrolled, clock):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    query = follow_to_code(client, authorize_url(app, scope="openid offline_access"))
    first = redeem(client, app, query["code"])
    assert first.status_code == 200
    assert OAuthAccessToken.objects.count() == 1
    clock.advance(1)
    second = redeem(client, app, query["code"])
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert OAuthAccessToken.objects.count() == 0
    assert OAuthRefreshToken.objects.filter(revoked__isnull=True).count() == 0
    assert refresh(client, app, first.json()["refresh_token"]).status_code == 400
    assert client.get("/oauth/userinfo", HTTP_AUTHORIZATION="Bearer " + first.json()["access_token"]).status_code == 401


def test_expired_code_is_invalid_grant(client, enrolled, settings):
    from oauth2_provider.settings import oauth2_settings

    app = make_client()
    web_sign_in(client, "member", enrolled)
    query = follow_to_code(client, authorize_url(app))
    from datetime import timedelta

    from django.utils import timezone

    from twostep.models import OAuthGrant

    OAuthGrant.objects.update(expires=timezone.now() - timedelta(seconds=1))
    response = redeem(client, app, query["code"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS == 60


@pytest.mark.parametrize("code", ["", "nonsense", "x" * 300])
def test_unknown_code_is_invalid_grant(client, code):
    app = make_client()
    response = redeem(client, app, code)
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_grant", "invalid_request")


def test_wrong_secret_is_invalid_client_401(client, enrolled):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    query = follow_to_code(client, authorize_url(app))
    response = redeem(client, app, query["code"], secret="wrong")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert redeem(client, app, query["code"]).status_code == 200  # the code was not spent


def test_unknown_client_or_unregistered_redirect_is_an_error_page_not_a_redirect(client, enrolled):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    for url in (authorize_url(app, redirect="https://evil.example/cb"),
                "/oauth/authorize?response_type=code&client_id=nope&redirect_uri=https%3A%2F%2Fevil.example%2F"
                "&scope=openid"):
        response = client.get(url)
        assert response.status_code == 400
        assert "evil.example" not in response.get("Location", "")
        assert b"cannot be used" in response.content
    # The same for someone not signed in: the request is checked before the sign-in.
    client.logout()
    response = client.get(authorize_url(app, redirect="https://evil.example/cb"))
    assert response.status_code == 400


def test_unsupported_grant_type_is_refused(client):
    app = make_client()
    response = client.post("/oauth/token", {"grant_type": "password", "username": "a", "password": "b",
                                            "client_id": app.client_id, "client_secret": app.secret})
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_userinfo_gives_the_claims_of_the_scopes(client, enrolled):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    query = follow_to_code(client, authorize_url(app, scope="openid email"))
    token = redeem(client, app, query["code"]).json()["access_token"]
    info = client.get("/oauth/userinfo", HTTP_AUTHORIZATION="Bearer " + token)
    assert info.status_code == 200
    data = info.json()
    assert data["email"] == "member@acme.example"
    assert "preferred_username" not in data  # no profile scope
    assert client.get("/oauth/userinfo").status_code == 401


def test_revoke_endpoint_ends_a_token(client, enrolled):
    app = make_client()
    web_sign_in(client, "member", enrolled)
    query = follow_to_code(client, authorize_url(app))
    token = redeem(client, app, query["code"]).json()["access_token"]
    import base64

    auth = "Basic " + base64.b64encode(f"{app.client_id}:{app.secret}".encode()).decode()
    response = client.post("/oauth/revoke", {"token": token}, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200
    assert client.get("/oauth/userinfo", HTTP_AUTHORIZATION="Bearer " + token).status_code == 401
