"""Password reset by e-mail and password change: no enumeration, no sign-in, no 2FA bypass."""

from __future__ import annotations

import re

import pytest

from twostep.models import SecurityEvent, User
from twostep.services import passwords, signin
from twostep.services.errors import InvalidInput, Throttled, WrongPassword
from twostep.services.passwords import InvalidResetLink
from twostep.services.signin import AUTHENTICATED, SECOND_FACTOR

from ..conftest import ORIGIN, PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs: mail leaves as in production

NEW_PASSWORD = "a brand new passphrase 42"


def make_url(uid, token):
    return f"http://testserver/password-reset/{uid}/{token}"


def link_in(mail) -> tuple[str, str]:
    uid, token = re.search(r"/password-reset/([^/\s]+)/([^/\s\"<]+)", mail.body).groups()
    return uid, token


def is_signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# Service ------------------------------------------------------------------------------------

def test_request_reset_mails_a_link_to_the_user(member, mailoutbox):
    passwords.request_reset("member", ORIGIN, make_url)
    assert [m.to for m in mailoutbox] == [["member@acme.example"]]
    assert "/password-reset/" in mailoutbox[0].body
    assert SecurityEvent.objects.filter(user=member, type="password_reset_requested").count() == 1


def test_request_reset_by_email_address(member, mailoutbox):
    passwords.request_reset("MEMBER@acme.example", ORIGIN, make_url)
    assert [m.to for m in mailoutbox] == [["member@acme.example"]]


def test_request_reset_for_unknown_login_sends_nothing_and_raises_nothing(db, mailoutbox):
    passwords.request_reset("nobody", ORIGIN, make_url)
    assert mailoutbox == []


def test_request_reset_is_throttled_per_address_for_known_and_unknown_alike(member, clock):
    for _ in range(6):  # a few are free, then requests from this address wait
        passwords.request_reset(f"nobody{_}", ORIGIN, make_url)
    with pytest.raises(Throttled):
        passwords.request_reset("member", ORIGIN, make_url)


def test_confirm_reset_sets_the_password_and_rotates_the_stamp(member, mailoutbox):
    stamp = member.security_stamp
    uid, token = passwords.reset_link_parts(member)
    passwords.confirm_reset(uid, token, NEW_PASSWORD, ORIGIN)
    user = User.objects.get(pk=member.pk)
    assert user.check_password(NEW_PASSWORD) and user.security_stamp != stamp
    assert SecurityEvent.objects.get(type="password_changed").detail == {"via": "reset"}
    assert [m.subject for m in mailoutbox][-1].endswith("Your password was changed")


def test_reset_link_works_once(member):
    uid, token = passwords.reset_link_parts(member)
    passwords.confirm_reset(uid, token, NEW_PASSWORD, ORIGIN)
    with pytest.raises(InvalidResetLink):
        passwords.confirm_reset(uid, token, "yet another passphrase 7", ORIGIN)


def test_reset_link_expires(member, clock, settings):
    uid, token = passwords.reset_link_parts(member)
    clock.advance(settings.PASSWORD_RESET_TIMEOUT + 1)
    with pytest.raises(InvalidResetLink):
        passwords.confirm_reset(uid, token, NEW_PASSWORD, ORIGIN)


@pytest.mark.parametrize("uid,token", [("", ""), ("x", "y"), ("MTIzNDU", "abc-def"), ("!!", "1-2")])
def test_reset_with_a_bad_link_is_invalid(member, uid, token):
    with pytest.raises(InvalidResetLink):
        passwords.confirm_reset(uid, token, NEW_PASSWORD, ORIGIN)


def test_reset_checks_the_password_validators(member):
    uid, token = passwords.reset_link_parts(member)
    with pytest.raises(InvalidInput):
        passwords.confirm_reset(uid, token, "short", ORIGIN)
    assert User.objects.get(pk=member.pk).check_password(PASSWORD)


def test_reset_keeps_two_factor_and_the_second_step(enrolled):
    uid, token = passwords.reset_link_parts(User.objects.get(pk=enrolled.user.pk))
    passwords.confirm_reset(uid, token, NEW_PASSWORD, ORIGIN)
    assert signin.check_password("member", NEW_PASSWORD, ORIGIN).stage == SECOND_FACTOR


def test_change_password_needs_the_current_one(member):
    with pytest.raises(WrongPassword):
        passwords.change_password(member, "wrong", NEW_PASSWORD, ORIGIN)
    passwords.change_password(member, PASSWORD, NEW_PASSWORD, ORIGIN)
    assert signin.check_password("member", NEW_PASSWORD, ORIGIN).stage == AUTHENTICATED


# Web ----------------------------------------------------------------------------------------

def test_login_page_links_to_password_reset(client, db):
    assert 'href="/password-reset"' in client.get("/login").content.decode()


def test_web_reset_answers_the_same_for_unknown_logins(client, member, mailoutbox):
    known = client.post("/password-reset", {"login": "member"})
    unknown = client.post("/password-reset", {"login": "nobody"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"]) == (302, "/login")
    assert len(mailoutbox) == 1


def test_web_reset_never_signs_in_and_ends_sessions(client, enrolled, mailoutbox, clock):
    other = client.__class__()
    other.post("/login", {"login": "member", "password": PASSWORD})
    other.post("/login/code", {"code": enrolled.code()})
    assert is_signed_in(other)
    client.post("/password-reset", {"login": "member"})
    uid, token = link_in(mailoutbox[-1])
    page = client.get(f"/password-reset/{uid}/{token}")
    assert page.status_code == 200 and page["Referrer-Policy"] == "same-origin"  # the token never leaves the site
    response = client.post(f"/password-reset/{uid}/{token}", {"password": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/login"
    assert not is_signed_in(client)
    assert client.get("/security")["Location"].startswith("/login")
    assert other.get("/security").status_code == 302  # the other session ended
    # 2FA is still asked for after the reset (ASVS 6.4.3).
    assert client.post("/login", {"login": "member", "password": NEW_PASSWORD})["Location"].startswith("/login/code")


def test_web_reset_with_a_used_link_says_so(client, member):
    uid, token = passwords.reset_link_parts(member)
    client.post(f"/password-reset/{uid}/{token}", {"password": NEW_PASSWORD})
    page = client.get(f"/password-reset/{uid}/{token}")
    assert page.status_code == 400 and "not valid" in page.content.decode()


def test_web_change_password_keeps_this_session_ends_others(client, member):
    other = client.__class__()
    for c in (client, other):
        c.post("/login", {"login": "member", "password": PASSWORD})
    assert client.get("/security/password").status_code == 200
    response = client.post("/security/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/security"
    assert client.get("/security").status_code == 200
    assert other.get("/security").status_code == 302


def test_web_change_password_with_wrong_current_is_refused(client, member):
    client.post("/login", {"login": "member", "password": PASSWORD})
    response = client.post("/security/password", {"current_password": "nope", "new_password": NEW_PASSWORD})
    assert response.status_code == 403


# API ----------------------------------------------------------------------------------------

def test_api_reset_gives_the_same_status_and_body_for_unknown_logins(make_api, member, mailoutbox):
    known = make_api().post("/auth/password-reset", {"login": "member"})
    unknown = make_api().post("/auth/password-reset", {"login": "no-such-login"})
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert len(mailoutbox) == 1


def test_api_reset_confirm_never_creates_a_session(api, enrolled, mailoutbox):
    api.post("/auth/password-reset", {"login": "member"})
    uid, token = link_in(mailoutbox[-1])
    response = api.post("/auth/password-reset/confirm", {"uid": uid, "token": token, "password": NEW_PASSWORD})
    assert response.status_code == 200 and response.json() == {"password_changed": True, "stage": "anonymous"}
    assert api.stage() == "anonymous"
    assert api.get("/me/two-factor").status_code == 401
    assert api.login("member", NEW_PASSWORD).json()["stage"] == "second_factor"


def test_api_reset_confirm_twice_is_invalid_link(api, member):
    uid, token = passwords.reset_link_parts(member)
    body = {"uid": uid, "token": token, "password": NEW_PASSWORD}
    assert api.post("/auth/password-reset/confirm", body).status_code == 200
    assert_error(api.post("/auth/password-reset/confirm", body), 400, "invalid_reset_link")


def test_api_reset_confirm_weak_password_is_422(api, member):
    uid, token = passwords.reset_link_parts(member)
    assert_error(api.post("/auth/password-reset/confirm", {"uid": uid, "token": token, "password": "abc"}),
                 422, "invalid_input")


def test_api_change_password(api, member):
    api.sign_in("member")
    response = api.post("/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 200
    assert api.stage() == "authenticated"
    assert_error(api.post("/me/password", {"current_password": "bad", "new_password": NEW_PASSWORD}),
                 403, "wrong_password")
