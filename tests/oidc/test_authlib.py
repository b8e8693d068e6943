"""An application signs its users in through twostep with Authlib's OAuth 2.0 client.

Everything goes over HTTP to a real `twostep serve`: discovery, the authorization request with
PKCE, the sign-in pages (password, then an app code), the token exchange, the ID token checked
against the published keys, userinfo, refresh with rotation, RP-initiated logout, revocation —
and the refusals a careful provider gives: a replayed code, a wrong verifier, a wrong secret, a
redirect URI nobody registered.
"""

from __future__ import annotations

import base64
import time

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from .provider import (
    SCOPES,
    Browser,
    consent_form,
    drive,
    forms_of,
    free_port,
    leaves_for,
    nonce,
    query_of,
    sign_in_and_authorize,
    text_of,
)

MFA = "urn:twostep:mfa"


@pytest.fixture(scope="module")
def app(provider):
    """A confidential web application, registered by the operator and trusted (no consent page)."""
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens: the callback is read, not served
    made = provider.create_client("Wiki", f"{base}/callback", "--trusted", post_logout_uri=f"{base}/signed-out")
    assert made["client_secret"]
    return {**made, "redirect_uri": f"{base}/callback", "post_logout_uri": f"{base}/signed-out",
            "meta": provider.discovery()}


def session_for(app, **kwargs) -> OAuth2Session:
    return OAuth2Session(app["client_id"], app.get("client_secret"), scope=SCOPES,
                         redirect_uri=app["redirect_uri"], code_challenge_method="S256", **kwargs)


def start(app, **params):
    """Return (authorize URL, state, nonce, verifier) for one authorization request."""
    client, verifier, expected_nonce = session_for(app), generate_token(48), nonce()
    url, state = client.create_authorization_url(app["meta"]["authorization_endpoint"], nonce=expected_nonce,
                                                 code_verifier=verifier, **params)
    return url, state, expected_nonce, verifier


def id_token_claims(app, id_token: str, expected_nonce: str | None) -> dict:
    """Verify the ID token as a relying party must (OIDC Core 3.1.3.7) and return its claims."""
    meta = app["meta"]
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=15).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    assert token.header["alg"] == "RS256" and token.header.get("kid")
    checks = {"iss": {"essential": True, "value": meta["issuer"]},
              "aud": {"essential": True, "value": app["client_id"]},
              "sub": {"essential": True}, "exp": {"essential": True}, "iat": {"essential": True}}
    if expected_nonce is not None:
        checks["nonce"] = {"essential": True, "value": expected_nonce}
    jwt.JWTClaimsRegistry(leeway=5, **checks).validate(token.claims)
    claims = token.claims
    assert claims["exp"] > time.time() > claims["iat"] - 5
    if isinstance(claims["aud"], list):
        assert claims.get("azp") == app["client_id"]
    return claims


def signed_in_code(provider, app, person, **params):
    """Sign `person` in through the pages; return (callback URL, state, nonce, verifier)."""
    url, state, expected_nonce, verifier = start(app, **params)
    callback = sign_in_and_authorize(Browser(provider), url, person)
    return callback, state, expected_nonce, verifier


def test_discovery_names_the_endpoints_of_the_contract(provider, app):
    meta = app["meta"]
    assert meta["issuer"] == provider.url
    for name, path in [("authorization_endpoint", "/oauth/authorize"), ("token_endpoint", "/oauth/token"),
                       ("userinfo_endpoint", "/oauth/userinfo"), ("jwks_uri", "/oauth/jwks"),
                       ("end_session_endpoint", "/oauth/logout"), ("revocation_endpoint", "/oauth/revoke")]:
        assert meta[name].rstrip("/") == provider.url + path, (name, meta[name])
    assert "S256" in meta["code_challenge_methods_supported"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert meta["response_types_supported"] == ["code"]
    assert {"client_secret_basic", "client_secret_post"} <= set(meta["token_endpoint_auth_methods_supported"])
    keys = requests.get(meta["jwks_uri"], timeout=15).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k.get("kid") and "d" not in k for k in keys)


def test_full_code_flow_with_pkce_refresh_logout_and_revocation(provider, app, person):
    meta = app["meta"]
    url, state, expected_nonce, verifier = start(app)
    assert query_of(url)["code_challenge_method"] == "S256"
    browser = Browser(provider)
    callback = sign_in_and_authorize(browser, url, person)
    assert callback.startswith(app["redirect_uri"] + "?")
    assert query_of(callback)["state"] == state

    client = session_for(app)
    token = client.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert token["token_type"].lower() == "bearer" and token["access_token"] and token["refresh_token"]
    assert token["expires_in"] > 0
    claims = id_token_claims(app, token["id_token"], expected_nonce)
    # An app code after the password: both factors, named after RFC 8176, and the MFA level.
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"]) and "hwk" not in claims["amr"]
    assert claims["acr"] == MFA
    assert claims["preferred_username"] == person.login
    assert claims["email"] == f"{person.login}@acme.example"
    assert claims["sub"] != person.login  # stable and opaque, not the login
    assert abs(claims["auth_time"] - time.time()) < 120

    # The signature is really checked: one changed byte of the payload and it fails.
    head, body, signature = token["id_token"].split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(person.login.encode(), b"mallory")
    forged = ".".join([head, base64.urlsafe_b64encode(payload).rstrip(b"=").decode(), signature])
    with pytest.raises(BadSignatureError):
        id_token_claims(app, forged, expected_nonce)

    info = client.get(meta["userinfo_endpoint"])
    assert info.status_code == 200, info.text
    userinfo = info.json()
    assert userinfo["sub"] == claims["sub"] and userinfo["preferred_username"] == person.login
    assert userinfo["email"] == f"{person.login}@acme.example" and userinfo["account"] == "Acme"
    assert userinfo.get("groups", []) == []  # not an account admin

    # Refresh: new tokens, the same sign-in (amr, acr, auth_time), and the old refresh token is spent.
    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=first_refresh)
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != first_refresh
    again = id_token_claims(app, refreshed["id_token"], None)
    assert (again["sub"], again["amr"], again["acr"], again["auth_time"]) == \
        (claims["sub"], claims["amr"], claims["acr"], claims["auth_time"])
    assert client.get(meta["userinfo_endpoint"]).status_code == 200  # the new access token works

    # Revocation (RFC 7009): the access token stops working at once.
    revoked = client.revoke_token(meta["revocation_endpoint"], token=refreshed["access_token"],
                                  token_type_hint="access_token")
    assert revoked.status_code == 200
    gone = requests.get(meta["userinfo_endpoint"], timeout=15,
                        headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert gone.status_code == 401

    # The first refresh token was spent by the refresh; shown again it is refused, and (a stolen
    # copy in use, RFC 9700 4.14.2) the newer refresh token of the same sign-in goes with it.
    reused = requests.post(meta["token_endpoint"], auth=(app["client_id"], app["client_secret"]), timeout=30,
                           data={"grant_type": "refresh_token", "refresh_token": first_refresh})
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    dead = requests.post(meta["token_endpoint"], auth=(app["client_id"], app["client_secret"]), timeout=30,
                         data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]})
    assert (dead.status_code, dead.json()["error"]) == (400, "invalid_grant")

    # RP-initiated logout: back to the registered address with the state, and signed out of twostep.
    logout_state = nonce()
    answer = browser.go(f"{meta['end_session_endpoint']}?" + requests.compat.urlencode({
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": app["post_logout_uri"],
        "client_id": app["client_id"], "state": logout_state}))
    if not leaves_for(answer):  # a confirmation page, when the provider asks
        form = next(f for f in forms_of(answer) if ("allow", "true") in f.buttons)
        answer = browser.submit(form, ("allow", "true"))
    assert leaves_for(answer) == f"{app['post_logout_uri']}?state={logout_state}"
    url, *_ = start(app)
    after = browser.go(url)
    assert not leaves_for(after), "a signed-out browser got a code"
    assert any("password" in f.fields for f in forms_of(after)), text_of(after)[:500]


def test_a_code_is_redeemed_once(provider, app, person):
    meta = app["meta"]
    callback, _, _, verifier = signed_in_code(provider, app, person)
    client = session_for(app)
    assert client.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    with pytest.raises(OAuthError) as replayed:
        session_for(app).fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert replayed.value.error == "invalid_grant"


def test_a_wrong_or_missing_pkce_verifier_is_refused(provider, app, person):
    meta = app["meta"]
    callback, _, _, verifier = signed_in_code(provider, app, person)
    with pytest.raises(OAuthError) as refused:
        session_for(app).fetch_token(meta["token_endpoint"], authorization_response=callback,
                                     code_verifier=generate_token(48))
    assert refused.value.error == "invalid_grant"
    raw = requests.post(meta["token_endpoint"], auth=(app["client_id"], app["client_secret"]), timeout=30,
                        data={"grant_type": "authorization_code", "code": query_of(callback)["code"],
                              "redirect_uri": app["redirect_uri"]})  # no verifier at all
    assert raw.status_code == 400 and raw.json()["error"] in ("invalid_request", "invalid_grant"), raw.text


def test_a_wrong_client_secret_is_401_invalid_client(provider, app, person):
    meta = app["meta"]
    callback, _, _, verifier = signed_in_code(provider, app, person)
    code = query_of(callback)["code"]
    with pytest.raises(OAuthError) as refused:
        OAuth2Session(app["client_id"], "not-the-secret", redirect_uri=app["redirect_uri"]).fetch_token(
            meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert refused.value.error == "invalid_client"
    for auth, extra in [((app["client_id"], "not-the-secret"), {}),  # client_secret_basic
                        (None, {"client_id": app["client_id"], "client_secret": "not-the-secret"})]:  # _post
        raw = requests.post(meta["token_endpoint"], auth=auth, timeout=30, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": app["redirect_uri"],
            "code_verifier": verifier, **extra})
        assert (raw.status_code, raw.json()["error"]) == (401, "invalid_client")
    # The code was not spent by the refusals: the right secret, sent in the body, still gets tokens.
    good = requests.post(meta["token_endpoint"], timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": app["redirect_uri"],
        "code_verifier": verifier, "client_id": app["client_id"], "client_secret": app["client_secret"]})
    assert good.status_code == 200 and good.json()["id_token"], good.text


def test_an_unregistered_redirect_uri_or_unknown_client_never_redirects(provider, app, person):
    browser = Browser(provider)
    evil = "https://evil.example/callback"
    url, *_ = start(app, redirect_uri=evil)
    answer = drive(browser, browser.go(url), person)  # whatever the pages ask, no redirect to it
    assert not leaves_for(answer), answer.headers["Location"]
    assert answer.status_code == 400 and "evil.example" not in answer.headers.get("Location", "")
    assert not any(f.action.startswith(evil) for f in forms_of(answer))

    # Signed in now: an unknown client is refused with a page, not a redirect either.
    stranger = {**app, "client_id": "no-such-client"}
    url, *_ = start(stranger)
    answer = browser.go(url)
    assert answer.status_code == 400 and not leaves_for(answer)


def test_an_untrusted_client_asks_for_consent_and_a_no_goes_back_as_access_denied(provider, app, person):
    meta = app["meta"]
    base = f"http://127.0.0.1:{free_port()}"
    made = provider.create_client("Reports", f"{base}/cb")  # not trusted: the person is asked
    untrusted = {**app, **made, "redirect_uri": f"{base}/cb"}
    url, state, _, verifier = start(untrusted)
    browser = Browser(provider)
    asked = drive(browser, browser.go(url), person, consent=None)
    assert consent_form(asked) and "Reports" in text_of(asked), text_of(asked)[:800]
    denied = browser.submit(consent_form(asked), ("decision", "deny"))
    back = query_of(leaves_for(denied))
    assert leaves_for(denied).startswith(f"{base}/cb?") and (back["error"], back["state"]) == ("access_denied", state)

    url, state, expected_nonce, verifier = start(untrusted)
    callback = sign_in_and_authorize(browser, url, None)  # still signed in: only the consent page
    assert query_of(callback)["state"] == state
    token = session_for(untrusted).fetch_token(meta["token_endpoint"], authorization_response=callback,
                                               code_verifier=verifier)
    assert id_token_claims(untrusted, token["id_token"], expected_nonce)["preferred_username"] == person.login
