"""An authorization code is redeemed once, however many requests race for it (PostgreSQL)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.test import Client

from twostep.models import OAuthAccessToken, OAuthIDToken, OAuthRefreshToken

from ..conftest import web_sign_in
from .oidc_support import authorize_url, follow_to_code, make_client, redeem
from .test_concurrency import race

pytestmark = pytest.mark.django_db(transaction=True)


def test_eight_concurrent_redemptions_of_one_code_give_one_token_and_no_orphans(postgres_only, enrolled):
    app = make_client()
    browser = web_sign_in(Client(), "member", enrolled)
    code = follow_to_code(browser, authorize_url(app, scope="openid offline_access"))["code"]

    results = race(8, lambda i: redeem(Client(), app, code))

    assert [r for r in results if isinstance(r, BaseException)] == []
    statuses = Counter(r.status_code for r in results)
    assert statuses == {200: 1, 400: 7}, statuses
    assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_grant"}
    winner = next(r.json() for r in results if r.status_code == 200)
    # Exactly the winner's tokens exist: none made by a loser and left behind.
    assert OAuthAccessToken.objects.count() == 1
    assert OAuthRefreshToken.objects.count() == 1
    assert OAuthIDToken.objects.count() == 1
    token = OAuthAccessToken.objects.get()
    import hashlib

    assert token.token_checksum == hashlib.sha256(winner["access_token"].encode()).hexdigest()
