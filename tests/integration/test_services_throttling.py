"""Throttling: wrong codes per user, wrong passwords per (login, address) and per address."""

from __future__ import annotations

from unittest import mock

import pytest

from tests.hashers import FastArgon2PasswordHasher
from twostep.core import backup_codes as codes_core
from twostep.http import status_for
from twostep.models import Authenticator, SecurityEvent, User
from twostep.services import recovery, signin
from twostep.services.audit import Origin
from twostep.services.errors import InvalidCode, InvalidCredentials, Throttled
from twostep.services.factors import backup_codes
from twostep.services.factors import totp as totp_factor

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db

ELSEWHERE = Origin(ip="198.51.100.7", user_agent="another browser")


def wrong_app_code(enrolled) -> str:
    window = {enrolled.code(o) for o in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in window)


def unknown_backup_code() -> str:
    return codes_core.format_code(codes_core.make_code())


def fail_code(enrolled, method="totp", origin=ORIGIN) -> None:
    """One wrong but well-formed code, which must be evaluated and refused (not throttled)."""
    code = wrong_app_code(enrolled) if method == "totp" else unknown_backup_code()
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, code, origin, method=method)


def throttled(enrolled, code) -> Throttled:
    with pytest.raises(Throttled) as refused:
        signin.check_code(enrolled.user.pk, code, ORIGIN)
    return refused.value


def failures(user) -> int:
    user.refresh_from_db()
    return user.second_factor_failures


# second factor ------------------------------------------------------------------------------

def test_free_failures_cost_no_wait(enrolled, settings):
    for _ in range(settings.TWOSTEP_SECOND_FACTOR_FREE_ATTEMPTS):
        fail_code(enrolled)
    assert failures(enrolled.user) == 5
    assert enrolled.user.second_factor_blocked_until is None
    signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)


def test_failure_after_the_free_ones_throttles_with_retry_after(enrolled):
    for _ in range(6):
        fail_code(enrolled)
    refused = throttled(enrolled, enrolled.code())
    assert refused.retry_after == 30
    assert status_for(refused) == 429 and refused.code == "throttled" and not refused.locked


def test_delays_grow_with_each_further_failure(enrolled, clock):
    for _ in range(5):
        fail_code(enrolled)
    waits = []
    for _ in range(4):
        fail_code(enrolled)
        waits.append(throttled(enrolled, wrong_app_code(enrolled)).retry_after)
        clock.advance(waits[-1])
    assert waits == [30, 60, 120, 240]


def test_delay_is_capped_at_the_maximum(enrolled, clock, settings):
    User.objects.filter(pk=enrolled.user.pk).update(second_factor_failures=40)
    fail_code(enrolled)
    assert throttled(enrolled, wrong_app_code(enrolled)).retry_after == settings.TWOSTEP_MAX_DELAY_SECONDS


def test_throttle_ends_when_the_wait_is_over(enrolled, clock):
    for _ in range(6):
        fail_code(enrolled)
    clock.advance(29)
    assert throttled(enrolled, enrolled.code()).retry_after == 1
    clock.advance(1)
    signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)


def test_throttled_attempt_is_not_evaluated_at_all(enrolled):
    """privacyidea keycloak-provider #71: a throttled guess never learns whether it was right."""
    for _ in range(6):
        fail_code(enrolled)
    events_before = SecurityEvent.objects.filter(type="second_factor_failed").count()
    with mock.patch.object(totp_factor, "verify") as spend_totp, \
            mock.patch.object(backup_codes, "verify") as spend_backup:
        throttled(enrolled, enrolled.code())
        throttled(enrolled, enrolled.codes[0])
    spend_totp.assert_not_called()
    spend_backup.assert_not_called()
    assert failures(enrolled.user) == 6  # a refused attempt is not a failure either
    assert SecurityEvent.objects.filter(type="second_factor_failed").count() == events_before
    assert SecurityEvent.objects.filter(user=enrolled.user, type="throttled").count() == 2


def test_throttled_correct_app_code_is_not_spent(enrolled, clock):
    for _ in range(6):
        fail_code(enrolled)
    code = enrolled.code()
    last_step = Authenticator.objects.get(user=enrolled.user).last_step
    wait = throttled(enrolled, code).retry_after
    assert Authenticator.objects.get(user=enrolled.user).last_step == last_step
    clock.advance(wait)  # 30 s: the code's step is now one behind, still inside the window
    signin.check_code(enrolled.user.pk, code, ORIGIN)


def test_throttled_correct_backup_code_is_not_spent(enrolled, clock):
    for _ in range(6):
        fail_code(enrolled)
    clock.advance(throttled(enrolled, enrolled.codes[0]).retry_after)
    assert backup_codes.remaining(enrolled.user) == 10
    assert signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN).backup_codes_remaining == 9


def test_failure_count_is_per_user_and_survives_a_new_sign_in_from_elsewhere(enrolled):
    """Keycloak #26177: restarting the flow (new password step, session, address) resets nothing."""
    for _ in range(6):
        fail_code(enrolled)
    assert signin.check_password("member", PASSWORD, ELSEWHERE).stage == signin.SECOND_FACTOR
    with pytest.raises(Throttled):
        signin.check_code(enrolled.user.pk, enrolled.code(), ELSEWHERE)


def test_app_and_backup_code_failures_share_one_counter(enrolled):
    """Gitea #6276 / Gogs: TOTP and recovery codes are not throttled apart."""
    for _ in range(3):
        fail_code(enrolled, "totp")
    for _ in range(3):
        fail_code(enrolled, "backup_code")
    assert failures(enrolled.user) == 6
    throttled(enrolled, enrolled.codes[0])
    throttled(enrolled, enrolled.code())


def test_success_resets_the_counter(enrolled):
    """NIST SP 800-63B-4 §3.2.2: success resets the count."""
    for _ in range(5):
        fail_code(enrolled)
    signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)
    assert failures(enrolled.user) == 0
    for _ in range(5):
        fail_code(enrolled)  # five more are free again, not the 6th..10th
    assert failures(enrolled.user) == 5


def test_hundredth_failure_locks_the_second_factor(enrolled, clock, settings):
    """NIST SP 800-63B-4 §3.2.2: at most 100 consecutive failures."""
    assert settings.TWOSTEP_SECOND_FACTOR_LOCK_AFTER == 100
    User.objects.filter(pk=enrolled.user.pk).update(second_factor_failures=98)
    fail_code(enrolled)  # the 99th is still evaluated
    clock.advance(settings.TWOSTEP_MAX_DELAY_SECONDS)
    fail_code(enrolled)  # and so is the 100th
    clock.advance(settings.TWOSTEP_MAX_DELAY_SECONDS)
    refused = throttled(enrolled, enrolled.code())
    assert refused.locked
    assert SecurityEvent.objects.filter(user=enrolled.user, type="second_factor_locked").count() == 1


def test_ninety_nine_failures_do_not_lock_a_correct_code(enrolled, clock):
    User.objects.filter(pk=enrolled.user.pk).update(second_factor_failures=99)
    signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)
    assert failures(enrolled.user) == 0


@pytest.fixture
def locked(enrolled, clock, settings, mailoutbox, django_capture_on_commit_callbacks):
    """An enrolled user who reached the hard limit the slow way (limit lowered to 8)."""
    settings.TWOSTEP_SECOND_FACTOR_LOCK_AFTER = 8
    for attempt in range(8):
        with django_capture_on_commit_callbacks(execute=True):
            fail_code(enrolled, "totp" if attempt % 2 else "backup_code")
        clock.advance(settings.TWOSTEP_MAX_DELAY_SECONDS)
    return enrolled


def test_locked_second_factor_refuses_even_a_correct_code_for_good(locked, clock, mailoutbox):
    """privacyIDEA #1578: a valid code must not reset the counter at the limit."""
    clock.advance(7 * 24 * 3600)
    for code in (locked.code(), locked.codes[0]):
        assert throttled(locked, code).locked
    assert failures(locked.user) == 8
    assert backup_codes.remaining(locked.user) == 10
    assert any("locked" in m.subject for m in mailoutbox)


def test_admin_recovery_unlocks_a_locked_user(locked, admin, admin_factor):
    recovery.admin_disable_two_factor(admin, locked.user.pk, "locked out, called the help desk",
                                      PASSWORD, ORIGIN, second_factor_fresh=True)
    assert failures(locked.user) == 0
    assert locked.user.second_factor_blocked_until is None
    assert signin.check_password("member", PASSWORD, ORIGIN).stage == signin.AUTHENTICATED


def test_operator_recovery_unlocks_a_locked_user(locked):
    recovery.operator_disable_two_factor("member", "ticket 42")
    assert failures(locked.user) == 0
    assert signin.check_password("member", PASSWORD, ORIGIN).stage == signin.AUTHENTICATED


# passwords ----------------------------------------------------------------------------------

def wrong_password(login="member", origin=ORIGIN) -> None:
    with pytest.raises(InvalidCredentials):
        signin.check_password(login, "not the password", origin)


@pytest.fixture
def hasher_calls(monkeypatch):
    """Count every Argon2 hash computed (checking a password, or the dummy one for unknown logins)."""
    calls = []
    verify, encode = FastArgon2PasswordHasher.verify, FastArgon2PasswordHasher.encode

    def counting_verify(self, password, encoded):
        calls.append("verify")
        return verify(self, password, encoded)

    def counting_encode(self, password, salt):
        calls.append("encode")
        return encode(self, password, salt)

    monkeypatch.setattr(FastArgon2PasswordHasher, "verify", counting_verify)
    monkeypatch.setattr(FastArgon2PasswordHasher, "encode", counting_encode)
    return calls


def test_password_failures_throttle_after_the_free_ones(member, clock):
    for _ in range(6):
        wrong_password()
    with pytest.raises(Throttled) as refused:
        signin.check_password("member", PASSWORD, ORIGIN)
    assert refused.value.retry_after == 30
    assert SecurityEvent.objects.filter(user=member, type="throttled").count() == 1


def test_throttled_password_attempt_computes_no_hash(member, clock, hasher_calls):
    """DESIGN.md: throttled attempts are refused before any password hash is computed."""
    wrong_password()
    assert hasher_calls == ["verify"]  # the spy sees hashing when it happens
    for _ in range(5):
        wrong_password()
    hasher_calls.clear()
    with mock.patch.object(signin, "authenticate", wraps=signin.authenticate) as auth:
        for login in ("member", "MEMBER"):
            with pytest.raises(Throttled):
                signin.check_password(login, PASSWORD, ORIGIN)
    auth.assert_not_called()
    assert hasher_calls == []


def test_password_throttle_does_not_block_another_address(member, clock):
    """ASVS 6.1.1: a stranger guessing from elsewhere never locks the real user out."""
    for _ in range(6):
        wrong_password()
    assert signin.check_password("member", PASSWORD, ELSEWHERE).stage == signin.AUTHENTICATED


def test_password_throttle_does_not_block_another_login_from_the_same_address(member, make_user, clock):
    make_user("colleague")
    for _ in range(6):
        wrong_password()
    signin.check_password("colleague", PASSWORD, ORIGIN)


def test_guessing_many_logins_from_one_address_throttles_the_address(member, make_user, clock, settings):
    settings.TWOSTEP_ADDRESS_FREE_ATTEMPTS = 3
    make_user("colleague")
    for login in ("member", "a", "b", "c"):
        wrong_password(login)
    with pytest.raises(Throttled):
        signin.check_password("colleague", PASSWORD, ORIGIN)
    signin.check_password("colleague", PASSWORD, ELSEWHERE)


def test_right_password_resets_the_login_and_address_count(member, clock):
    for _ in range(5):
        wrong_password()
    signin.check_password("member", PASSWORD, ORIGIN)
    for _ in range(5):
        wrong_password()
    signin.check_password("member", PASSWORD, ORIGIN)


def test_password_failures_are_forgotten_after_a_quiet_hour(member, clock):
    for _ in range(5):
        wrong_password()
    clock.advance(3601)
    wrong_password()  # would be the 6th and block for 30 s if still counted
    signin.check_password("member", PASSWORD, ORIGIN)


def test_wrong_passwords_at_reauthentication_are_throttled_without_hashing(enrolled, clock, hasher_calls):
    """A stolen session cannot be used to guess the password (ASVS 7.5.1 re-authentication)."""
    from twostep.services import authenticators
    from twostep.services.errors import WrongPassword

    for _ in range(6):
        with pytest.raises(WrongPassword):
            authenticators.start_app(enrolled.user, "not the password", ORIGIN)
    hasher_calls.clear()
    with pytest.raises(Throttled):
        authenticators.start_app(enrolled.user, PASSWORD, ORIGIN)
    assert hasher_calls == []


def test_attempts_being_checked_hold_back_one_that_their_failing_would_block(member, clock, monkeypatch,
                                                                            settings):
    """An attempt is counted before its hash; one whose process dies stays counted (fail closed)."""
    from twostep.core import clock as core_clock
    from twostep.services import throttle_store, throttling

    monkeypatch.setattr(throttling, "BUSY_WAIT_SECONDS", 0.05)
    keys = throttling.password_keys("member", ORIGIN.ip)
    for _ in range(settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS + 1):
        throttling.reserve_password_attempt(keys, core_clock.utcnow())  # admitted, never reported back
    with mock.patch.object(signin, "authenticate") as hasher:
        with pytest.raises(Throttled):
            signin.check_password("member", PASSWORD, ORIGIN)
    hasher.assert_not_called()
    clock.advance(throttle_store.LEASE.total_seconds() + 1)
    wrong_password()  # the lost attempts no longer hold it back, but they count: 7 failures
    with pytest.raises(Throttled) as refused:
        signin.check_password("member", PASSWORD, ORIGIN)
    assert refused.value.retry_after == 60


def throttle_rows() -> dict:
    from twostep.models import Throttle

    return {key: (failures, pending) for key, failures, pending
            in Throttle.objects.values_list("key", "failures", "pending")}


def test_right_password_leaves_no_counter_behind(member, clock):
    """The usual sign-in: counted as it starts (one INSERT), forgotten when right (one DELETE)."""
    signin.check_password("member", PASSWORD, ORIGIN)
    assert throttle_rows() == {}


def test_right_password_gives_the_address_back_only_its_own_attempt(member, make_user, clock):
    """Another login's failures from the address stay counted; this login starts from nothing."""
    from twostep.services import throttling

    make_user("colleague")
    wrong_password("colleague")
    wrong_password("colleague")
    signin.check_password("member", PASSWORD, ORIGIN)
    colleague_key, address = throttling.password_keys("colleague", ORIGIN.ip)
    assert throttle_rows() == {colleague_key: (2, 0), address: (2, 0)}


def test_right_password_with_another_attempt_pending_keeps_that_one_counted(member, clock):
    """A row with an attempt still being checked is not deleted: the locked path settles it."""
    from twostep.core import clock as core_clock
    from twostep.services import throttling

    keys = throttling.password_keys("member", ORIGIN.ip)
    throttling.reserve_password_attempt(keys, core_clock.utcnow())  # being checked elsewhere
    signin.check_password("member", PASSWORD, ORIGIN)
    login_key, address = keys
    assert throttle_rows() == {login_key: (1, 1), address: (1, 1)}


def test_a_refused_attempt_inserts_no_counter_for_a_key_that_had_none(member, make_user, clock, settings):
    """The address is blocked: the new (login, address) row inserted before the check is rolled back."""
    from twostep.services import throttling

    settings.TWOSTEP_ADDRESS_FREE_ATTEMPTS = 1
    make_user("colleague")
    wrong_password("colleague")
    wrong_password("colleague")
    before = throttle_rows()
    with pytest.raises(Throttled):
        signin.check_password("member", PASSWORD, ORIGIN)
    assert throttle_rows() == before
    assert throttling.password_keys("member", ORIGIN.ip)[0] not in before
