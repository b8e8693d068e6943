"""Switching 2FA off: by the user (password + code), by an account admin, by the operator."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user
from django.http import HttpRequest
from django.test import Client

from twostep.http import status_for
from twostep.models import Account, Authenticator, BackupCode, SecurityEvent, User
from twostep.services import accounts, authenticators, factors, recovery, signin
from twostep.services.errors import (
    Conflict,
    InvalidCode,
    InvalidInput,
    NotAccountAdmin,
    NotFound,
    TwoFactorDisabled,
    TwoFactorRequired,
    WrongPassword,
)

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_ORIGIN = ORIGIN.__class__(ip="203.0.113.5", user_agent="admin's browser")


def signed_in_session(user):
    """A real Django session for the user, as after a full sign-in (checked to be signed in)."""
    client = Client()
    client.force_login(User.objects.get(pk=user.pk), backend="twostep.auth_backend.LoginBackend")
    session = client.session
    assert session_user(session).pk == user.pk
    return session


def session_user(session):
    request = HttpRequest()
    request.session = session
    return get_user(request)


def assert_switched_off(user):
    assert not factors.enabled(user)
    assert not Authenticator.objects.filter(user=user).exists()
    assert not BackupCode.objects.filter(user=user).exists()
    user.refresh_from_db()
    assert not hasattr(user, "backup_code_set") or user.backup_code_set is None
    assert user.second_factor_failures == 0


# by the user ----------------------------------------------------------------------------------

def test_disable_with_password_and_app_code(enrolled, mailoutbox, django_capture_on_commit_callbacks):
    session = signed_in_session(enrolled.user)
    with django_capture_on_commit_callbacks(execute=True):
        authenticators.disable(enrolled.user, PASSWORD, enrolled.code(), ORIGIN)
    assert_switched_off(enrolled.user)
    assert not session_user(session).is_authenticated  # ASVS 7.4.3
    event = SecurityEvent.objects.get(user=enrolled.user, type="two_factor_disabled")
    assert (event.actor_id, event.ip, event.user_agent) == (enrolled.user.pk, ORIGIN.ip, ORIGIN.user_agent)
    assert [m.to for m in mailoutbox] == [["member@acme.example"]]
    assert "switched off" in mailoutbox[0].subject


def test_disable_with_password_and_backup_code(enrolled):
    authenticators.disable(enrolled.user, PASSWORD, enrolled.codes[0].upper(), ORIGIN)
    assert_switched_off(enrolled.user)


@pytest.mark.parametrize("password", ["not the password", None, ""])
def test_disable_needs_the_password(enrolled, password):
    """mozilla/fxa #6055: 2FA was switched off with the session alone."""
    with pytest.raises(WrongPassword):
        authenticators.disable(enrolled.user, password, enrolled.code(), ORIGIN)
    assert factors.enabled(enrolled.user)


def test_disable_needs_a_current_code(enrolled):
    wrong = f"{(int(enrolled.code()) + 1) % 1_000_000:06d}"
    with pytest.raises(InvalidCode):
        authenticators.disable(enrolled.user, PASSWORD, wrong, ORIGIN)
    assert factors.enabled(enrolled.user)
    enrolled.user.refresh_from_db()
    assert enrolled.user.second_factor_failures == 1


def test_disable_with_a_replayed_code_is_refused(enrolled):
    code = enrolled.code()
    signin.check_code(enrolled.user.pk, code, ORIGIN)
    with pytest.raises(InvalidCode):
        authenticators.disable(enrolled.user, PASSWORD, code, ORIGIN)
    assert factors.enabled(enrolled.user)


def test_disable_is_refused_when_the_account_requires_2fa(enrolled):
    Account.objects.filter(pk=enrolled.user.account_id).update(require_two_factor=True)
    enrolled.user.refresh_from_db()
    code = enrolled.code()
    with pytest.raises(TwoFactorRequired) as refused:
        authenticators.disable(enrolled.user, PASSWORD, code, ORIGIN)
    assert status_for(refused.value) == 403 and refused.value.code == "two_factor_required_by_account"
    assert factors.enabled(enrolled.user)
    signin.check_code(enrolled.user.pk, code, ORIGIN)  # the code was not spent


def test_disable_without_2fa_is_refused(member, clock):
    with pytest.raises(TwoFactorDisabled):
        authenticators.disable(member, PASSWORD, "123456", ORIGIN)


# by an account admin --------------------------------------------------------------------------

@pytest.fixture
def stranger(enroll, account):
    """An enrolled user of another account, with that account's admin."""
    accounts.create_account("Globex", "globex-admin", "admin@globex.example", PASSWORD)
    return enroll(accounts.create_user("hank", "Globex", "hank@globex.example", PASSWORD))


def test_admin_switches_off_2fa_for_a_user_of_the_account(
        enrolled, admin, mailoutbox, django_capture_on_commit_callbacks, admin_factor):
    session = signed_in_session(enrolled.user)
    stamp = User.objects.get(pk=enrolled.user.pk).security_stamp
    with django_capture_on_commit_callbacks(execute=True):
        recovery.admin_disable_two_factor(admin, enrolled.user.pk, "  lost phone, ticket 7 ", PASSWORD,
                                          ADMIN_ORIGIN, second_factor_fresh=True)
    assert_switched_off(enrolled.user)
    assert not session_user(session).is_authenticated  # ASVS 7.4.5: the admin ends the sessions
    assert User.objects.get(pk=enrolled.user.pk).security_stamp != stamp
    event = SecurityEvent.objects.get(user=enrolled.user, type="admin_disabled_two_factor")
    assert event.actor_id == admin.pk and event.actor_label == "admin"
    assert event.detail == {"reason": "lost phone, ticket 7"}
    assert (event.ip, event.user_agent, event.account_id) == ("203.0.113.5", "admin's browser", admin.account_id)
    assert [m.to for m in mailoutbox] == [["member@acme.example"]]
    assert "lost phone, ticket 7" in mailoutbox[0].body and "admin" in mailoutbox[0].body


def test_admin_cannot_reach_a_user_of_another_account(stranger, admin, admin_factor):
    """ASVS 8.2.2 / TeamPass #2172: another account's user is simply "not found"."""
    with pytest.raises(NotFound) as refused:
        recovery.admin_disable_two_factor(admin, stranger.user.pk, "because", PASSWORD, ORIGIN,
                                          second_factor_fresh=True)
    assert status_for(refused.value) == 404
    assert factors.enabled(stranger.user)


@pytest.mark.parametrize("user_id", [999_999, "abc", None, "1; DROP TABLE"])
def test_admin_gets_not_found_for_an_unknown_user(admin, user_id, admin_factor):
    with pytest.raises(NotFound):
        recovery.admin_disable_two_factor(admin, user_id, "because", PASSWORD, ORIGIN,
                                          second_factor_fresh=True)


def test_admin_and_foreign_user_are_answered_alike(stranger, admin, admin_factor):
    """An id in another account and an unused id give the same answer (no enumeration)."""
    answers = []
    for user_id in (stranger.user.pk, 999_999):
        with pytest.raises(NotFound) as refused:
            recovery.admin_disable_two_factor(admin, user_id, "because", PASSWORD, ORIGIN,
                                              second_factor_fresh=True)
        answers.append((type(refused.value), str(refused.value)))
    assert answers[0] == answers[1]


def test_a_member_who_is_not_admin_cannot_switch_off_2fa(enrolled, make_user):
    colleague = make_user("colleague")
    with pytest.raises(NotAccountAdmin):
        recovery.admin_disable_two_factor(colleague, enrolled.user.pk, "because", PASSWORD, ORIGIN,
                                          second_factor_fresh=True)
    assert factors.enabled(enrolled.user)


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 501])
def test_admin_must_give_a_reason(enrolled, admin, reason, admin_factor):
    with pytest.raises(InvalidInput):
        recovery.admin_disable_two_factor(admin, enrolled.user.pk, reason, PASSWORD, ORIGIN,
                                          second_factor_fresh=True)
    assert factors.enabled(enrolled.user)


@pytest.mark.parametrize("password", ["not the password", None, "", PASSWORD.upper()])
def test_admin_must_confirm_with_their_own_password(enrolled, admin, password, admin_factor):
    with pytest.raises(WrongPassword):
        recovery.admin_disable_two_factor(admin, enrolled.user.pk, "because", password, ORIGIN,
                                          second_factor_fresh=True)
    assert factors.enabled(enrolled.user)


def test_admin_password_is_theirs_not_the_users(enrolled, make_user, enroll):
    boss = make_user("boss", is_admin=True)
    enroll(boss)
    User.objects.filter(pk=boss.pk).update(password=User.objects.get(login="admin").password)
    boss.refresh_from_db()
    boss.set_password("the boss's own secret phrase")
    boss.save()
    with pytest.raises(WrongPassword):
        recovery.admin_disable_two_factor(boss, enrolled.user.pk, "because", PASSWORD, ORIGIN,
                                          second_factor_fresh=True)
    recovery.admin_disable_two_factor(boss, enrolled.user.pk, "because", "the boss's own secret phrase",
                                      ORIGIN,
                                      second_factor_fresh=True)
    assert not factors.enabled(enrolled.user)


def test_admin_cannot_switch_off_their_own_2fa_this_way(admin, admin_factor):
    """Otherwise an admin session plus the password would skip the admin's second factor."""
    with pytest.raises(Conflict):
        recovery.admin_disable_two_factor(admin, admin.pk, "because", PASSWORD, ORIGIN,
                                          second_factor_fresh=True)
    assert factors.enabled(admin)


def test_admin_switching_off_a_user_without_2fa_is_refused(member, admin, clock, admin_factor):
    with pytest.raises(TwoFactorDisabled):
        recovery.admin_disable_two_factor(admin, member.pk, "because", PASSWORD, ORIGIN,
                                          second_factor_fresh=True)
    assert not SecurityEvent.objects.filter(type="admin_disabled_two_factor").exists()


# by the operator ------------------------------------------------------------------------------

def test_operator_switches_off_2fa_for_anyone(stranger, mailoutbox, django_capture_on_commit_callbacks):
    session = signed_in_session(stranger.user)
    with django_capture_on_commit_callbacks(execute=True):
        recovery.operator_disable_two_factor(" HANK ", "ticket 99: phone stolen")
    assert_switched_off(stranger.user)
    assert not session_user(session).is_authenticated
    event = SecurityEvent.objects.get(user=stranger.user, type="operator_disabled_two_factor")
    assert (event.actor_id, event.actor_label) == (None, "operator")
    assert event.user_agent == "twostep command line"
    assert event.detail == {"reason": "ticket 99: phone stolen"}
    assert [m.to for m in mailoutbox] == [["hank@globex.example"]]
    assert "ticket 99: phone stolen" in mailoutbox[0].body and "operator" in mailoutbox[0].body


def test_operator_must_give_a_reason(enrolled):
    with pytest.raises(InvalidInput):
        recovery.operator_disable_two_factor("member", "  ")
    assert factors.enabled(enrolled.user)


def test_operator_gets_not_found_for_an_unknown_login(db):
    with pytest.raises(NotFound):
        recovery.operator_disable_two_factor("nobody", "because")


def test_operator_switching_off_a_user_without_2fa_is_refused(member):
    with pytest.raises(TwoFactorDisabled):
        recovery.operator_disable_two_factor("member", "because")


def test_after_recovery_the_user_can_enrol_again(enrolled, admin, clock, admin_factor):
    recovery.admin_disable_two_factor(admin, enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                      second_factor_fresh=True)
    assert signin.check_password("member", PASSWORD, ORIGIN).stage == signin.AUTHENTICATED
    import pyotp

    setup = authenticators.start_app(enrolled.user, PASSWORD, ORIGIN)
    confirmed = authenticators.confirm_app(enrolled.user, pyotp.TOTP(setup.secret).at(clock()), ORIGIN)
    assert set(confirmed.backup_codes.codes).isdisjoint(enrolled.codes)
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, enrolled.codes[1], ORIGIN)


def test_mail_that_cannot_be_sent_does_not_undo_the_switch_off(enrolled, admin, settings, caplog,
                                                               django_capture_on_commit_callbacks,
                                                               admin_factor):
    """SECURITY.md (Fail closed): a mail that cannot be sent never undoes the action; it is logged."""
    from .test_notifications_smtp import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens: refused
    with django_capture_on_commit_callbacks(execute=True):
        recovery.admin_disable_two_factor(admin, enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                          second_factor_fresh=True)
    assert_switched_off(enrolled.user)
    assert "could not send two_factor_disabled mail" in caplog.text
