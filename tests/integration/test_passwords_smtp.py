"""The password reset mail through a real SMTP server: the link arrives, works once, signs nobody in."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from twostep.services import passwords

from ..conftest import ORIGIN
from .test_api_support import api_fixture  # noqa: F401
from .test_notifications_smtp import inbox_fixture, smtp_server_fixture  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "a brand new passphrase 42"


def test_reset_mail_arrives_with_a_working_link(api, enrolled, inbox):
    inbox.clear()
    api.post("/auth/password-reset", {"login": "member"})
    mail = inbox.only()
    assert mail.recipients == ["member@acme.example"]
    assert mail.subject == "[Acme] Reset your password"
    assert mail.says("does not sign you in and does not switch off two-factor authentication")
    # The link points to the configured public address, not to the Host the request named.
    public = re.escape(settings.TWOSTEP_PUBLIC_URL)
    uid, token = re.search(public + r"/password-reset/([^/\s]+)/([^/\s]+)", mail.text).groups()
    assert f"/password-reset/{uid}/{token}" in mail.html
    inbox.clear()
    response = api.post("/auth/password-reset/confirm", {"uid": uid, "token": token, "password": NEW_PASSWORD})
    assert response.status_code == 200 and api.stage() == "anonymous"
    assert inbox.subjects() == ["Your password was changed"]
    assert inbox.only().says("was reset through the link sent by e-mail")


def test_no_mail_for_an_unknown_login(api, member, inbox):
    inbox.clear()
    assert api.post("/auth/password-reset", {"login": "ghost"}).status_code == 200
    assert inbox.mails == []


def test_password_change_mail(member, inbox):
    inbox.clear()
    passwords.change_password(member, "correct horse battery staple", NEW_PASSWORD, ORIGIN)
    assert inbox.subjects() == ["Your password was changed"]
    mail = inbox.only()
    assert mail.says("was changed") and NEW_PASSWORD not in mail.text and NEW_PASSWORD not in mail.html
