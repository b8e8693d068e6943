"""A half sign-in that expired on the security-key (or passkey) page or the one-time pass page goes
back to the password with the login kept and the reason said, as the code pages do."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from twostep.models import User
from twostep.services import recovery_passes

from ..conftest import ORIGIN, PASSWORD
from ..softkey import SoftKey

pytestmark = pytest.mark.django_db

REASON = "The sign-in took too long and was stopped to keep your account safe."
OPTIONS = re.compile(r'<script id="webauthn-options" type="application/json">(.*?)</script>', re.S)


def page_options(response) -> dict:
    return json.loads(OPTIONS.search(response.content.decode()).group(1))["publicKey"]


def register_key(user, *, passkey: bool = False) -> SoftKey:
    """Register a key (a passkey if asked) for `user` through the pages, in a session of its own."""
    browser = Client()
    browser.force_login(User.objects.get(pk=user.pk))
    asked = browser.post("/security/keys/add", {"name": "Blue key", "password": PASSWORD,
                                                **({"passkey": "on"} if passkey else {})})
    key = SoftKey()
    done = browser.post("/security/keys/add", {"credential": json.dumps(key.create(page_options(asked)))})
    assert done.status_code == 302, done.content
    return key


def expire_the_half_sign_in(client) -> None:
    session = client.session
    state = session["twostep_pending"]
    state["at"] -= 3600
    session["twostep_pending"] = state
    session.save()


def assert_back_at_the_password_with_the_login(client, response, login: str) -> None:
    assert response.status_code == 302 and response["Location"].startswith("/login")
    page = client.get(response["Location"]).content.decode()
    assert REASON in page
    assert f'name="login" value="{login}"' in page
    assert re.search(r'<input type="password" name="password"[^>]* autofocus[ >]', page)
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("passkey", [False, True], ids=["security-key", "passkey"])
def test_key_page_after_the_sign_in_expired_keeps_the_login(client, member, passkey):
    register_key(member, passkey=passkey)
    assert client.post("/login", {"login": "member", "password": PASSWORD})["Location"] == "/login/key"
    expire_the_half_sign_in(client)
    assert_back_at_the_password_with_the_login(client, client.get("/login/key"), "member")


@pytest.mark.parametrize("passkey", [False, True], ids=["security-key", "passkey"])
def test_key_answered_after_the_sign_in_expired_keeps_the_login(client, member, passkey):
    key = register_key(member, passkey=passkey)
    client.post("/login", {"login": "member", "password": PASSWORD})
    options = page_options(client.get("/login/key"))
    expire_the_half_sign_in(client)  # the key was touched too late
    response = client.post("/login/key", {"credential": json.dumps(key.get(options))})
    assert_back_at_the_password_with_the_login(client, response, "member")


def test_pass_page_after_the_sign_in_expired_keeps_the_login(client, enrolled):
    client.post("/login", {"login": "member", "password": PASSWORD})
    expire_the_half_sign_in(client)
    assert_back_at_the_password_with_the_login(client, client.get("/login/recovery-pass"), "member")


def test_pass_typed_after_the_sign_in_expired_keeps_the_login_and_the_pass(client, admin, admin_factor, enrolled):
    code = recovery_passes.issue(User.objects.get(pk=admin.pk), enrolled.user.pk, "lost phone, checked by call",
                                 PASSWORD, ORIGIN, second_factor_fresh=True).code
    client.post("/login", {"login": "member", "password": PASSWORD})
    expire_the_half_sign_in(client)
    response = client.post("/login/recovery-pass", {"code": code})
    assert_back_at_the_password_with_the_login(client, response, "member")
    # Nothing was spent: the pass still signs in once the password is given again.
    client.post("/login", {"login": "member", "password": PASSWORD})
    assert client.post("/login/recovery-pass", {"code": code})["Location"] == "/security/recover"


def test_pages_without_a_sign_in_started_say_so_plainly(client, db):
    for path in ("/login/key", "/login/recovery-pass"):
        response = client.get(path, follow=True)
        page = response.content.decode()
        assert "The sign-in has expired or was not started." in page and REASON not in page
