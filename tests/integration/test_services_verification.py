"""Sign-in: the password step, then an app code or a backup code, each good exactly once."""

from __future__ import annotations

import pyotp
import pytest
from django.core.cache import cache

from twostep.core import backup_codes as codes_core
from twostep.core import totp
from twostep.http import status_for
from twostep.models import Account, Authenticator, BackupCode, SecurityEvent
from twostep.services import authenticators, signin
from twostep.services.audit import Origin
from twostep.services.errors import InvalidCode, InvalidCredentials, NoPendingSignIn
from twostep.services.factors import backup_codes

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db


def failures(user) -> int:
    user.refresh_from_db()
    return user.second_factor_failures


def wrong_app_code(enrolled, offset_steps: int = 0) -> str:
    """A six-digit code that no step in the ±1 window produces."""
    window = {enrolled.code(o) for o in (offset_steps - 1, offset_steps, offset_steps + 1)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in window)


def well_formed_unknown_code() -> str:
    """A backup code with a right check symbol that belongs to nobody."""
    return codes_core.format_code(codes_core.make_code())


# password step ------------------------------------------------------------------------------

def test_password_step_signs_in_a_user_without_2fa(member, clock):
    step = signin.check_password("member", PASSWORD, ORIGIN)
    assert (step.user.pk, step.stage) == (member.pk, signin.AUTHENTICATED)


def test_password_step_asks_an_enrolled_user_for_a_code(enrolled):
    step = signin.check_password("member", PASSWORD, ORIGIN)
    assert step.stage == signin.SECOND_FACTOR
    enrolled.user.refresh_from_db()
    assert enrolled.user.last_login is None  # not signed in until the second step
    assert not SecurityEvent.objects.filter(user=enrolled.user, type="sign_in").exists()


def test_password_step_asks_for_setup_when_the_account_requires_2fa(member, clock):
    Account.objects.filter(pk=member.account_id).update(require_two_factor=True)
    assert signin.check_password("member", PASSWORD, ORIGIN).stage == signin.SETUP_REQUIRED


def test_password_step_ignores_login_case_and_surrounding_spaces(member, clock):
    assert signin.check_password("  MeMbEr ", PASSWORD, ORIGIN).user.pk == member.pk


def test_password_step_gives_one_answer_for_wrong_password_and_unknown_login(member, clock):
    """ASVS 6.3.8: no user enumeration through the message or the error code."""
    with pytest.raises(InvalidCredentials) as wrong_password:
        signin.check_password("member", "not the password", ORIGIN)
    with pytest.raises(InvalidCredentials) as unknown_login:
        signin.check_password("nobody", PASSWORD, ORIGIN)
    assert str(wrong_password.value) == str(unknown_login.value)
    assert status_for(wrong_password.value) == status_for(unknown_login.value) == 401


def test_password_step_refuses_an_inactive_user(member, clock):
    member.is_active = False
    member.save()
    with pytest.raises(InvalidCredentials):
        signin.check_password("member", PASSWORD, ORIGIN)


# app codes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("offset_steps", [-1, 0, 1])
def test_app_code_within_one_step_signs_in(enrolled, clock, offset_steps):
    """RFC 6238 §5.2: one step of delay (or drift) either way."""
    clock.advance(60)  # the enrolment step is well behind
    accepted = signin.check_code(enrolled.user.pk, enrolled.code(offset_steps), ORIGIN, method="totp")
    assert accepted.method == "totp"
    assert Authenticator.objects.get(user=enrolled.user).last_step == totp.time_step(clock()) + offset_steps
    assert SecurityEvent.objects.filter(user=enrolled.user, type="sign_in").count() == 1


@pytest.mark.parametrize("offset_steps", [-2, 2, 5])
def test_app_code_two_steps_away_is_refused(enrolled, clock, offset_steps):
    clock.advance(90)
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, enrolled.code(offset_steps), ORIGIN, method="totp")
    assert Authenticator.objects.get(user=enrolled.user).last_step < totp.time_step(clock()) - 1


def test_app_code_is_refused_the_second_time(enrolled):
    """RFC 6238 §5.2: the second use of a code MUST be refused (nextcloud twofactor_totp #245)."""
    code = enrolled.code()
    signin.check_code(enrolled.user.pk, code, ORIGIN, method="totp")
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, code, ORIGIN, method="totp")


def test_app_code_replay_is_refused_after_caches_are_cleared(enrolled, clock):
    """The replay guard lives in the database, not a per-process cache (django-allauth)."""
    code = enrolled.code()
    signin.check_code(enrolled.user.pk, code, ORIGIN, method="totp")
    cache.clear()
    assert Authenticator.objects.get(user=enrolled.user).last_step == totp.time_step(clock())
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, code, ORIGIN, method="totp")


def test_older_step_is_refused_after_a_newer_one(enrolled, clock):
    """The last accepted step only moves forward: a code from before it is a replay too."""
    clock.advance(60)
    signin.check_code(enrolled.user.pk, enrolled.code(1), ORIGIN, method="totp")
    for older in (0, -1):
        with pytest.raises(InvalidCode):
            signin.check_code(enrolled.user.pk, enrolled.code(older), ORIGIN, method="totp")
    clock.advance(60)  # the step after the accepted one is fine
    signin.check_code(enrolled.user.pk, enrolled.code(0), ORIGIN, method="totp")


@pytest.mark.parametrize("shape", ["{a} {b}", "{a}-{b}", " {a} {b} "])
def test_app_code_may_be_typed_with_spaces_or_a_hyphen(enrolled, shape):
    code = enrolled.code()
    signin.check_code(enrolled.user.pk, shape.format(a=code[:3], b=code[3:]), ORIGIN, method="totp")


@pytest.mark.parametrize("typed", ["12345", "１２３４５６", "+12345", "12345a", "٠١٢٣٤٥"])
def test_malformed_app_code_is_refused_without_counting_a_failure(enrolled, typed):
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, typed, ORIGIN, method="totp")
    assert failures(enrolled.user) == 0


def test_full_width_digits_of_the_right_code_are_refused(enrolled):
    """`int()` reads "１２３４５６" as 123456; we do not (SECURITY.md, Otp.NET #7)."""
    code = enrolled.code()
    full_width = "".join(chr(ord("０") + int(d)) for d in code)
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, full_width, ORIGIN, method="totp")
    signin.check_code(enrolled.user.pk, code, ORIGIN, method="totp")


@pytest.mark.parametrize("typed", [None, 123456, ["123456"]])
def test_non_string_code_is_refused(enrolled, typed):
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, typed, ORIGIN)


def test_wrong_app_code_counts_a_failure(enrolled):
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, wrong_app_code(enrolled), ORIGIN, method="totp")
    assert failures(enrolled.user) == 1


# backup codes -------------------------------------------------------------------------------

def test_backup_code_signs_in_once(enrolled):
    """NIST SP 800-63B-4 §3.1.2 / ASVS 6.5.1: a look-up secret is used successfully only once."""
    accepted = signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN, method="backup_code")
    assert (accepted.method, accepted.backup_codes_remaining) == ("backup_code", 9)
    assert BackupCode.objects.filter(user=enrolled.user, used_at__isnull=False).count() == 1
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN, method="backup_code")
    assert backup_codes.remaining(enrolled.user) == 9


@pytest.mark.parametrize(("index", "variant"), [
    (1, str.upper),
    (2, lambda c: c.replace("-", "")),
    (3, lambda c: c.replace("-", " ")),
    (4, lambda c: " " + c.upper().replace("-", "  ") + " "),
])
def test_backup_code_is_accepted_in_any_case_and_spacing(enrolled, index, variant):
    signin.check_code(enrolled.user.pk, variant(enrolled.codes[index]), ORIGIN, method="backup_code")
    with pytest.raises(InvalidCode):  # another spelling of the spent code is still the spent code
        signin.check_code(enrolled.user.pk, enrolled.codes[index], ORIGIN, method="backup_code")


def test_backup_code_is_recognised_whatever_method_is_named(enrolled):
    """A code of backup-code length typed on the app-code form is taken as a backup code."""
    assert signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN, method="totp").method == "backup_code"
    assert signin.check_code(enrolled.user.pk, enrolled.codes[1], ORIGIN).method == "backup_code"


def test_malformed_backup_code_is_refused_without_counting_a_failure(enrolled):
    """A typo (the check symbol disagrees) is told apart from a wrong code."""
    code = enrolled.codes[0]
    last = code[-1]
    typo = code[:-1] + ("2" if last != "2" else "3")
    with pytest.raises(InvalidCode) as refused:
        signin.check_code(enrolled.user.pk, typo, ORIGIN, method="backup_code")
    assert "typo" in str(refused.value.message)
    assert failures(enrolled.user) == 0
    assert backup_codes.remaining(enrolled.user) == 10


def test_unknown_well_formed_backup_code_counts_a_failure(enrolled):
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, well_formed_unknown_code(), ORIGIN, method="backup_code")
    assert failures(enrolled.user) == 1


def test_backup_code_of_another_user_is_refused(enrolled, make_user, enroll):
    other = enroll(make_user("other"))
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, other.codes[0], ORIGIN, method="backup_code")
    assert failures(enrolled.user) == 1
    assert backup_codes.remaining(other.user) == 10
    signin.check_code(other.user.pk, other.codes[0], ORIGIN, method="backup_code")


def test_backup_code_use_is_audited_and_mailed(enrolled, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)
    event = SecurityEvent.objects.get(user=enrolled.user, type="backup_code_used")
    assert event.detail["remaining"] == 9
    assert [m.subject.split("] ", 1)[1] for m in mailoutbox] == ["A backup code was used to sign in"]
    assert "9" in mailoutbox[0].body


# who may try ------------------------------------------------------------------------------

def test_check_code_for_a_user_without_2fa_finds_no_pending_sign_in(member, clock):
    with pytest.raises(NoPendingSignIn):
        signin.check_code(member.pk, "123456", ORIGIN)


@pytest.mark.parametrize("code", ["123456", "12"])  # well formed, and a typo
def test_app_code_for_a_user_without_2fa_finds_no_pending_sign_in_and_counts_nothing(member, clock, code):
    with pytest.raises(NoPendingSignIn):
        signin.check_code(member.pk, code, ORIGIN, method="totp")
    assert failures(member) == 0


def test_app_code_after_2fa_was_switched_off_finds_no_pending_sign_in(enrolled, clock):
    """The app's code is right, but the app is no longer confirmed: nothing is spent or counted."""
    from twostep.models import Authenticator

    code = enrolled.code()
    Authenticator.objects.filter(user=enrolled.user).update(confirmed=False)
    with pytest.raises(NoPendingSignIn):
        signin.check_code(enrolled.user.pk, code, ORIGIN, method="totp")
    assert failures(enrolled.user) == 0
    assert not SecurityEvent.objects.filter(user=enrolled.user, type="sign_in").exists()


def test_check_code_for_an_inactive_user_finds_no_pending_sign_in(enrolled):
    type(enrolled.user).objects.filter(pk=enrolled.user.pk).update(is_active=False)
    with pytest.raises(NoPendingSignIn):
        signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)


def test_check_code_for_an_unknown_user_finds_no_pending_sign_in(db, clock):
    with pytest.raises(NoPendingSignIn):
        signin.check_code(987654, "123456", ORIGIN)


# telling the user ------------------------------------------------------------------------

def test_failed_second_step_mails_the_user_at_most_once_an_hour(
        enrolled, clock, mailoutbox, django_capture_on_commit_callbacks):
    """ASVS 6.3.5: notify on a partly successful sign-in (right password, wrong code)."""
    def fail():
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(InvalidCode):
            signin.check_code(enrolled.user.pk, wrong_app_code(enrolled), ORIGIN, method="totp")

    fail()
    fail()
    assert len(mailoutbox) == 1
    assert "not the right code" in mailoutbox[0].subject
    clock.advance(3601)
    fail()
    assert len(mailoutbox) == 2


def test_failed_code_for_a_disable_attempt_sends_no_sign_in_warning(
        enrolled, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, wrong_app_code(enrolled), ORIGIN, purpose="disable")
    assert mailoutbox == []
    assert failures(enrolled.user) == 1


def test_failure_while_spending_a_backup_code_leaves_it_unspent(enrolled, monkeypatch):
    """SECURITY.md (Fail closed): if the database fails mid-way, nothing is half done."""
    from twostep.services import audit

    real_record = audit.record

    def failing_record(type, **kwargs):
        if type == "backup_code_used":
            raise RuntimeError("database went away")
        return real_record(type, **kwargs)

    monkeypatch.setattr(audit, "record", failing_record)
    with pytest.raises(RuntimeError):
        signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)
    assert backup_codes.remaining(enrolled.user) == 10
    monkeypatch.setattr(audit, "record", real_record)
    assert signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN).backup_codes_remaining == 9


def test_failure_while_spending_an_app_code_leaves_the_step_unspent(enrolled, monkeypatch):
    from twostep.services import audit

    real_record = audit.record

    def failing_record(type, **kwargs):
        if type == "sign_in":
            raise RuntimeError("database went away")
        return real_record(type, **kwargs)

    last_step = Authenticator.objects.get(user=enrolled.user).last_step
    monkeypatch.setattr(audit, "record", failing_record)
    with pytest.raises(RuntimeError):
        signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)
    assert Authenticator.objects.get(user=enrolled.user).last_step == last_step
    monkeypatch.setattr(audit, "record", real_record)
    signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)


@pytest.mark.django_db(transaction=True)  # mail leaves when the change commits
def test_the_code_that_confirmed_setup_is_already_used_and_raises_no_alarm(member, clock, mailoutbox):
    """Issue: the setup's code typed again at once read "not right" and mailed "someone has your password"."""
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    code = pyotp.TOTP(setup.secret).at(clock())
    authenticators.confirm_app(member, code, ORIGIN)
    mailoutbox.clear()
    with pytest.raises(InvalidCode) as refused:
        signin.check_code(member.pk, code, ORIGIN, method="totp")
    assert str(refused.value.message) == "That code was used a moment ago. Wait for the app to show the next one."
    assert mailoutbox == []
    member.refresh_from_db()
    assert member.second_factor_failures == 1  # still counted: a replay is no free guess


@pytest.mark.django_db(transaction=True)
def test_a_replay_from_elsewhere_still_warns_the_user(enrolled, clock, mailoutbox):
    code = enrolled.code()
    signin.check_code(enrolled.user.pk, code, ORIGIN, method="totp")
    mailoutbox.clear()
    elsewhere = Origin(ip="203.0.113.9", user_agent="curl")
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, code, elsewhere, method="totp")
    assert [m.subject for m in mailoutbox] == ["[twostep] Someone entered your password but not the right code"]
