"""Security keys and passkeys through the API, answered by a key in software (tests/softkey.py).

The same checks run in real Chromium with its virtual authenticator in tests/e2e/test_webauthn.py.
"""

from __future__ import annotations

import pyotp
import pytest

from twostep.models import Account, Authenticator, SecurityEvent
from twostep.services import accounts
from twostep.services.audit import Origin

from ..conftest import PASSWORD
from ..softkey import SoftKey
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db
ADMIN_ORIGIN = Origin(ip="192.0.2.1", user_agent="pytest")


def add_key(api, key: SoftKey, *, passkey: bool = False, name: str | None = None, uv: bool = True):
    options = api.post("/me/authenticators/webauthn/options",
                       {"password": PASSWORD, "name": name, "passkey": passkey})
    assert options.status_code == 200, options.content
    return api.post("/me/authenticators/webauthn", {"credential": key.create(options.json()["publicKey"], uv=uv)})


def second_step_with(api, key: SoftKey, **spoil):
    options = api.post("/auth/webauthn/options")
    assert options.status_code == 200, options.content
    credential = key.get(options.json()["publicKey"], **spoil)
    return api.post("/auth/second-factor", {"method": "webauthn", "credential": credential}), credential


def passkey_sign_in(api, key: SoftKey, **spoil):
    options = api.post("/auth/webauthn/options", {"passkey": True})
    assert options.status_code == 200, options.content
    credential = key.get(options.json()["publicKey"], **spoil)
    return api.post("/auth/passkey", {"credential": credential}), credential


def proved(api) -> list:
    return api.client.session["twostep_proof"]["amr"]


@pytest.fixture
def with_key(api, member):
    """The member, signed in, with one security key (their first authenticator)."""
    api.sign_in("member")
    key = SoftKey()
    added = add_key(api, key, name="YubiKey")
    assert added.status_code == 200, added.content
    return key, added.json()


def allow_passkeys(admin, allow=True):
    accounts.set_allow_passkeys(admin, allow, ADMIN_ORIGIN)


# Registering --------------------------------------------------------------------------------

def test_add_key_as_first_authenticator_switches_2fa_on_and_shows_codes(api, with_key):
    key, added = with_key
    assert added["name"] == "YubiKey"
    assert len(added["backup_codes"]) == 10
    listed = api.get("/me/authenticators").json()
    assert listed["backup_codes_remaining"] == 10
    [row] = listed["authenticators"]
    assert (row["kind"], row["name"], row["description"], row["passkey"]) == \
        ("webauthn", "YubiKey", "Security key", False)
    stored = Authenticator.objects.get(pk=row["id"])
    assert stored.credential_id == key.id and stored.transports == ["usb"] and not stored.backup_eligible
    assert api.get("/me/two-factor").json()["enabled"] is True
    assert api.stage() == "authenticated"  # this session stays; others ended with the new factor


def test_key_options_ask_the_password_again(api, member):
    api.sign_in("member")
    response = api.post("/me/authenticators/webauthn/options", {"password": "wrong", "passkey": False})
    assert_error(response, 403, "wrong_password")


def test_key_options_exclude_keys_registered_already(api, with_key):
    key, _ = with_key
    options = api.post("/me/authenticators/webauthn/options", {"password": PASSWORD, "passkey": True}).json()
    public = options["publicKey"]
    assert [c["id"] for c in public["excludeCredentials"]] == [key.id]
    assert public["authenticatorSelection"]["residentKey"] == "required"
    assert public["authenticatorSelection"]["userVerification"] == "required"
    assert public["attestation"] == "none"
    assert public["rp"]["id"] == "testserver"


def test_passkey_registration_without_user_verification_is_refused(api, member):
    api.sign_in("member")
    response = add_key(api, SoftKey(), passkey=True, uv=False)
    assert_error(response, 422, "invalid_input")
    assert not Authenticator.objects.filter(user=member).exists()


def test_registration_answer_is_accepted_once(api, member):
    api.sign_in("member")
    key = SoftKey()
    options = api.post("/me/authenticators/webauthn/options", {"password": PASSWORD, "passkey": False})
    credential = key.create(options.json()["publicKey"])
    assert api.post("/me/authenticators/webauthn", {"credential": credential}).status_code == 200
    again = api.post("/me/authenticators/webauthn", {"credential": credential})
    assert_error(again, 409, "no_pending_setup")
    assert Authenticator.objects.filter(user=member).count() == 1


def test_registration_from_another_origin_is_refused(api, member):
    api.sign_in("member")
    options = api.post("/me/authenticators/webauthn/options", {"password": PASSWORD, "passkey": False})
    credential = SoftKey().create(options.json()["publicKey"], origin="https://evil.example")
    assert_error(api.post("/me/authenticators/webauthn", {"credential": credential}), 422, "invalid_input")


@pytest.mark.parametrize("credential", [{}, {"id": "x"}, {"id": "!!", "rawId": "!!", "response": {
    "clientDataJSON": "%%", "attestationObject": "%%"}, "type": "public-key"}])
def test_garbage_registration_answer_is_a_clear_error(api, member, credential):
    api.sign_in("member")
    api.post("/me/authenticators/webauthn/options", {"password": PASSWORD, "passkey": False})
    assert_error(api.post("/me/authenticators/webauthn", {"credential": credential}), 422, "invalid_input")


# The second step ----------------------------------------------------------------------------

def test_sign_in_with_key_as_second_step(api, make_api, with_key):
    key, _ = with_key
    other = make_api()
    login = other.login("member").json()
    assert login["methods"] == ["webauthn", "backup_code"]
    response, _ = second_step_with(other, key)
    assert response.status_code == 200, response.content
    assert response.json()["method"] == "webauthn"
    assert other.stage() == "authenticated"
    assert proved(other) == ["pwd", "hwk", "user", "mfa"]
    assert Authenticator.objects.get(credential_id=key.id).sign_count == key.counter


def test_second_step_options_list_the_users_keys_only(api, make_api, with_key):
    key, _ = with_key
    other = make_api()
    other.login("member")
    public = other.post("/auth/webauthn/options").json()["publicKey"]
    assert [c["id"] for c in public["allowCredentials"]] == [key.id]
    assert public["userVerification"] == "preferred"


def test_second_step_options_need_a_pending_sign_in(api):
    assert_error(api.post("/auth/webauthn/options"), 409, "no_pending_sign_in")


def test_old_challenge_replayed_is_refused(api, make_api, with_key):
    key, _ = with_key
    first = make_api()
    first.login("member")
    response, used = second_step_with(first, key)
    assert response.status_code == 200
    first.post("/auth/logout")
    first.login("member")
    first.post("/auth/webauthn/options")  # a new challenge; the old answer does not fit it
    replay = first.post("/auth/second-factor", {"method": "webauthn", "credential": used})
    assert_error(replay, 401, "invalid_code")
    assert first.stage() == "second_factor"


def test_answer_without_a_challenge_in_the_session_is_refused_uncounted(api, make_api, with_key, member):
    key, _ = with_key
    first = make_api()
    first.login("member")
    _, used = second_step_with(first, key)
    second = make_api()
    second.login("member")  # no options asked in this session
    assert_error(second.post("/auth/second-factor", {"method": "webauthn", "credential": used}),
                 401, "invalid_code")
    member.refresh_from_db()
    assert member.second_factor_failures == 0


def test_bogus_signature_is_refused_and_counted(api, make_api, with_key, member):
    key, _ = with_key
    other = make_api()
    other.login("member")
    response, _ = second_step_with(other, key, bogus=True)
    assert_error(response, 401, "invalid_code")
    assert other.stage() == "second_factor"
    member.refresh_from_db()
    assert member.second_factor_failures == 1


def test_answer_for_another_origin_is_refused(api, make_api, with_key):
    key, _ = with_key
    other = make_api()
    other.login("member")
    response, _ = second_step_with(other, key, origin="https://evil.example")
    assert_error(response, 401, "invalid_code")


def test_another_users_key_is_refused(api, make_api, with_key, make_user):
    key, _ = with_key
    make_user("second")
    theirs = make_api().sign_in("second")
    second_key = SoftKey()
    assert add_key(theirs, second_key).status_code == 200
    attacker = make_api()
    attacker.login("second")
    response, _ = second_step_with(attacker, key)  # member's key answers second's challenge
    assert_error(response, 401, "invalid_code")
    assert attacker.stage() == "second_factor"


def test_sign_count_going_backwards_is_refused_and_audited(api, make_api, with_key, member):
    key, _ = with_key
    Authenticator.objects.filter(credential_id=key.id).update(sign_count=50)
    other = make_api()
    other.login("member")
    response, _ = second_step_with(other, key)  # the key says 1: a copy of it was used meanwhile
    body = assert_error(response, 401, "invalid_code")
    assert "copied" in body["message"]
    assert other.stage() == "second_factor"
    event = SecurityEvent.objects.get(user=member, type=SecurityEvent.Type.CLONED_KEY_SUSPECTED)
    assert (event.detail["sign_count"], event.detail["stored_sign_count"]) == (1, 50)
    assert Authenticator.objects.get(credential_id=key.id).sign_count == 50


def test_synced_passkey_reporting_zero_every_time_is_accepted(api, make_api, member):
    api.sign_in("member")
    key = SoftKey(synced=True, step=0)
    assert add_key(api, key, passkey=True).status_code == 200
    for _ in range(2):
        other = make_api()
        other.login("member")
        response, _ = second_step_with(other, key)
        assert response.status_code == 200, response.content
        assert proved(other) == ["pwd", "swk", "user", "mfa"]


# Passkey sign-in ------------------------------------------------------------------------------

@pytest.fixture
def with_passkey(api, member, admin):
    api.sign_in("member")
    key = SoftKey()
    assert add_key(api, key, passkey=True, name="Laptop").status_code == 200
    api.post("/auth/logout")
    return key


def test_passkey_sign_in_where_the_account_allows_it(api, with_passkey, admin):
    allow_passkeys(admin)
    response, _ = passkey_sign_in(api, with_passkey)
    assert response.status_code == 200, response.content
    assert response.json() == {"stage": "authenticated", "method": "webauthn"}
    assert api.stage() == "authenticated"
    assert proved(api) == ["hwk", "user", "mfa"]
    assert api.get("/auth/session").json()["user"]["login"] == "member"


def test_passkey_options_ask_for_any_discoverable_credential_with_verification(api):
    public = api.post("/auth/webauthn/options", {"passkey": True}).json()["publicKey"]
    assert public.get("allowCredentials", []) == []
    assert public["userVerification"] == "required"


def test_passkey_sign_in_refused_where_the_account_does_not_allow_it(api, with_passkey):
    response, _ = passkey_sign_in(api, with_passkey)
    body = assert_error(response, 403, "passkeys_not_allowed")
    assert "password" in body["message"]
    assert api.stage() == "anonymous"


def test_passkey_without_user_verification_is_refused(api, with_passkey, admin):
    allow_passkeys(admin)
    response, _ = passkey_sign_in(api, with_passkey, uv=False)
    assert_error(response, 401, "invalid_code")
    assert api.stage() == "anonymous"


def test_passkey_with_bogus_signature_is_refused(api, with_passkey, admin):
    allow_passkeys(admin)
    response, _ = passkey_sign_in(api, with_passkey, bogus=True)
    assert_error(response, 401, "invalid_code")
    assert api.stage() == "anonymous"


def test_passkey_naming_another_user_is_refused(api, with_passkey, admin):
    allow_passkeys(admin)
    with_passkey.user_handle = "AAAA"
    response, _ = passkey_sign_in(api, with_passkey)
    assert_error(response, 401, "invalid_code")


def test_unknown_passkey_is_refused(api, admin):
    allow_passkeys(admin)
    key = SoftKey()
    key.user_handle = "AAAA"
    response, _ = passkey_sign_in(api, key)
    assert_error(response, 401, "invalid_code")


def test_passkey_answer_replayed_is_refused(api, make_api, with_passkey, admin):
    allow_passkeys(admin)
    response, used = passkey_sign_in(api, with_passkey)
    assert response.status_code == 200
    other = make_api()
    other.post("/auth/webauthn/options", {"passkey": True})
    assert_error(other.post("/auth/passkey", {"credential": used}), 401, "invalid_code")
    assert other.stage() == "anonymous"


@pytest.mark.parametrize("body", ['{"passkey": "yes"}', "[1]", "{"])
def test_options_body_of_the_wrong_shape_is_a_clear_error(api, body):
    assert_error(api.post("/auth/webauthn/options", raw=body), 422, "invalid_input")


def test_passkey_with_garbage_credential_is_refused(api, admin):
    api.post("/auth/webauthn/options", {"passkey": True})
    assert_error(api.post("/auth/passkey", {"credential": {"id": 5}}), 401, "invalid_code")


def test_policy_switches_passkeys_on(make_api, admin):
    boss = make_api().sign_in("admin")
    response = boss.put("/account/policy", {"allow_passkeys": True})
    assert response.status_code == 200, response.content
    assert response.json()["allow_passkeys"] is True
    admin.account.refresh_from_db()
    assert admin.account.allow_passkeys is True
    assert SecurityEvent.objects.filter(type="policy_changed", detail__allow_passkeys=True).exists()


# Apps, renaming, removing ---------------------------------------------------------------------

def test_add_a_second_app_beside_a_key(clock, api, with_key):
    start = api.post("/me/authenticators/totp", {"password": PASSWORD, "name": "Pixel 8"})
    assert start.status_code == 200, start.content
    body = start.json()
    confirm = api.post(f"/me/authenticators/{body['id']}/confirm",
                       {"code": pyotp.TOTP(body["secret"]).at(clock())})
    assert confirm.status_code == 200, confirm.content
    assert confirm.json()["backup_codes"] is None  # codes were made with the first authenticator
    names = [a["name"] for a in api.get("/me/authenticators").json()["authenticators"]]
    assert names == ["YubiKey", "Pixel 8"]


def test_rename_keeps_names_unique(api, with_key):
    _, added = with_key
    key_id = added["id"]
    assert api.send("PATCH", f"/me/authenticators/{key_id}", {"name": "Blue key"}).status_code == 200
    assert api.get("/me/authenticators").json()["authenticators"][0]["name"] == "Blue key"
    second = add_key(api, SoftKey(), name="Blue key")
    assert second.json()["name"] == "Blue key 2"
    clash = api.send("PATCH", f"/me/authenticators/{second.json()['id']}", {"name": "blue KEY"})
    assert_error(clash, 422, "invalid_input")


def test_remove_last_key_refused_where_the_account_requires_2fa(api, with_key, admin):
    _, added = with_key
    Account.objects.filter(pk=admin.account_id).update(require_two_factor=True)  # as the policy left it
    response = api.send("DELETE", f"/me/authenticators/{added['id']}", {"password": PASSWORD})
    assert_error(response, 403, "two_factor_required_by_account")
    assert Authenticator.objects.filter(pk=added["id"]).exists()


def test_remove_one_of_two_keeps_2fa_on(api, with_key):
    _, added = with_key
    add_key(api, SoftKey(), name="Spare")
    response = api.send("DELETE", f"/me/authenticators/{added['id']}", {"password": PASSWORD})
    assert response.status_code == 200, response.content
    assert response.json() == {"enabled": True}
    assert [a["name"] for a in api.get("/me/authenticators").json()["authenticators"]] == ["Spare"]
    assert api.stage() == "authenticated"


def test_another_users_authenticator_is_not_found(api, make_api, with_key, make_user):
    _, added = with_key
    make_user("second")
    theirs = make_api().sign_in("second")
    assert_error(theirs.send("PATCH", f"/me/authenticators/{added['id']}", {"name": "mine"}), 404, "not_found")
    assert_error(theirs.send("DELETE", f"/me/authenticators/{added['id']}", {"password": PASSWORD}),
                 404, "not_found")


def test_authenticators_need_a_signed_in_user(api):
    assert_error(api.get("/me/authenticators"), 401, "not_authenticated")
