"""A person the account's policy holds on the setup page may register a security key or passkey as
their first authenticator instead of an app: the key releases them, and the backup codes follow."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from twostep.core import clock as core_clock
from twostep.models import Account, Authenticator, SecurityEvent, User

from ..conftest import PASSWORD
from ..softkey import SoftKey

pytestmark = pytest.mark.django_db

OPTIONS = re.compile(r'<script id="webauthn-options" type="application/json">(.*?)</script>', re.S)
CODE_SHAPE = re.compile(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>")


def require_now(how: str) -> None:
    if how == "required":
        Account.objects.update(require_two_factor=True)
    else:  # a deadline that has passed
        Account.objects.update(require_two_factor_from=core_clock.utcnow().date() - timedelta(days=1))


def register(client, key: SoftKey, *, passkey: bool = False, **fields):
    """Ask for the options on the add-key page and answer them with `key`; return the last answer."""
    asked = client.post("/security/keys/add", {"name": "Blue key", **({"passkey": "on"} if passkey else {}),
                                               **fields})
    assert asked.status_code == 200, asked.content
    options = json.loads(OPTIONS.search(asked.content.decode()).group(1))["publicKey"]
    return client.post("/security/keys/add", {"credential": json.dumps(key.create(options))})


@pytest.mark.parametrize("how", ["required", "deadline_passed"])
@pytest.mark.parametrize("passkey", [False, True], ids=["security-key", "passkey"])
def test_person_held_by_the_policy_registers_a_key_and_is_released(client, member, clock, how, passkey):
    require_now(how)
    assert client.post("/login", {"login": "member", "password": PASSWORD})["Location"] == "/security/setup"
    assert 'href="/security/keys/add"' in client.get("/security/setup").content.decode()

    page = client.get("/security/keys/add")
    assert page.status_code == 200  # let through, not sent back to the setup page
    text = page.content.decode()
    assert "Sign out and set up later" in text and 'href="/security/setup"' in text
    assert 'href="/security"' not in text  # it would only lead back here
    assert 'name="password"' not in text  # the password was given a moment ago
    assert "You get backup codes with it" in text and "beside your app" not in text  # no app to keep it beside

    done = register(client, SoftKey(), passkey=passkey)
    assert done.status_code == 302 and done["Location"] == "/security/backup-codes/new"
    assert "_auth_user_id" in client.session  # signed in by the key
    assert len(CODE_SHAPE.findall(client.get("/security/backup-codes/new").content.decode())) == 10
    assert client.get("/security").status_code == 200  # released
    key = Authenticator.objects.get(user=member)
    assert key.kind == "webauthn" and key.passkey is passkey
    sign_in = SecurityEvent.objects.filter(user=member, type="sign_in").get()
    assert sign_in.detail["method"] == "webauthn_setup"
    amr = client.session["twostep_proof"]["amr"]
    assert amr[0] == "pwd" and amr[-1] == "mfa" and ("hwk" in amr or "swk" in amr)
    assert "Signed in by registering a security key or passkey" in client.get("/security/activity").content.decode()


def test_signed_in_person_whose_account_started_requiring_it_registers_a_key(client, member):
    client.force_login(User.objects.get(pk=member.pk))
    Account.objects.update(require_two_factor=True)  # after this sign-in
    assert client.get("/security")["Location"] == "/security/setup"
    page = client.get("/security/keys/add").content.decode()
    assert "Sign out and set up later" in page and 'href="/security"' not in page
    done = register(client, SoftKey(), password=PASSWORD)
    assert done["Location"] == "/security/backup-codes/new"
    assert client.get("/security").status_code == 200


def test_held_person_may_go_no_further_than_the_setup_pages(client, member):
    Account.objects.update(require_two_factor=True)
    client.post("/login", {"login": "member", "password": PASSWORD})
    for path in ("/security", "/security/activity", "/account/users", "/security/backup-codes/new"):
        assert client.get(path)["Location"] == "/security/setup", path
    assert client.get("/security/keys/add").status_code == 200
    assert client.post("/logout")["Location"] == "/login"  # and the way out stays open
    assert client.get("/security/keys/add")["Location"].startswith("/login")
    assert not Authenticator.objects.filter(user=member).exists()


def test_held_person_asked_for_the_password_again_after_a_while(client, member, clock):
    Account.objects.update(require_two_factor=True)
    client.post("/login", {"login": "member", "password": PASSWORD})
    clock.advance(11 * 60)  # past the 5 minutes a password counts as fresh, within the setup's 15
    page = client.get("/security/keys/add").content.decode()
    assert 'name="password"' in page
    refused = client.post("/security/keys/add", {"name": "Blue key", "password": "not the password"})
    assert refused.status_code == 403 and "webauthn-options" not in refused.content.decode()
    done = register(client, SoftKey(), password=PASSWORD)
    assert done["Location"] == "/security/backup-codes/new" and "_auth_user_id" in client.session


def test_someone_never_signed_in_is_sent_to_sign_in_without_an_expiry_message(client, account):
    response = client.get("/security/keys/add", follow=True)
    assert response.redirect_chain[0][0] == "/login?next=/security/keys/add"
    assert "Your sign-in expired" not in response.content.decode()


def test_held_person_whose_setup_expired_signs_in_again(client, member, clock):
    Account.objects.update(require_two_factor=True)
    client.post("/login", {"login": "member", "password": PASSWORD})
    clock.advance(16 * 60)
    response = client.get("/security/keys/add", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login")
    assert "Your sign-in expired. Please sign in again to set up your authenticator." in response.content.decode()
