"""Two processes behave as one OpenID Connect provider: a code given on A is redeemed on B, and one
code raced from eight requests on A and B at once gives exactly one set of tokens.

As behind a load balancer, A and B share the database, the public address (the issuer) and the
ID-token signing key, all given in the environment (conftest.py). A person signs in on A through the pages;
the application talks to whichever process it reaches.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import psycopg
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from ..oidc.provider import SCOPES, Browser, Person, query_of, sign_in_and_authorize
from .client import Answer, fire_together, new_address
from .cluster import TWOSTEP
from .conftest import PUBLIC_URL as ISSUER  # the one public address in front of A and B

pytestmark = pytest.mark.multiprocess

REDIRECT_URI = "https://wiki.acme.example/callback"
RACERS = 8


def client_create(cluster, name: str, *flags: str) -> dict:
    """`twostep client create … --json` by the operator, beside A and B."""
    done = subprocess.run([TWOSTEP, "client", "create", name, "--redirect-uri", REDIRECT_URI, "--trusted",
                           *flags, "--json"], capture_output=True, text=True, timeout=120, cwd=cluster.root,
                          env={**cluster.env, "TWOSTEP_DATA_DIR": str(cluster.root / "operator")})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class On:
    """A process as Browser sees a provider: its own address."""

    def __init__(self, server):
        self.url = server.url


def person(cluster, login: str) -> Person:
    factor = cluster.enrol(login)
    return Person(login, factor.secret, factor.backup_codes, factor.confirmed_step)


def code_from(cluster, server, app: dict, someone: Person) -> tuple[str, str]:
    """Sign `someone` in on `server` through the pages and authorize `app`; return (code, verifier)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT_URI, "scope": SCOPES,
        "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256"})
    browser = Browser(On(server))
    browser.http.headers["X-Forwarded-For"] = new_address()
    callback = sign_in_and_authorize(browser, f"{server.url}/oauth/authorize?{query}", someone)
    assert callback.startswith(REDIRECT_URI + "?"), callback
    return query_of(callback)["code"], verifier


def redeem(server, app: dict, code: str, verifier: str) -> Answer:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier, "client_id": app["client_id"]}
    if app.get("client_secret"):
        form["client_secret"] = app["client_secret"]
    request = urllib.request.Request(f"{server.url}/oauth/token", data=urllib.parse.urlencode(form).encode(),
                                     headers={"X-Forwarded-For": new_address()}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return Answer(answer.status, json.loads(answer.read()), dict(answer.headers))
    except urllib.error.HTTPError as error:
        with error:
            raw = error.read()
        return Answer(error.code, json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode()[:500]},
                      dict(error.headers))


def tokens_in_database(cluster, app: dict) -> dict[str, int]:
    """Count the client's tokens, straight from PostgreSQL."""
    with psycopg.connect(cluster.env["TWOSTEP_DATABASE_URL"]) as db:
        (pk,) = db.execute("SELECT id FROM twostep_oauthclient WHERE client_id = %s", (app["client_id"],)).fetchone()
        return {table: db.execute(f"SELECT count(*) FROM twostep_{table} WHERE application_id = %s",
                                  (pk,)).fetchone()[0]
                for table in ("oauthaccesstoken", "oauthrefreshtoken", "oauthidtoken")}


def test_a_code_given_on_a_is_redeemed_on_b_and_the_tokens_work_on_both(cluster):
    app = client_create(cluster, "Wiki")
    code, verifier = code_from(cluster, cluster.a, app, person(cluster, "oli"))
    answer = redeem(cluster.b, app, code, verifier)
    assert answer.status == 200, answer
    # One signing key for both: the ID token B signed verifies with the keys A publishes.
    keys = KeySet.import_key_set(requests.get(f"{cluster.a.url}/oauth/jwks", timeout=15).json())
    token = jwt.decode(answer.body["id_token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": ISSUER},
                          aud={"essential": True, "value": app["client_id"]}).validate(token.claims)
    assert token.claims["preferred_username"] == "oli" and {"pwd", "otp"} <= set(token.claims["amr"])
    for server in (cluster.a, cluster.b):
        info = requests.get(f"{server.url}/oauth/userinfo", timeout=15,
                            headers={"Authorization": f"Bearer {answer.body['access_token']}"})
        assert info.status_code == 200 and info.json()["sub"] == token.claims["sub"], info.text
    assert redeem(cluster.a, app, code, verifier).body.get("error") == "invalid_grant"  # spent on B


@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_one_code_raced_by_eight_requests_on_a_and_b_gives_one_set_of_tokens(cluster, kind):
    app = client_create(cluster, f"Race ({kind})", *(["--public"] if kind == "public" else []))
    someone = person(cluster, {"confidential": "una", "public": "ivo"}[kind])
    code, verifier = code_from(cluster, cluster.a, app, someone)
    answers = fire_together([lambda s=server: redeem(s, app, code, verifier)
                             for server in [cluster.a, cluster.b] * (RACERS // 2)])
    statuses = sorted(a.status for a in answers)
    assert statuses == [200] + [400] * (RACERS - 1), answers
    assert all(a.error == "invalid_grant" for a in answers if a.status == 400), answers
    # Exactly what one redemption leaves: one access token, one refresh token, one ID token.
    assert tokens_in_database(cluster, app) == {"oauthaccesstoken": 1, "oauthrefreshtoken": 1, "oauthidtoken": 1}
    for server in (cluster.a, cluster.b):
        log = server.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]
