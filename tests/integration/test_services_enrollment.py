"""Enrolment: start a setup, confirm it with a first code, replace an authenticator."""

from __future__ import annotations

import base64

import pyotp
import pytest
from django.utils import timezone

from twostep import crypto
from twostep.core import totp
from twostep.http import status_for
from twostep.models import Authenticator, BackupCode, SecurityEvent
from twostep.services import authenticators, factors, signin
from twostep.services.errors import InvalidCode, NoPendingSetup, WrongPassword
from twostep.services.factors import backup_codes

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db


def code_for(secret: str, clock, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock() + 30 * offset_steps)


def test_start_setup_returns_a_new_secret_uri_and_qr(member, clock):
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    assert len(base64.b32decode(setup.secret)) == 20
    assert setup.otpauth_uri == totp.provisioning_uri(setup.secret, "member", "twostep")
    assert setup.qr_svg.lstrip().startswith("<svg")
    assert setup.grouped_secret.replace(" ", "") == setup.secret
    assert not factors.enabled(member)


def test_start_setup_needs_the_password(member, clock):
    """ASVS 7.5.1: full re-authentication before changing 2FA."""
    for wrong in ("wrong password", None, ""):
        with pytest.raises(WrongPassword):
            authenticators.start_app(member, wrong, ORIGIN)
    assert not Authenticator.objects.filter(user=member).exists()
    assert SecurityEvent.objects.filter(user=member, type="reauth_failed").count() == 1


def test_start_setup_again_replaces_the_pending_secret(member, clock):
    first = authenticators.start_app(member, PASSWORD, ORIGIN)
    second = authenticators.start_app(member, PASSWORD, ORIGIN)
    assert second.secret != first.secret
    assert authenticators.pending_app(member).secret == second.secret
    with pytest.raises(InvalidCode):
        authenticators.confirm_app(member, code_for(first.secret, clock), ORIGIN)
    authenticators.confirm_app(member, code_for(second.secret, clock), ORIGIN)
    assert factors.enabled(member)


def test_confirm_setup_enables_and_makes_ten_backup_codes_once(member, clock):
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    confirmed = authenticators.confirm_app(member, code_for(setup.secret, clock), ORIGIN)
    assert factors.enabled(member)
    assert confirmed.replaced is False
    assert len(confirmed.backup_codes.codes) == 10
    assert backup_codes.remaining(member) == 10
    assert SecurityEvent.objects.filter(user=member, type="two_factor_enabled").count() == 1


def test_confirm_setup_with_a_wrong_code_keeps_the_setup_pending(member, clock):
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    right = code_for(setup.secret, clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    with pytest.raises(InvalidCode) as refused:
        authenticators.confirm_app(member, wrong, ORIGIN)
    assert status_for(refused.value) == 400
    assert "clock_skew_seconds" not in refused.value.extra
    assert not factors.enabled(member)
    assert authenticators.pending_app(member).secret == setup.secret
    authenticators.confirm_app(member, right, ORIGIN)
    assert factors.enabled(member)


@pytest.mark.parametrize("typed", ["12345", "１２３４５６", "abcdef", "", "1234567"])
def test_confirm_setup_refuses_a_malformed_code(member, clock, typed):
    authenticators.start_app(member, PASSWORD, ORIGIN)
    with pytest.raises(InvalidCode):
        authenticators.confirm_app(member, typed, ORIGIN)
    assert not factors.enabled(member)


@pytest.mark.parametrize(("offset_steps", "seconds", "word"), [(4, 120, "2 minutes fast"), (-3, -90, "2 minutes slow")])
def test_confirm_setup_with_a_skewed_phone_clock_says_by_how_much(member, clock, offset_steps, seconds, word):
    """The phone is off by whole steps: the error carries clock_skew_seconds for the page."""
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    with pytest.raises(InvalidCode) as refused:
        authenticators.confirm_app(member, code_for(setup.secret, clock, offset_steps), ORIGIN)
    assert refused.value.extra["clock_skew_seconds"] == seconds
    assert word in str(refused.value.message)
    assert not factors.enabled(member)


@pytest.mark.parametrize("offset_steps", [-1, 1])
def test_confirm_setup_accepts_one_step_of_drift(member, clock, offset_steps):
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    authenticators.confirm_app(member, code_for(setup.secret, clock, offset_steps), ORIGIN)
    assert Authenticator.objects.get(user=member).last_step == totp.time_step(clock()) + offset_steps


def test_confirm_setup_twice_finds_no_pending_setup(member, clock):
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    authenticators.confirm_app(member, code_for(setup.secret, clock), ORIGIN)
    clock.advance(30)
    with pytest.raises(NoPendingSetup):
        authenticators.confirm_app(member, code_for(setup.secret, clock), ORIGIN)
    assert Authenticator.objects.filter(user=member).count() == 1


def test_confirm_setup_without_a_start_finds_no_pending_setup(member, clock):
    with pytest.raises(NoPendingSetup):
        authenticators.confirm_app(member, "123456", ORIGIN)


def test_code_that_confirmed_the_setup_cannot_sign_in(member, clock):
    """RFC 6238 §5.2: the first code is spent by the confirmation (last step stored)."""
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    first = code_for(setup.secret, clock)
    authenticators.confirm_app(member, first, ORIGIN)
    with pytest.raises(InvalidCode):
        signin.check_code(member.pk, first, ORIGIN, method="totp")


def test_confirm_setup_ends_other_sessions(member, clock):
    """ASVS 7.4.3: sessions end after a factor change (the stamp is in the session hash)."""
    before = member.get_session_auth_hash()
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    authenticators.confirm_app(member, code_for(setup.secret, clock), ORIGIN)
    member.refresh_from_db()
    assert member.get_session_auth_hash() != before


def test_confirm_setup_notifies_the_user(member, clock, mailoutbox, django_capture_on_commit_callbacks):
    """NIST SP 800-63B-4 §4.1.2.1: binding an authenticator notifies the user."""
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    with django_capture_on_commit_callbacks(execute=True):
        authenticators.confirm_app(member, code_for(setup.secret, clock), ORIGIN)
    assert [m.to for m in mailoutbox] == [["member@acme.example"]]
    assert mailoutbox[0].subject.endswith("Two-factor authentication is now on")
    assert ORIGIN.ip in mailoutbox[0].body


# replacing an authenticator ----------------------------------------------------------------

def test_pending_replacement_keeps_the_old_authenticator_working(enrolled, clock):
    """DESIGN.md (Recovery): the old device keeps working until the new one is confirmed."""
    new = authenticators.start_app(enrolled.user, PASSWORD, ORIGIN)
    with pytest.raises(InvalidCode):  # a pending device signs nobody in
        signin.check_code(enrolled.user.pk, code_for(new.secret, clock), ORIGIN, method="totp")
    assert signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN, method="totp")
    assert factors.enabled(enrolled.user)


def test_confirmed_replacement_retires_the_old_authenticator(enrolled, clock):
    new = authenticators.start_app(enrolled.user, PASSWORD, ORIGIN)
    confirmed = authenticators.confirm_app(enrolled.user, code_for(new.secret, clock), ORIGIN, replace_apps=True)
    assert confirmed.replaced is True
    assert confirmed.backup_codes is None  # the unused codes stay valid
    clock.advance(30)
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN, method="totp")
    assert signin.check_code(enrolled.user.pk, code_for(new.secret, clock), ORIGIN, method="totp")
    device = Authenticator.objects.get(user=enrolled.user)
    assert crypto.decrypt_secret(device.encrypted_secret) == new.secret
    assert SecurityEvent.objects.filter(user=enrolled.user, type="authenticator_replaced").count() == 1
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)  # old codes still good


def test_replacement_with_new_codes_retires_the_old_codes(enrolled, clock):
    """The lost-phone path: a new authenticator and a fresh set of codes."""
    new = authenticators.start_app(enrolled.user, PASSWORD, ORIGIN)
    confirmed = authenticators.confirm_app(enrolled.user, code_for(new.secret, clock), ORIGIN, new_codes=True)
    assert len(confirmed.backup_codes.codes) == 10
    assert set(confirmed.backup_codes.codes).isdisjoint(enrolled.codes)
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)
    signin.check_code(enrolled.user.pk, confirmed.backup_codes.codes[0], ORIGIN)


def test_reenabling_after_all_codes_are_used_makes_a_new_set(enrolled, clock):
    BackupCode.objects.filter(user=enrolled.user).update(used_at=timezone.now())
    new = authenticators.start_app(enrolled.user, PASSWORD, ORIGIN)
    confirmed = authenticators.confirm_app(enrolled.user, code_for(new.secret, clock), ORIGIN)
    assert len(confirmed.backup_codes.codes) == 10
