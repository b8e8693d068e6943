"""Races on PostgreSQL: one WebAuthn answer signs in once; keys added at once are all kept.

SQLite serialises writers and would hide these (STYLE.md habit 4), so they run on PostgreSQL.
"""

from __future__ import annotations

import pytest
from django.test import Client

from twostep.models import Authenticator, SecurityEvent
from twostep.services import security_keys
from twostep.services.factors import webauthn

from ..conftest import ORIGIN, PASSWORD
from ..softkey import SoftKey
from .test_api_support import BASE, Api, make_api_fixture  # noqa: F401
from .test_concurrency import outcomes, race
from .test_webauthn_api import add_key

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_key_answer_from_twenty_requests_signs_in_once(postgres_only, make_api, member):
    owner = make_api().sign_in("member")
    # A synced passkey reports 0 every time: only the single-use challenge stands in the way.
    key = SoftKey(synced=True, step=0)
    assert add_key(owner, key, passkey=True).status_code == 200
    signing_in = make_api()
    signing_in.login("member")
    options = signing_in.post("/auth/webauthn/options").json()["publicKey"]
    body = {"method": "webauthn", "credential": key.get(options)}
    cookies = {name: morsel.value for name, morsel in signing_in.client.cookies.items()}
    token = signing_in.csrf_token()

    def submit(_):
        client = Client(enforce_csrf_checks=True)
        for name, value in cookies.items():
            client.cookies[name] = value
        response = client.post(f"{BASE}/auth/second-factor", data=body, content_type="application/json",
                               headers={"X-CSRFToken": token})
        return response.status_code

    results = race(20, submit)
    assert outcomes(results)["ok"] == 20, results  # every request answered, none with a 500
    assert results.count(200) == 1, results
    # The losers: refused, or (400) their session was deleted under them by the winning sign-in.
    assert set(results) <= {200, 400, 401, 409, 429}, results
    assert SecurityEvent.objects.filter(user=member, type="sign_in", detail__method="webauthn").count() == 1


class Stash(dict):
    """A session's stash alone, as services/security_keys.py uses it."""

    def put(self, key, value):
        self[key] = value

    def take(self, key):
        return self.pop(key, None)

    def proof(self):
        return {}  # a signed-in session that proved nothing special


def test_two_keys_confirmed_at_once_are_both_kept_with_unique_names(postgres_only, member):
    rp = webauthn.RelyingParty("testserver", "twostep", ("http://testserver",))
    keys, sessions = [SoftKey(), SoftKey()], [Stash(), Stash()]
    answers = []
    for key, session in zip(keys, sessions, strict=True):
        options = security_keys.start(session, member, PASSWORD, ORIGIN, rp, name="Key", passkey=False)
        answers.append(key.create(options))

    results = race(2, lambda i: security_keys.finish(sessions[i], member, answers[i], ORIGIN))
    assert outcomes(results)["ok"] == 2, results
    rows = Authenticator.objects.filter(user=member, confirmed=True)
    assert sorted(rows.values_list("name", flat=True)) == ["Key", "Key 2"]
    assert sorted(rows.values_list("credential_id", flat=True)) == sorted(k.id for k in keys)
    # The first one switched 2FA on and made the codes; the other was added beside it.
    types = list(SecurityEvent.objects.filter(user=member).values_list("type", flat=True))
    assert types.count("two_factor_enabled") == 1 and types.count("authenticator_added") == 1
