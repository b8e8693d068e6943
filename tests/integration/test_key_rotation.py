"""Keys rotate with the old ones still accepted, so nobody is signed out; dropping an old key ends
what was made under it. A re-hash of the same password at sign-in forgets no remembered browser."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from tests.hashers import FastArgon2PasswordHasher
from twostep import crypto
from twostep.models import Authenticator, TrustedBrowser, User
from twostep.services import accounts, keys, passwords, recovery_passes, signin, trusted_browsers
from twostep.services.errors import InvalidCode

from ..conftest import ORIGIN, PASSWORD
from .test_sessions import signed_in, web_sign_in
from .test_trusted_browsers import COOKIE, remembered_client

pytestmark = pytest.mark.django_db

NEW_SECRET_KEY = "a new secret key, long enough for Django's signing " * 2


class SlowerArgon2PasswordHasher(FastArgon2PasswordHasher):
    """The same algorithm with another work factor: Django re-hashes a password it verifies."""

    time_cost = 2


@pytest.fixture
def policy(admin):
    accounts.set_remember_browser_days(admin, 30, ORIGIN)


@pytest.fixture
def key_settings(settings):
    crypto.clear_caches()
    yield settings
    crypto.clear_caches()


@pytest.fixture
def made(admin, admin_factor, enrolled, clock, policy):
    """A signed-in session, a remembered browser and an unused recovery pass, all under today's keys."""
    class Made:
        session = web_sign_in(enrolled=enrolled, clock=clock)
        browser = remembered_client(enrolled, clock).cookies[COOKIE].value
        recovery_pass = recovery_passes.issue(User.objects.get(pk=admin.pk), enrolled.user.pk,
                                              "lost phone, checked by video call", PASSWORD, ORIGIN,
                                              second_factor_fresh=True).code
    return Made


def browser_recognised(token) -> bool:
    step = signin.check_password("member", PASSWORD, ORIGIN, remembered_token=token)
    return step.stage == signin.AUTHENTICATED


def test_new_secret_key_with_the_old_as_fallback_keeps_everyone_in(made, enrolled, key_settings):
    old = key_settings.SECRET_KEY
    key_settings.SECRET_KEY, key_settings.SECRET_KEY_FALLBACKS = NEW_SECRET_KEY, [old]
    assert signed_in(made.session)
    assert browser_recognised(made.browser)
    signin.check_code(enrolled.user.pk, made.recovery_pass, ORIGIN, method="recovery_pass")
    # Both were stored again under the new key on use: they outlive the old key's removal.
    key_settings.SECRET_KEY_FALLBACKS = []
    assert signed_in(made.session)
    assert browser_recognised(made.browser)


def test_dropping_the_old_secret_key_ends_what_it_made(made, enrolled, key_settings):
    key_settings.SECRET_KEY, key_settings.SECRET_KEY_FALLBACKS = NEW_SECRET_KEY, []
    assert not signed_in(made.session)
    assert not browser_recognised(made.browser)
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, made.recovery_pass, ORIGIN, method="recovery_pass")


def test_new_encryption_and_code_hash_keys_keep_codes_working_until_the_old_are_dropped(enrolled, key_settings):
    old_encryption, old_code_hash = list(key_settings.TWOSTEP_ENCRYPTION_KEYS), list(key_settings.TWOSTEP_CODE_HASH_KEYS)
    new_encryption = Fernet.generate_key().decode()
    key_settings.TWOSTEP_ENCRYPTION_KEYS = [new_encryption, *old_encryption]
    key_settings.TWOSTEP_CODE_HASH_KEYS = ["a new code-hash key", *old_code_hash]
    crypto.clear_caches()
    signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)  # the secret still decrypts
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)  # an old backup code still works
    assert keys.secrets_needing_old_keys() == 1
    assert keys.reencrypt_secrets() == 1
    assert keys.secrets_needing_old_keys() == 0

    key_settings.TWOSTEP_ENCRYPTION_KEYS, key_settings.TWOSTEP_CODE_HASH_KEYS = [new_encryption], ["a new code-hash key"]
    crypto.clear_caches()
    enrolled._clock.advance(30)
    signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)  # re-encrypted: fine alone
    with pytest.raises(InvalidCode):  # made under the dropped code-hash key
        signin.check_code(enrolled.user.pk, enrolled.codes[1], ORIGIN)


def test_password_rehash_at_sign_in_keeps_remembered_browsers(enrolled, clock, policy, settings):
    token = remembered_client(enrolled, clock).cookies[COOKIE].value
    before = User.objects.get(pk=enrolled.user.pk).password
    settings.PASSWORD_HASHERS = [f"{__name__}.SlowerArgon2PasswordHasher", "tests.hashers.FastArgon2PasswordHasher"]
    assert browser_recognised(token)
    after = User.objects.get(pk=enrolled.user.pk).password
    assert after != before and "t=2" in after  # the sign-in re-hashed the password
    assert TrustedBrowser.objects.count() == 1
    assert browser_recognised(token)


def test_password_change_still_voids_remembered_browsers(enrolled, clock, policy):
    token = remembered_client(enrolled, clock).cookies[COOKIE].value
    passwords.change_password(User.objects.get(pk=enrolled.user.pk), PASSWORD, "a brand new password 42", ORIGIN)
    step = signin.check_password("member", "a brand new password 42", ORIGIN, remembered_token=token)
    assert step.stage == signin.SECOND_FACTOR


def test_browser_remembered_before_the_binding_changed_is_still_recognised(enrolled, clock, policy):
    """Rows made when the binding took in the password hash are moved to the new one on use."""
    token = remembered_client(enrolled, clock).cookies[COOKIE].value
    user = User.objects.get(pk=enrolled.user.pk)
    legacy = trusted_browsers._digest(token, trusted_browsers._legacy_bindings(user)[0])
    TrustedBrowser.objects.update(token_digest=legacy)
    assert browser_recognised(token)
    assert TrustedBrowser.objects.get().token_digest == trusted_browsers.token_digest(user, token)


def test_totp_secret_is_unreadable_once_its_encryption_key_is_dropped(enrolled, key_settings):
    key_settings.TWOSTEP_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    crypto.clear_caches()
    assert keys.secrets_needing_old_keys() == 1
    with pytest.raises(RuntimeError):
        crypto.decrypt_secret(Authenticator.objects.get(user=enrolled.user).encrypted_secret)
