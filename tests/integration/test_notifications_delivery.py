"""Mail delivery: the user's language, no secret in any mail, and failures that never undo an action."""

from __future__ import annotations

import logging

import pyotp
import pytest
from django.db import transaction
from django.utils import timezone, translation

from twostep.models import Mail, User
from twostep.services import authenticators, factors, notifications, recovery, signin
from twostep.services.errors import InvalidCode
from twostep.services.factors import backup_codes

from ..conftest import ORIGIN, PASSWORD
from .test_notifications_smtp import (  # noqa: F401 — fixtures
    ADMIN_ORIGIN,
    fail_second_step,
    free_port,
    inbox_fixture,
    smtp_server_fixture,
)

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs: mail leaves as in production


# language --------------------------------------------------------------------------------

@pytest.mark.parametrize(("language", "html_lang", "date"), [
    ("ru", "ru", "14 марта 2031 г. 9:26 UTC"),
    ("en", "en", "March 14, 2031, 9:26 a.m. UTC"),
    ("", "en", "March 14, 2031, 9:26 a.m. UTC"),      # no choice yet: the site's language
    ("de", "en", "March 14, 2031, 9:26 a.m. UTC"),    # not offered by the site: the site's
])
def test_mail_is_rendered_in_the_users_language(member, enroll, inbox, language, html_lang, date):
    """The date comes from Django's own locale formats and month names, so it shows which
    language was active while rendering, whatever the ru catalogue of twostep holds yet."""
    User.objects.filter(pk=member.pk).update(language=language)
    member.refresh_from_db()
    enroll(member)
    mail = inbox.only()
    assert f'<html lang="{html_lang}">' in mail.html
    assert date in mail.html_words and date in mail.text
    # Once twostep's own catalogue translates the subject, the mail carries that translation.
    english = "Two-factor authentication is now on"
    with translation.override(html_lang):
        translated = translation.gettext(english)
    assert mail.subject == f"[Acme] {translated}"


# never a secret --------------------------------------------------------------------------

def test_no_mail_holds_a_code_a_secret_or_a_password(member, enroll, admin, admin_factor, clock, inbox,
                                                      settings, smtp_server):
    """STYLE.md habit 6, NIST §3.1.2: codes are shown once on a page, never sent anywhere."""
    smtp_server.handler.envelopes.clear()  # the admin's own setup mail: only the member's count here
    settings.TWOSTEP_SECOND_FACTOR_LOCK_AFTER = 2
    enrolled = enroll(member)
    made = backup_codes.generate(member, PASSWORD, ORIGIN)
    signin.check_code(member.pk, made.codes[0], ORIGIN)
    app_code = enrolled.code()
    signin.check_code(member.pk, app_code, ORIGIN)  # no mail: an ordinary sign-in
    clock.advance(30)
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    first_code = pyotp.TOTP(setup.secret).at(clock())
    authenticators.confirm_app(member, first_code, ORIGIN, replace_apps=True)
    fail_second_step(member, setup.secret, clock)
    fail_second_step(member, setup.secret, clock)
    recovery.admin_disable_two_factor(admin, member.pk, "lost phone", PASSWORD, ADMIN_ORIGIN,
                                      second_factor_fresh=True)
    assert inbox.subjects() == [  # every kind once
        "Two-factor authentication is now on", "New backup codes were made",
        "A backup code was used to sign in", "A new authenticator was registered",
        "Someone entered your password but not the right code", "Your second factor is locked",
        "Two-factor authentication was switched off",
    ]
    # What a reader sees; raw headers and MIME boundaries carry random digits a 6-digit code could match.
    everything = "\n".join(m.subject + m.text + m.html for m in inbox.mails).lower()
    codes = [*enrolled.codes, *made.codes]
    secrets = [*codes, *(c.replace("-", "") for c in codes), enrolled.secret, setup.secret, PASSWORD,
               app_code, first_code]
    assert [s for s in secrets if s.lower() in everything] == []


# delivery failures -----------------------------------------------------------------------

def test_unreachable_mail_server_is_logged_the_mail_waits_and_the_action_stands(enrolled, inbox, settings,
                                                                               caplog):
    """SECURITY.md (Fail closed): a mail that cannot be sent never undoes the action; it is retried."""
    settings.EMAIL_PORT = free_port()  # nothing listens there: connection refused
    caplog.set_level(logging.INFO, logger="twostep.notifications")
    inbox.clear()
    new = backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    assert inbox.mails == []
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "twostep.notifications" and r.levelno == logging.WARNING]
    mail = Mail.objects.get(user=enrolled.user, kind="backup_codes_generated")
    assert len(warnings) == 1 and warnings[0].startswith(
        f"could not send backup_codes_generated mail to user {enrolled.user.pk} (mail {mail.pk}, attempt 1 of 7): "
        "ConnectionRefusedError")
    assert (mail.status, mail.attempts) == ("queued", 1) and mail.next_attempt_at > timezone.now()
    # The new set is in force: an old code is refused, a new one signs in.
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)
    assert signin.check_code(enrolled.user.pk, new.codes[0], ORIGIN).backup_codes_remaining == 9


def test_refused_recipient_is_logged_and_the_switch_off_stands(enrolled, admin, inbox, smtp_server, caplog,
                                                               admin_factor):
    smtp_server.handler.refuse = True
    inbox.clear()
    recovery.admin_disable_two_factor(admin, enrolled.user.pk, "lost phone", PASSWORD, ADMIN_ORIGIN,
                                      second_factor_fresh=True)
    assert not factors.enabled(enrolled.user)
    assert inbox.mails == []
    assert f"could not send two_factor_disabled mail to user {enrolled.user.pk}" in caplog.text
    assert "SMTPRecipientsRefused" in caplog.text
    # 550 is SMTP's "no" for good: not retried, kept as failed for the operator.
    mail = Mail.objects.get(user=enrolled.user, kind="two_factor_disabled")
    assert (mail.status, mail.attempts) == ("failed", 1)


def test_successful_delivery_is_logged_without_the_address(enrolled, inbox, caplog):
    caplog.set_level(logging.INFO, logger="twostep.notifications")
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)
    ours = [r.getMessage() for r in caplog.records if r.name == "twostep.notifications"]
    assert ours == [f"sent backup_code_used mail to user {enrolled.user.pk}"]


def test_action_that_rolls_back_mails_nobody(member, inbox):
    with pytest.raises(RuntimeError), transaction.atomic():
        notifications.notify(member, "backup_codes_generated", ip=ORIGIN.ip)
        raise RuntimeError("the action failed after queueing its mail")
    assert inbox.mails == []


def test_user_without_an_address_gets_no_mail_and_the_action_stands(enrolled, inbox):
    User.objects.filter(pk=enrolled.user.pk).update(email="")
    enrolled.user.refresh_from_db()
    inbox.clear()
    backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    assert inbox.mails == []


def test_unknown_kind_is_a_programming_error(member):
    with pytest.raises(ValueError, match="unknown notification kind"):
        notifications.notify(member, "two_factor_enabled_typo")
