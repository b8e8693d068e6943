"""Sign-ins that end a forced setup, and sign-outs, are audited like any other (ASVS 16.3.1)."""

from __future__ import annotations

import pyotp

from twostep.models import Account, SecurityEvent, User

from .test_api_support import api_fixture, make_api_fixture  # noqa: F401 — fixtures

Type = SecurityEvent.Type


def test_forced_setup_that_ends_in_sign_in_records_it_and_last_login(api, member, admin, clock):
    Account.objects.filter(pk=admin.account_id).update(require_two_factor=True)  # as the policy left it
    assert api.login("member").json()["stage"] == "setup_required"
    setup = api.post("/me/two-factor/setup", {"password": "correct horse battery staple"}).json()
    confirmed = api.post("/me/two-factor/confirm", {"code": pyotp.TOTP(setup["secret"]).at(clock())})
    assert confirmed.status_code == 200, confirmed.json()
    sign_in = SecurityEvent.objects.filter(user=member, type=Type.SIGN_IN).get()
    assert sign_in.detail["method"] == "totp_setup"
    assert User.objects.get(pk=member.pk).last_login is not None


def test_sign_out_is_audited_through_the_api(api, member):
    assert api.login("member").json()["stage"] == "authenticated"
    assert api.post("/auth/logout").status_code == 200
    assert SecurityEvent.objects.filter(user=member, type=Type.SIGN_OUT).count() == 1
    assert api.stage() == "anonymous"


def test_sign_out_is_audited_on_the_web(client, member):
    response = client.post("/login", {"login": "member", "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert client.post("/logout").status_code == 302
    assert SecurityEvent.objects.filter(user=member, type=Type.SIGN_OUT).count() == 1


def test_abandoning_a_half_done_sign_in_records_no_sign_out(api, enrolled):
    assert api.login("member").json()["stage"] == "second_factor"
    api.post("/auth/logout")
    assert not SecurityEvent.objects.filter(type=Type.SIGN_OUT).exists()
