"""What the OpenID Connect tests share: a registered application, PKCE, the code flow, checked ID tokens."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from twostep.services import oidc_clients

from ..conftest import PASSWORD

REDIRECT = "https://app.example/callback"
LOGOUT_REDIRECT = "https://app.example/signed-out"
ISSUER = "http://testserver"


def make_client(name="Wiki", *, public=False, trusted=True, require_two_factor=False, redirect=REDIRECT):
    return oidc_clients.create(name, [redirect], post_logout_uris=[LOGOUT_REDIRECT], public=public,
                               trusted=trusted, require_two_factor=require_two_factor)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(app, *, scope="openid profile email", state="st4te", nonce="n0nce", challenge=None,
                  redirect=REDIRECT, **extra) -> str:
    params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": redirect, "scope": scope,
              "state": state, "nonce": nonce}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return "/oauth/authorize?" + urlencode(params)


def query_of(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def follow_to_code(client, url: str) -> dict:
    """GET the authorize URL of a signed-in session; return the redirect's query (code, state)."""
    response = client.get(url)
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith(REDIRECT), response["Location"]
    return query_of(response["Location"])


def sign_in_through(client, url: str, login: str, enrolled=None, *, key=None) -> dict:
    """From signed out: authorize → login page → password (→ app code) → back → the code."""
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login"), response
    login_page = response["Location"]
    next_url = query_of(login_page)["next"]
    response = client.post("/login", {"login": login, "password": PASSWORD, "next": next_url})
    assert response.status_code == 302, response.content[:500]
    if enrolled is not None:
        step = response["Location"]
        assert step.startswith("/login/code"), step
        response = client.post(step, {"code": enrolled.code(), "next": next_url})
        assert response.status_code == 302, response.content[:500]
    assert response["Location"] == next_url, (response["Location"], next_url)
    return follow_to_code(client, next_url)


def redeem(client, app, code, *, verifier=None, secret=None, redirect=REDIRECT, basic=True):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
    if verifier:
        data["code_verifier"] = verifier
    return token_request(client, app, data, secret=secret, basic=basic)


def refresh(client, app, refresh_token, *, secret=None):
    return token_request(client, app, {"grant_type": "refresh_token", "refresh_token": refresh_token},
                         secret=secret)


def token_request(client, app, data, *, secret=None, basic=True):
    secret = app.secret if secret is None else secret
    headers = {}
    if app.public or not basic:
        data = {**data, "client_id": app.client_id}
        if not app.public:
            data["client_secret"] = secret
    else:
        raw = f"{app.client_id}:{secret}".encode()
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(raw).decode()
    return client.post("/oauth/token", data, **headers)


def verify_id_token(client, app, id_token: str, *, nonce="n0nce") -> dict:
    """Check an ID token as a relying party does: signature against /oauth/jwks, iss, aud, exp, nonce."""
    keys = client.get("/oauth/jwks").json()["keys"]
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(k for k in keys if k["kid"] == kid)
    claims = jwt.decode(id_token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=app.client_id,
                        issuer=ISSUER, options={"require": ["exp", "iat", "sub", "iss", "aud"]})
    if nonce is not None:
        assert claims["nonce"] == nonce
    return claims
