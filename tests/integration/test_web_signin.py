"""The sign-in pages: password, app code, backup code, throttling, and the doors around them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from twostep.models import User
from twostep.services import signin

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db


def sign_in_password(client, login, password=PASSWORD, **extra):
    return client.post("/login", {"login": login, "password": password, **extra})


def is_signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_login_page_shows_labelled_fields(client):
    page = client.get("/login").content.decode()
    assert '<label for="id_login">' in page
    assert 'autocomplete="current-password"' in page


def test_sign_in_without_two_factor_goes_to_security(client, member):
    response = sign_in_password(client, "member")
    assert response.status_code == 302 and response["Location"] == "/security"
    assert is_signed_in(client)
    page = client.get("/security").content.decode()
    assert "Account security" in page and "member" in page


def test_sign_in_follows_a_safe_next_only(client, member):
    assert sign_in_password(client, "member", next="/security/recover")["Location"] == "/security/recover"
    client.post("/logout")
    response = sign_in_password(client, "member", next="https://evil.example/steal")
    assert response["Location"] == "/security"


def test_sign_in_with_wrong_password_shows_message(client, member):
    response = sign_in_password(client, "member", "not the password")
    assert response.status_code == 401
    assert "The login or password is not right." in response.content.decode()
    assert not is_signed_in(client)


def test_sign_in_with_empty_fields_shows_field_errors(client, db):
    response = client.post("/login", {"login": "", "password": ""})
    assert response.status_code == 400
    assert 'aria-describedby="id_login_error"' in response.content.decode()


def test_sign_in_after_many_wrong_passwords_is_throttled(client, member, clock):
    for _ in range(6):
        sign_in_password(client, "member", "wrong password")
    response = sign_in_password(client, "member", PASSWORD)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    page = response.content.decode()
    # One sentence with the wait, not "wait and try again" and then "try again in"; the number
    # for the page's script, which holds the button back until then.
    assert page.count("Too many failed attempts.") == 1 and "Try again in" in page
    assert "Please wait and try again" not in page
    assert f'data-retry-after="{response["Retry-After"]}"' in page
    assert not is_signed_in(client)


def test_sign_in_with_two_factor_asks_for_app_code(client, enrolled):
    response = sign_in_password(client, "member")
    assert response.status_code == 302 and response["Location"] == "/login/code"
    assert not is_signed_in(client)
    page = client.get("/login/code").content.decode()
    assert 'inputmode="numeric"' in page and 'autocomplete="one-time-code"' in page
    assert 'pattern="[0-9 ]*"' in page and 'maxlength="9"' in page
    assert 'href="/login/backup-code"' in page and "Use a backup code instead" in page


def test_sign_in_with_app_code_signs_in(client, enrolled):
    sign_in_password(client, "member", next="/security")
    response = client.post("/login/code", {"code": enrolled.code(), "next": "/security"})
    assert response.status_code == 302 and response["Location"] == "/security"
    assert is_signed_in(client)


def test_sign_in_with_wrong_code_shows_message(client, enrolled):
    sign_in_password(client, "member")
    wrong = "111111" if enrolled.code() != "111111" else "222222"
    response = client.post("/login/code", {"code": wrong})
    assert response.status_code == 401
    page = response.content.decode()
    assert "That code is not right" in page and 'aria-invalid="true"' in page
    assert not is_signed_in(client)


def test_sign_in_with_letters_for_app_code_says_six_digits(client, enrolled):
    sign_in_password(client, "member")
    response = client.post("/login/code", {"code": "12a456"})
    assert "An app code is 6 digits." in response.content.decode()


def test_sign_in_with_many_wrong_codes_is_throttled(client, enrolled):
    sign_in_password(client, "member")
    wrong = "111111" if enrolled.code() != "111111" else "222222"
    for _ in range(6):
        client.post("/login/code", {"code": wrong})
    response = client.post("/login/code", {"code": enrolled.code()})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert not is_signed_in(client)


def test_sign_in_with_backup_code_offers_new_authenticator(client, enrolled):
    sign_in_password(client, "member")
    page = client.get("/login/backup-code").content.decode()
    assert 'autocomplete="off"' in page and 'autocapitalize="none"' in page and 'spellcheck="false"' in page
    response = client.post("/login/backup-code", {"code": enrolled.codes[0]})
    assert response.status_code == 302 and response["Location"] == "/security/recover"
    assert is_signed_in(client)
    page = client.get("/security/recover").content.decode()
    assert "You have 9 backup codes left." in page
    assert "Lost your phone?" in page and "Register a new authenticator" in page
    assert "running out of backup codes" not in page


def test_sign_in_with_backup_code_warns_when_few_are_left(client, enrolled):
    for code in enrolled.codes[:7]:
        signin.check_code(enrolled.user.pk, code, ORIGIN, method="backup_code")
    sign_in_password(client, "member")
    client.post("/login/backup-code", {"code": enrolled.codes[7]})
    page = client.get("/security/recover").content.decode()
    assert "You have 2 backup codes left." in page
    assert "running out of backup codes" in page


def test_sign_in_with_used_backup_code_is_refused(client, enrolled):
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN, method="backup_code")
    sign_in_password(client, "member")
    response = client.post("/login/backup-code", {"code": enrolled.codes[0]})
    assert response.status_code == 401
    assert not is_signed_in(client)


def test_second_step_after_pending_expired_goes_back_to_login(client, enrolled):
    sign_in_password(client, "member")
    session = client.session
    state = session["twostep_pending"]
    state["at"] -= 3600
    session["twostep_pending"] = state
    session.save()
    response = client.post("/login/code", {"code": enrolled.code()}, follow=True)
    assert response.redirect_chain[-1][0].startswith("/login")
    page = response.content.decode()
    assert "The sign-in took too long and was stopped to keep your account safe." in page
    # The login typed before is kept; the password is asked again, with the cursor in it.
    assert 'name="login" value="member"' in page
    assert re.search(r'<input type="password" name="password"[^>]* autofocus[ >]', page)
    assert not re.search(r'<input type="text" name="login"[^>]* autofocus[ >]', page)
    assert not is_signed_in(client)
    # Filled in once: the next visit to the sign-in page starts empty.
    assert 'value="member"' not in client.get("/login").content.decode()


def test_sign_in_page_without_a_sign_in_started_says_so_plainly(client, db):
    response = client.get("/login/code", follow=True)
    assert "The sign-in has expired or was not started." in response.content.decode()


def test_second_step_without_password_goes_back_to_login(client, db):
    response = client.get("/login/code")
    assert response.status_code == 302 and response["Location"].startswith("/login")


def test_half_signed_in_session_cannot_reach_security(client, enrolled):
    sign_in_password(client, "member")
    response = client.get("/security")
    assert response.status_code == 302
    assert response["Location"] == "/login?next=/security"


def test_django_admin_redirects_to_our_login(client, db):
    response = client.get("/django-admin/", follow=True)
    final = response.redirect_chain[-1][0]
    assert final.startswith(reverse("web:login")) and "next=%2Fdjango-admin%2F" in final


def test_django_admin_is_not_reachable_half_signed_in(client, enrolled):
    User.objects.filter(pk=enrolled.user.pk).update(is_staff=True)
    sign_in_password(client, "member")
    response = client.get("/django-admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login")
    client.post("/login/code", {"code": enrolled.code()})
    assert client.get("/django-admin/").status_code == 200


def test_logout_needs_post(client, member):
    sign_in_password(client, "member")
    assert client.get("/logout").status_code == 405
    response = client.post("/logout", follow=True)
    assert "You have signed out." in response.content.decode()
    assert not is_signed_in(client)


def test_logout_abandons_a_half_done_sign_in(client, enrolled):
    sign_in_password(client, "member")
    client.post("/logout")
    assert client.get("/login/code")["Location"].startswith("/login")


@pytest.mark.parametrize("form", [
    lambda f: f.LoginForm(), lambda f: f.LoginForm({"login": 'a"<b>&', "password": "secret"}),
    lambda f: f.LoginForm({"login": ""}), lambda f: f.AppCodeForm(), lambda f: f.AppCodeForm({"code": "12"}),
    lambda f: f.BackupCodeForm({"code": "x"}), lambda f: f.PasswordForm(),
])
def test_sign_in_inputs_are_the_markup_django_renders(form):
    """The sign-in forms' text boxes are written in Python: byte for byte Django's own widget templates."""
    from unittest import mock

    from twostep.web import forms

    def djangos(widget, *args, **kwargs):
        return super(forms.PlainInput, widget).render(*args, **kwargs)  # the template engine's

    shown = form(forms)
    shown.is_bound and shown.is_valid()
    for field in shown:
        assert isinstance(field.field.widget, forms.PlainInput)
        ours = str(field)
        with mock.patch.object(forms.PlainInput, "render", djangos):
            assert ours == str(field)
