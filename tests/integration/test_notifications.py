"""Every e-mail kind, triggered through its service function and read off a real SMTP server."""

from __future__ import annotations

import pyotp
import pytest

from twostep.services import authenticators, recovery, signin
from twostep.services.factors import backup_codes

from ..conftest import ORIGIN, PASSWORD
from .test_notifications_smtp import (  # noqa: F401 — fixtures
    ADMIN_ORIGIN,
    fail_second_step,
    inbox_fixture,
    smtp_server_fixture,
)

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs: mail leaves as in production


# every kind ------------------------------------------------------------------------------

def test_two_factor_enabled_arrives_as_text_and_html_to_the_user(member, enroll, inbox):
    enroll(member)
    mail = inbox.only()
    assert mail.sender == "noreply@acme.example"
    assert mail.recipients == ["member@acme.example"]
    assert str(mail.message["To"]) == "member@acme.example"
    assert mail.subject == "[Acme] Two-factor authentication is now on"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert mail.message.get_content_type() == "multipart/alternative"
    assert mail.text and mail.html.lstrip().lower().startswith("<!doctype html>")
    assert mail.says("Two-factor authentication is now on for your sign-in member.")
    assert mail.says("When: March 14, 2031, 9:26 a.m. UTC")
    assert mail.says("From address: 192.0.2.10")
    assert mail.says("If you did not do this")


def test_replacing_the_app_mails_that_a_new_one_was_registered(enrolled, clock, inbox):
    inbox.clear()
    setup = authenticators.start_app(enrolled.user, PASSWORD, ORIGIN)
    authenticators.confirm_app(enrolled.user, pyotp.TOTP(setup.secret).at(clock()), ORIGIN, replace_apps=True)
    mail = inbox.only()
    assert inbox.subjects() == ["A new authenticator was registered"]
    assert mail.says("A new authenticator app was registered for your sign-in member.")
    assert mail.says("Codes from the previous app no longer work")
    assert mail.says("From address: 192.0.2.10")


def test_adding_and_removing_an_authenticator_mails_each_by_name(enrolled, clock, inbox):
    inbox.clear()
    setup = authenticators.start_app(enrolled.user, PASSWORD, ORIGIN, name="Work tablet")
    added = authenticators.confirm_app(enrolled.user, pyotp.TOTP(setup.secret).at(clock()), ORIGIN)
    assert inbox.subjects() == ["An authenticator was added to your sign-in"]
    assert inbox.only().says("A new authenticator, Work tablet, was added to your sign-in member.")
    inbox.clear()
    assert authenticators.remove(enrolled.user, added.authenticator.pk, PASSWORD, ORIGIN) is True
    assert inbox.subjects() == ["An authenticator was removed from your sign-in"]
    assert inbox.only().says("The authenticator Work tablet was removed from your sign-in member")


def test_generating_backup_codes_mails_the_user_but_not_the_codes(enrolled, inbox):
    """NIST SP 800-63B-4 §4.2.1.1: issuing new recovery codes notifies the user."""
    inbox.clear()
    new = backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    mail = inbox.only()
    assert inbox.subjects() == ["New backup codes were made"]
    assert mail.says("All earlier backup codes stopped working.")
    assert mail.says("They are never sent by e-mail.")
    assert not any(code in mail.text or code in mail.html for code in new.codes)


def test_backup_code_sign_in_mails_the_number_left(enrolled, inbox):
    inbox.clear()
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)
    mail = inbox.only()
    assert inbox.subjects() == ["A backup code was used to sign in"]
    assert mail.says("A backup code was used to sign in as member.")
    assert mail.says("You have 9 backup codes left.")
    assert not mail.says("running out")
    assert mail.says("choose “Replace authenticator”")


def test_backup_code_sign_in_warns_when_few_are_left(enrolled, inbox, settings):
    settings.TWOSTEP_BACKUP_CODES_LOW = 9  # is_low(9): the first use already leaves "few"
    inbox.clear()
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)
    mail = inbox.only()
    assert mail.says("You have 9 backup codes left.")
    assert mail.says("You are running out of backup codes.")
    assert mail.says("open Account security and choose “Generate new codes”")


def test_last_backup_code_mail_says_none_are_left(enrolled, inbox):
    for code in enrolled.codes[:9]:
        signin.check_code(enrolled.user.pk, code, ORIGIN)
    assert inbox.mails[-1].says("You have 1 backup code left.")
    assert inbox.mails[-1].says("You are running out of backup codes.")  # 1 ≤ TWOSTEP_BACKUP_CODES_LOW
    inbox.clear()
    signin.check_code(enrolled.user.pk, enrolled.codes[9], ORIGIN)
    mail = inbox.only()
    assert mail.says("You have no backup codes left.")
    assert mail.says("Make new codes now: sign in, open Account security and choose “Generate new codes”.")
    assert not mail.says("You have 0")


def test_failed_second_step_mails_at_most_once_an_hour(enrolled, clock, inbox):
    """ASVS 6.3.5: notify on a partly successful sign-in; the caller limits it to one an hour."""
    inbox.clear()
    fail_second_step(enrolled.user, enrolled.secret, clock)
    fail_second_step(enrolled.user, enrolled.secret, clock)
    mail = inbox.only()
    assert inbox.subjects() == ["Someone entered your password but not the right code"]
    assert mail.says("Someone entered the correct password for your sign-in member, then a wrong code")
    assert mail.says("From address: 192.0.2.10")
    assert mail.says("change it at once")
    clock.advance(1800)
    fail_second_step(enrolled.user, enrolled.secret, clock)
    assert len(inbox.mails) == 1
    clock.advance(1801)
    fail_second_step(enrolled.user, enrolled.secret, clock)
    assert inbox.subjects() == ["Someone entered your password but not the right code"] * 2


def test_locked_second_factor_mails_how_to_get_back_in(enrolled, clock, inbox, settings):
    settings.TWOSTEP_SECOND_FACTOR_LOCK_AFTER = 3
    inbox.clear()
    for _ in range(3):
        fail_second_step(enrolled.user, enrolled.secret, clock)
    assert inbox.subjects() == ["Someone entered your password but not the right code",
                                "Your second factor is locked"]
    mail = inbox.mails[1]
    assert mail.says("not even a correct code is accepted")
    assert mail.says("ask your account admin to switch off two-factor authentication for you")


def test_user_switching_off_2fa_is_mailed(enrolled, inbox):
    inbox.clear()
    authenticators.disable(enrolled.user, PASSWORD, enrolled.code(), ORIGIN)
    mail = inbox.only()
    assert inbox.subjects() == ["Two-factor authentication was switched off"]
    assert mail.says("switched off for your sign-in member, confirmed with your password and a code.")
    assert mail.says("signed out everywhere else")
    assert not mail.says("Reason given")
    assert mail.says("If you did not do this, someone has your password")


def test_switching_off_2fa_with_a_backup_code_mails_both_without_sign_in_advice(enrolled, inbox):
    inbox.clear()
    authenticators.disable(enrolled.user, PASSWORD, enrolled.codes[0], ORIGIN)
    assert inbox.subjects() == ["A backup code was used", "Two-factor authentication was switched off"]
    used = inbox.mails[0]
    assert used.says("was used to confirm a change to your two-factor authentication")
    assert used.says("You have 9 backup codes left.")
    assert not used.says("Replace authenticator")


def test_admin_switching_off_2fa_names_the_admin_and_the_reason(enrolled, admin, inbox, admin_factor):
    inbox.clear()
    recovery.admin_disable_two_factor(admin, enrolled.user.pk, "Lost phone, ticket 7", PASSWORD,
                                      ADMIN_ORIGIN, second_factor_fresh=True)
    mail = inbox.only()
    assert mail.recipients == ["member@acme.example"]  # the user, not the admin
    assert inbox.subjects() == ["Two-factor authentication was switched off"]
    assert mail.says("Your account admin admin switched off two-factor authentication for your sign-in member.")
    assert mail.says("Reason given: Lost phone, ticket 7")
    assert mail.says("From address: 203.0.113.5")
    assert mail.says("If you did not ask for this, contact your account admin at once.")


def test_operator_switching_off_2fa_names_the_operator_and_the_reason(enrolled, inbox):
    inbox.clear()
    recovery.operator_disable_two_factor("member", "ticket 99: phone stolen")
    mail = inbox.only()
    assert mail.says("The server operator switched off two-factor authentication for your sign-in member.")
    assert mail.says("Reason given: ticket 99: phone stolen")
    assert "From address" not in mail.text + mail.html_words  # the command line has no address


def test_account_requiring_2fa_tells_the_user_setup_comes_next(enrolled, admin, inbox, admin_factor):
    admin.account.require_two_factor = True
    admin.account.save()
    inbox.clear()
    recovery.admin_disable_two_factor(admin, enrolled.user.pk, "new phone", PASSWORD, ADMIN_ORIGIN,
                                      second_factor_fresh=True)
    assert inbox.only().says("you will be asked to set up an authenticator the next time you sign in")


def test_reason_is_escaped_in_html_and_verbatim_in_text(enrolled, admin, inbox, admin_factor):
    inbox.clear()
    recovery.admin_disable_two_factor(admin, enrolled.user.pk, 'see <a href="x">this</a> & that',
                                      PASSWORD, ADMIN_ORIGIN, second_factor_fresh=True)
    mail = inbox.only()
    assert 'Reason given: see <a href="x">this</a> & that' in mail.text
    assert "see &lt;a href=&quot;x&quot;&gt;this&lt;/a&gt; &amp; that" in mail.html
    assert '<a href="x">' not in mail.html
