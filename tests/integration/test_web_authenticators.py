"""Several authenticators on the Account security page: list, add another app, rename, remove."""

from __future__ import annotations

import pyotp
import pytest
from django.core import mail

from twostep.models import Account, Authenticator, SecurityEvent
from twostep.services import authenticators, factors, signin
from twostep.services.errors import InvalidCode

from ..conftest import ORIGIN, PASSWORD
from .test_web_security import force_login

pytestmark = pytest.mark.django_db


def add_app(user, clock, name):
    setup = authenticators.start_app(user, PASSWORD, ORIGIN, name=name)
    added = authenticators.confirm_app(user, pyotp.TOTP(setup.secret).at(clock()), ORIGIN)
    return added.authenticator, setup.secret


def test_security_page_lists_each_authenticator_by_name_and_suggests_a_second(client, enrolled):
    force_login(client, enrolled.user)
    page = client.get("/security").content.decode()
    assert "Your authenticators" in page and "Authenticator app" in page
    assert "Add a second authenticator and keep it apart from your phone" in page
    assert 'href="/security/keys/add"' in page or "Add a security key or passkey" in page


def test_adding_a_named_app_from_the_page_keeps_the_first(client, enrolled, clock):
    client.post("/login", {"login": "member", "password": PASSWORD})
    client.post("/login/code", {"code": enrolled.code()})
    clock.advance(30)
    assert client.post("/security/setup", {"name": "Work tablet"})["Location"] == "/security/setup"
    secret = authenticators.pending_app(enrolled.user).secret
    response = client.post("/security/setup/confirm", {"code": pyotp.TOTP(secret).at(clock())}, follow=True)
    page = response.content.decode()
    assert "Work tablet is added to your authenticators." in page
    assert [a.name for a in authenticators.listing(enrolled.user)] == ["Authenticator app", "Work tablet"]
    assert "Add a second authenticator" not in page  # two now
    clock.advance(30)
    assert signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN, method="totp")  # the first still works


def test_same_name_twice_gets_a_number(enrolled, clock):
    first, _ = add_app(enrolled.user, clock, "Phone")
    clock.advance(30)
    second, _ = add_app(enrolled.user, clock, "phone")
    assert (first.name, second.name) == ("Phone", "phone 2")


def test_rename_from_the_page(client, enrolled):
    force_login(client, enrolled.user)
    row = authenticators.listing(enrolled.user)[0]
    response = client.post(f"/security/authenticators/{row.pk}/rename", {"name": "  Pixel   8 "})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.name == "Pixel 8"
    assert SecurityEvent.objects.filter(user=enrolled.user, type="authenticator_renamed").exists()


def test_rename_to_a_name_already_taken_is_refused_on_the_page(client, enrolled, clock):
    other, _ = add_app(enrolled.user, clock, "Tablet")
    force_login(client, enrolled.user)
    first = authenticators.listing(enrolled.user)[0]
    response = client.post(f"/security/authenticators/{first.pk}/rename", {"name": "TABLET"})
    assert response.status_code == 422
    assert "You already have an authenticator with that name." in response.content.decode()


@pytest.mark.django_db(transaction=True)  # mail leaves when the change commits
def test_removing_a_lost_app_leaves_the_other_and_needs_the_password(client, enrolled, clock):
    tablet, tablet_secret = add_app(enrolled.user, clock, "Tablet")
    force_login(client, enrolled.user)
    first = authenticators.listing(enrolled.user)[0]
    refused = client.post(f"/security/authenticators/{first.pk}/remove", {"password": "not it"})
    assert refused.status_code == 403 and Authenticator.objects.filter(pk=first.pk).exists()
    mail.outbox.clear()
    done = client.post(f"/security/authenticators/{first.pk}/remove", {"password": PASSWORD})
    assert done.status_code == 302
    assert client.get("/security").status_code == 200  # this session stays signed in
    assert [m.subject for m in mail.outbox] == ["[twostep] An authenticator was removed from your sign-in"]
    clock.advance(30)
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN, method="totp")
    assert signin.check_code(enrolled.user.pk, pyotp.TOTP(tablet_secret).at(clock()), ORIGIN, method="totp")
    assert factors.enabled(enrolled.user)


def test_removing_the_last_one_switches_two_factor_off(client, enrolled):
    force_login(client, enrolled.user)
    only = authenticators.listing(enrolled.user)[0]
    page = client.get("/security").content.decode()
    assert "This is your only authenticator: removing it switches two-factor authentication off" in page
    client.post(f"/security/authenticators/{only.pk}/remove", {"password": PASSWORD})
    assert not factors.enabled(enrolled.user)
    assert signin.check_password("member", PASSWORD, ORIGIN).stage == signin.AUTHENTICATED


def test_removing_the_last_one_is_refused_where_the_account_requires_two_factor(client, enrolled):
    Account.objects.update(require_two_factor=True)
    force_login(client, enrolled.user)
    only = authenticators.listing(enrolled.user)[0]
    response = client.post(f"/security/authenticators/{only.pk}/remove", {"password": PASSWORD})
    assert response.status_code == 403
    assert "add another authenticator before removing your last one" in response.content.decode()
    assert factors.enabled(enrolled.user)


def test_another_users_authenticator_cannot_be_renamed_or_removed(client, enrolled, admin, enroll):
    theirs = authenticators.listing(enroll(admin).user)[0]
    force_login(client, enrolled.user)
    assert client.post(f"/security/authenticators/{theirs.pk}/rename", {"name": "mine"}).status_code == 404
    assert client.post(f"/security/authenticators/{theirs.pk}/remove", {"password": PASSWORD}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Authenticator app"


def test_second_step_lists_only_the_methods_the_user_has(enrolled, clock):
    assert factors.methods(enrolled.user, clock_now()) == ["totp", "backup_code"]


def clock_now():
    from twostep.core import clock

    return clock.utcnow()


def test_admin_sees_each_users_authenticators_on_the_page_in_the_api_and_the_cli(client, admin, enrolled,
                                                                                 clock, capsys):
    add_app(enrolled.user, clock, "Tablet")
    admin.refresh_from_db()
    client.force_login(admin)
    page = client.get("/account/users").content.decode()
    assert "Authenticator app, Tablet" in page
    rows = {row["login"]: row for row in client.get("/api/v1/account/users").json()["users"]}
    assert rows["member"]["authenticators"] == [{"kind": "totp", "name": "Authenticator app"},
                                                {"kind": "totp", "name": "Tablet"}]
    assert rows["admin"]["authenticators"] == []
    from twostep import cli

    cli.main(["user", "show", "member", "--json"])
    import json

    shown = json.loads(capsys.readouterr().out)
    assert [a["name"] for a in shown["authenticators"]] == ["Authenticator app", "Tablet"]


def test_second_step_menu_counts_unused_codes_and_only_a_ready_sign_in_pass(enrolled, clock):
    from datetime import timedelta

    from twostep.models import BackupCode, RecoveryRequest

    now = clock_now()
    user = enrolled.user
    left = BackupCode.objects.filter(user=user, used_at__isnull=True).count()
    BackupCode.objects.filter(pk=BackupCode.objects.filter(user=user).first().pk).update(used_at=now)
    assert factors.facts(user, now).backup_codes == left - 1

    def sign_in_pass(**fields):
        return RecoveryRequest.objects.create(
            kind=RecoveryRequest.Kind.SIGN_IN_PASS, account=user.account, user=user, reason="lost phone",
            created_at=now, expires_at=now + timedelta(hours=1), **fields)

    sign_in_pass()  # not approved
    sign_in_pass(approved_at=now, used_at=now)
    sign_in_pass(approved_at=now, cancelled_at=now)
    sign_in_pass(approved_at=now - timedelta(hours=2)).__class__.objects.filter(
        approved_at=now - timedelta(hours=2)).update(expires_at=now - timedelta(seconds=1))
    assert factors.facts(user, now).recovery_pass is False
    assert "recovery_pass" not in factors.methods(user, now)
    sign_in_pass(approved_at=now)
    assert factors.facts(user, now).recovery_pass is True
    assert factors.methods(user, now)[-1] == "recovery_pass"
