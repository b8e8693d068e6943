"""A Node application signs its users in through twostep with openid-client v6 (npm).

Node runs tests/oidc/node/flow.mjs; this side is the person's browser in between: it opens the
authorization URL Node printed, signs in through twostep's pages (password, app code), and hands
the callback URL back to Node. `make install` installs the package from the committed lock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .provider import Browser, free_port, query_of, sign_in_and_authorize

NODE_DIR = Path(__file__).with_name("node")


def _node() -> str:
    node = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "openid-client" / "package.json").exists()
    if node and installed:
        return node
    what = "node" if not node else "openid-client (make install runs npm ci in tests/oidc/node)"
    if os.environ.get("TWOSTEP_REQUIRE_NODE"):
        pytest.fail(f"{what} is required for this run (TWOSTEP_REQUIRE_NODE) but missing")
    pytest.skip(f"{what} is not installed: the openid-client run is left out")


@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_openid_client_v6_signs_in_refreshes_and_revokes(provider, person, kind):
    node = _node()
    redirect_uri = f"http://127.0.0.1:{free_port()}/auth/callback"
    made = provider.create_client(f"Node app ({kind})", redirect_uri, "--trusted",
                                  *(["--public"] if kind == "public" else []))
    assert bool(made.get("client_secret")) == (kind == "confidential")
    env = {**os.environ, "ISSUER": provider.url, "CLIENT_ID": made["client_id"], "REDIRECT_URI": redirect_uri}
    if kind == "confidential":
        env["CLIENT_SECRET"] = made["client_secret"]
    flow = subprocess.Popen([node, str(NODE_DIR / "flow.mjs")], cwd=NODE_DIR, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = flow.stdout.readline()
        assert first, flow.stderr.read()
        authorize = json.loads(first)["authorize"]
        assert query_of(authorize)["code_challenge_method"] == "S256"
        callback = sign_in_and_authorize(Browser(provider), authorize, person)
        out, err = flow.communicate(callback + "\n", timeout=60)
    finally:
        if flow.poll() is None:
            flow.kill()
            flow.wait()
    assert flow.returncode == 0, err
    seen = json.loads(out)

    assert seen["issuer"] == provider.url
    claims = seen["claims"]
    assert claims["iss"] == provider.url and claims["aud"] in (made["client_id"], [made["client_id"]])
    assert claims["preferred_username"] == person.login and claims["email"] == f"{person.login}@acme.example"
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"]) and claims["acr"] == "urn:twostep:mfa"
    assert seen["userinfo"]["sub"] == claims["sub"] and seen["userinfo"]["account"] == "Acme"
    assert seen["replayed"] == "invalid_grant"

    refreshed = seen["refreshed"]
    assert refreshed["new_access_token"] and refreshed["new_refresh_token"]
    for name in ("sub", "amr", "acr", "auth_time"):
        assert refreshed["claims"][name] == claims[name], name
    assert seen["old_refresh_refused"] == "invalid_grant"
    assert seen["revoked_refresh_refused"] == "invalid_grant"
    assert seen["logout"].startswith(provider.url + "/oauth/logout?")
