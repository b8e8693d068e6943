"""The Account security page: switching on, the codes page, new codes, replacing, switching off."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pyotp
import pytest
from django.contrib.sessions.models import Session

from twostep.models import Account, SecurityEvent
from twostep.services import authenticators, factors, signin
from twostep.services.errors import InvalidCode

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db

CODE_SHAPE = re.compile(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>")


def sign_in(client, login="member", code=None):
    """Sign in through the pages, so the password counts as fresh."""
    client.post("/login", {"login": login, "password": PASSWORD})
    if code is not None:
        client.post("/login/code", {"code": code})
    assert "_auth_user_id" in client.session


def force_login(client, user):
    """Sign in as `user` as stored now (enrolling rotated the security stamp of the row)."""
    user.refresh_from_db()
    client.force_login(user)


def shown_codes(response) -> list[str]:
    return CODE_SHAPE.findall(response.content.decode())


def test_security_page_needs_sign_in(client, db):
    response = client.get("/security")
    assert response.status_code == 302 and response["Location"] == "/login?next=/security"


def test_security_page_shows_two_factor_off_with_switch_on(client, member):
    client.force_login(member)
    page = client.get("/security").content.decode()
    assert "Two-factor authentication" in page and "Switch on" in page
    assert 'action="/security/setup"' in page and 'name="password"' in page


def test_enable_shows_qr_and_key_then_codes_once(client, member, clock):
    client.force_login(member)
    response = client.post("/security/setup", {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/security/setup"
    page = client.get("/security/setup").content.decode()
    setup = authenticators.pending_app(member)
    assert "<svg" in page and setup.grouped_secret in page
    assert re.fullmatch(r"([A-Z2-7]{4} )+[A-Z2-7]{1,4}", setup.grouped_secret)
    for app in ("Google Authenticator", "Aegis", "FreeOTP", "Microsoft Authenticator", "1Password"):
        assert app in page
    assert "SHA-1" in page and "30 seconds" in page

    response = client.post("/security/setup/confirm", {"code": pyotp.TOTP(setup.secret).at(clock())})
    assert response.status_code == 302 and response["Location"] == "/security/backup-codes/new"
    response = client.get(response["Location"])
    assert response.status_code == 200
    codes = shown_codes(response)
    assert len(codes) == 10
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert "Two-factor authentication is on." in page
    assert 'download="twostep-backup-codes-member.txt"' in page
    link = re.search(r'href="(data:text/plain;charset=utf-8,[^"]+)"', page).group(1)
    text = unquote(link.split(",", 1)[1])
    assert all(code in text for code in codes) and "Acme" in text and "member" in text
    assert "window.print" not in page and "<script>" not in page
    assert 'name="saved"' in page and "required" in page
    assert factors.enabled(member)
    # The session stays signed in, and no session row holds a readable code (DESIGN §2): the
    # set waits there encrypted, for this session to show it again until it is saved.
    assert client.get("/security").status_code == 200
    for session in Session.objects.all():
        stored = session.session_data + repr(session.get_decoded())
        assert not any(code in stored or code.replace("-", "") in stored for code in codes)


def test_enable_with_wrong_first_code_shows_message(client, member, clock):
    client.force_login(member)
    client.post("/security/setup", {"password": PASSWORD})
    setup = authenticators.pending_app(member)
    right = pyotp.TOTP(setup.secret).at(clock())
    wrong = "000000" if right != "000000" else "111111"
    response = client.post("/security/setup/confirm", {"code": wrong})
    assert response.status_code == 400
    page = response.content.decode()
    assert "That code is not right" in page and "<svg" in page
    assert not factors.enabled(member)


def test_enable_with_code_from_a_skewed_phone_says_the_clock_is_off(client, member, clock):
    client.force_login(member)
    client.post("/security/setup", {"password": PASSWORD})
    setup = authenticators.pending_app(member)
    response = client.post("/security/setup/confirm", {"code": pyotp.TOTP(setup.secret).at(clock() + 150)})
    assert "2 minutes fast" in response.content.decode()


def test_setup_needs_password_when_not_fresh(client, member):
    client.force_login(member)
    response = client.post("/security/setup", {"password": ""})
    assert response.status_code == 400
    response = client.post("/security/setup", {"password": "wrong password"})
    assert response.status_code == 403
    assert "The password is not right." in response.content.decode()
    assert authenticators.pending_app(member) is None


def test_setup_skips_password_right_after_sign_in(client, member):
    sign_in(client)
    page = client.get("/security").content.decode()
    assert 'id="enable_password"' not in page
    assert client.post("/security/setup", {})["Location"] == "/security/setup"
    assert authenticators.pending_app(member) is not None


def test_setup_is_post_only_for_changes(client, member):
    client.force_login(member)
    client.get("/security/setup")
    assert authenticators.pending_app(member) is None
    assert client.get("/security/setup/confirm").status_code == 405


def test_security_page_shows_codes_left_and_warns_when_low(client, enrolled):
    force_login(client, enrolled.user)
    page = client.get("/security").content.decode()
    assert "10 of 10 backup codes left." in page and "running out" not in page
    for code in enrolled.codes[:7]:
        signin.check_code(enrolled.user.pk, code, ORIGIN, method="backup_code")
    page = client.get("/security").content.decode()
    assert "3 of 10 backup codes left." in page and "running out of backup codes" in page


def test_security_page_lists_recent_events(client, enrolled):
    force_login(client, enrolled.user)
    page = client.get("/security").content.decode()
    assert "Recent security events" in page
    assert "Two-factor authentication switched on" in page and "192.0.2.10" in page


def test_generate_new_codes_makes_old_ones_stop_working(client, enrolled):
    force_login(client, enrolled.user)
    response = client.post("/security/backup-codes", {"password": PASSWORD}, follow=True)
    assert response.redirect_chain == [("/security/backup-codes/new", 302)]
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new = shown_codes(response)
    assert len(new) == 10 and not set(new) & set(enrolled.codes)
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN, method="backup_code")
    assert signin.check_code(enrolled.user.pk, new[0], ORIGIN, method="backup_code")


def test_generate_new_codes_with_wrong_password_shows_error(client, enrolled):
    force_login(client, enrolled.user)
    response = client.post("/security/backup-codes", {"password": "wrong password"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "The password is not right." in page and 'id="generate_password_error"' in page
    assert shown_codes(response) == []


def test_generate_codes_needs_post(client, enrolled):
    force_login(client, enrolled.user)
    assert client.get("/security/backup-codes").status_code == 405


def test_adding_an_app_keeps_the_first_one_working(client, enrolled, clock):
    force_login(client, enrolled.user)
    client.post("/security/setup", {"password": PASSWORD})
    new_secret = authenticators.pending_app(enrolled.user).secret
    # The old app still signs in while the new one waits.
    assert signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN, method="totp")
    clock.advance(30)
    response = client.post("/security/setup/confirm", {"code": pyotp.TOTP(new_secret).at(clock())})
    assert response.status_code == 302 and response["Location"] == "/security"
    page = client.get("/security").content.decode()
    assert "Authenticator app 2 is added to your authenticators." in page
    clock.advance(30)
    # Adding keeps the first app and the backup codes.
    assert signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN, method="totp")
    assert signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN, method="backup_code")


def test_lost_phone_path_registers_new_authenticator_and_new_codes(client, enrolled, clock):
    client.post("/login", {"login": "member", "password": PASSWORD})
    client.post("/login/backup-code", {"code": enrolled.codes[0]})
    page = client.get("/security/recover").content.decode()
    assert 'id="recover_password"' not in page  # the sign-in a moment ago counts
    assert client.post("/security/setup", {})["Location"] == "/security/setup"
    assert "you also get a fresh set of backup codes" in client.get("/security/setup").content.decode()
    new_secret = authenticators.pending_app(enrolled.user).secret
    response = client.post("/security/setup/confirm", {"code": pyotp.TOTP(new_secret).at(clock())}, follow=True)
    codes = shown_codes(response)
    assert len(codes) == 10 and not set(codes) & set(enrolled.codes)
    assert client.get("/security/recover")["Location"] == "/security"


def test_recover_page_without_backup_code_sign_in_goes_to_security(client, enrolled):
    force_login(client, enrolled.user)
    assert client.get("/security/recover")["Location"] == "/security"


def test_disable_needs_password_and_current_code(client, enrolled):
    force_login(client, enrolled.user)
    response = client.post("/security/disable", {"password": "wrong password", "code": enrolled.code()})
    assert response.status_code == 403 and "The password is not right." in response.content.decode()
    wrong = "111111" if enrolled.code() != "111111" else "222222"
    response = client.post("/security/disable", {"password": PASSWORD, "code": wrong})
    assert response.status_code == 400
    assert 'id="disable_code_error"' in response.content.decode()
    assert factors.enabled(enrolled.user)
    response = client.post("/security/disable", {"password": PASSWORD, "code": enrolled.code()})
    assert response.status_code == 302
    assert not factors.enabled(enrolled.user)
    page = client.get("/security").content.decode()  # this session survives the change
    assert "Two-factor authentication is off." in page
    assert SecurityEvent.objects.filter(user=enrolled.user, type="two_factor_disabled").exists()


def test_disable_is_refused_when_the_account_requires_two_factor(client, enrolled):
    Account.objects.update(require_two_factor=True)
    force_login(client, enrolled.user)
    page = client.get("/security").content.decode()
    assert "requires two-factor authentication, so it cannot be switched off" in page
    assert 'action="/security/disable"' not in page
    response = client.post("/security/disable", {"password": PASSWORD, "code": enrolled.code()})
    assert response.status_code == 403
    assert "cannot be switched off" in response.content.decode()
    assert factors.enabled(enrolled.user)


def test_other_sessions_end_when_two_factor_changes(client, enrolled):
    from django.test import Client

    other = Client()
    force_login(other, enrolled.user)
    force_login(client, enrolled.user)
    client.post("/security/disable", {"password": PASSWORD, "code": enrolled.code()})
    assert client.get("/security").status_code == 200
    assert other.get("/security").status_code == 302
