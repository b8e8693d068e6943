"""The account admin's pages: the user list, the 2FA policy, switching 2FA off for a user."""

from __future__ import annotations

import datetime
import re

import pyotp
import pytest

from twostep.models import Account, SecurityEvent
from twostep.services import accounts, authenticators, factors

from ..conftest import PASSWORD
from .policy_page import save_policy

pytestmark = pytest.mark.django_db


def force_login(client, user):
    user.refresh_from_db()
    client.force_login(user)


@pytest.fixture
def other_account_user(db, account):
    accounts.create_account("Globex", "globex-admin", "admin@globex.example", PASSWORD)
    return accounts.create_user("outsider", "Globex", "outsider@globex.example", PASSWORD)


def test_users_page_lists_own_account_only(client, admin, enrolled, other_account_user):
    force_login(client, admin)
    response = client.get("/account/users")
    page = response.content.decode()
    assert response.status_code == 200
    assert "member@acme.example" in page and "admin@acme.example" in page
    assert "outsider" not in page
    assert f'href="/account/users/{enrolled.user.pk}/disable-2fa"' in page
    assert "never" in page  # nobody has signed in yet


def test_users_page_searches_login_and_email(client, admin, make_user):
    make_user("bob")
    make_user("carol", email="carol@elsewhere.example")
    force_login(client, admin)
    page = client.get("/account/users", {"q": "elsewhere"}).content.decode()
    assert "carol" in page and "bob@acme.example" not in page


def test_users_page_pages_with_a_cursor(client, admin, make_user):
    for number in range(accounts.PAGE_SIZE + 5):
        make_user(f"user{number:03d}")
    force_login(client, admin)
    first = client.get("/account/users").content.decode()
    assert "Next page" in first and "user048" in first and "user049" not in first
    second = client.get("/account/users", {"after": "user048"}).content.decode()
    assert "user049" in second and "user054" in second and "user048@" not in second
    assert "Next page" not in second and "First page" in second
    assert 'href="/account/users?after=user048"' in first


def test_users_page_is_forbidden_to_non_admins(client, member):
    force_login(client, member)
    response = client.get("/account/users")
    assert response.status_code == 403
    assert "Only an account admin can do this." in response.content.decode()
    assert client.get(f"/account/users/{member.pk}/disable-2fa").status_code == 403
    assert client.post("/account/policy", {"require_two_factor": "on"}).status_code == 403
    assert not Account.objects.get().require_two_factor


def test_admin_switches_off_two_factor_for_a_user_of_the_account(client, admin, enrolled, mailoutbox,
                                                              django_capture_on_commit_callbacks, admin_factor):
    force_login(client, admin)  # no second factor proved in this session: the form asks for a code
    url = f"/account/users/{enrolled.user.pk}/disable-2fa"
    page = client.get(url).content.decode()
    assert "Reason" in page and 'name="password"' in page and 'name="code"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"reason": "Lost phone, confirmed by phone call", "password": PASSWORD,
                                     "code": admin_factor.code()})
    assert response.status_code == 302 and response["Location"] == "/account/users"
    assert not factors.enabled(enrolled.user)
    event = SecurityEvent.objects.get(type="admin_disabled_two_factor")
    assert event.actor == admin and event.user == enrolled.user
    assert any("Lost phone" in mail.body for mail in mailoutbox)
    assert "They have been told by e-mail." in client.get("/account/users").content.decode()


def test_admin_switch_off_shows_errors_next_to_fields(client, admin, enrolled, admin_factor):
    force_login(client, admin)
    url = f"/account/users/{enrolled.user.pk}/disable-2fa"
    response = client.post(url, {"reason": "", "password": PASSWORD, "code": admin_factor.code()})
    assert response.status_code == 400 and 'id="id_reason_error"' in response.content.decode()
    response = client.post(url, {"reason": "lost phone", "password": "wrong password", "code": admin_factor.code()})
    assert response.status_code == 403
    page = response.content.decode()
    assert 'id="id_password_error"' in page and "The password is not right." in page
    assert factors.enabled(enrolled.user)


def test_admin_switch_off_for_another_accounts_user_is_not_found(client, admin, other_account_user, enroll):
    enroll(other_account_user)
    force_login(client, admin)
    url = f"/account/users/{other_account_user.pk}/disable-2fa"
    assert client.get(url).status_code == 404
    response = client.post(url, {"reason": "because", "password": PASSWORD})
    assert response.status_code == 404 and "Page not found" in response.content.decode()
    assert factors.enabled(other_account_user)
    assert client.get("/account/users/999999/disable-2fa").status_code == 404


def test_policy_form_requires_two_factor_for_everyone(client, admin, admin_factor):
    force_login(client, admin)
    response = save_policy(client, require_two_factor="on")
    assert response.status_code == 302
    assert Account.objects.get().require_two_factor
    assert client.get("/account/users").status_code == 200  # the admin's own 2FA is on: not held


def test_policy_form_of_an_admin_without_two_factor_is_refused_with_the_way_to_set_up(client, admin):
    force_login(client, admin)
    response = save_policy(client, require_two_factor="on")
    page = response.content.decode()
    assert response.status_code == 403
    assert not Account.objects.get().require_two_factor
    assert "Set up two-factor authentication for yourself first" in page
    # The summary at the top links to the field; the box stays ticked as it was sent.
    assert 'data-error-summary' in page and 'href="#id_require_two_factor"' in page
    assert re.search(r'<input type="checkbox" name="require_two_factor"[^>]*checked', page)
    assert 'href="/security/setup"' in page
    assert client.get("/account/users").status_code == 200  # not held on the setup page


def test_policy_hint_says_it_takes_effect_at_once(client, admin):
    force_login(client, admin)
    page = client.get("/account/users").content.decode()
    assert "next time they sign in" not in page
    assert "people signed in now on their next page" in page


def test_deadline_form_round_trips_in_russian(client, admin, clock):
    force_login(client, admin)
    day = datetime.date.today() + datetime.timedelta(days=30)
    client.post("/language", {"language": "ru"})
    save_policy(client, require_two_factor_from=day.isoformat())
    page = client.get("/account/users").content.decode()
    assert f'value="{day.isoformat()}"' in page  # ISO, as a date input needs, not {day:%d.%m.%Y}
    assert 'name="remember_browser_days" value="0"' in page
    # Saving the form as the page shows it keeps the deadline.
    save_policy(client)
    assert Account.objects.get().require_two_factor_from == day


def test_deadline_form_with_a_past_date_keeps_it_and_links_to_the_field(client, admin):
    force_login(client, admin)
    response = save_policy(client, require_two_factor_from="2001-01-01")
    page = response.content.decode()
    assert response.status_code == 422
    assert 'href="#id_require_two_factor_from"' in page and 'value="2001-01-01"' in page
    assert 'aria-invalid="true"' in page


def test_remember_policy_with_a_wrong_number_keeps_it_and_links_to_the_field(client, admin):
    force_login(client, admin)
    response = save_policy(client, remember_browser_days="120")
    page = response.content.decode()
    assert response.status_code == 400
    assert 'href="#id_remember_browser_days"' in page and 'value="120"' in page
    assert Account.objects.get().remember_browser_days == 0


def test_policy_forces_setup_right_after_the_password(client, member, clock):
    Account.objects.update(require_two_factor=True)
    response = client.post("/login", {"login": "member", "password": PASSWORD})
    assert response["Location"] == "/security/setup"
    assert "_auth_user_id" not in client.session
    assert client.get("/security")["Location"] == "/security/setup"
    assert client.get("/account/users")["Location"] == "/security/setup"
    page = client.get("/security/setup").content.decode()
    assert "Your organisation requires two-factor authentication." in page
    assert client.post("/security/setup", {})["Location"] == "/security/setup"
    secret = authenticators.pending_app(member).secret
    response = client.post("/security/setup/confirm", {"code": pyotp.TOTP(secret).at(clock())})
    assert response.status_code == 302 and response["Location"] == "/security/backup-codes/new"
    assert "Your backup codes" in client.get(response["Location"]).content.decode()
    assert "_auth_user_id" in client.session
    assert client.get("/security").status_code == 200


def test_forced_setup_page_needs_a_password_step_first(client, member):
    Account.objects.update(require_two_factor=True)
    response = client.get("/security/setup")
    assert response.status_code == 302 and response["Location"].startswith("/login")


def test_setup_page_held_by_the_policy_offers_a_way_out_and_no_links_back(client, member):
    force_login(client, member)
    Account.objects.update(require_two_factor=True)  # required after this sign-in
    page = client.get("/security/setup").content.decode()
    assert "Sign out and set up later" in page and 'action="/logout"' in page
    assert 'action="/language"' in page  # the language switch stays
    assert 'href="/security"' not in page  # no menu link, no "Cancel": they would only lead back
    assert "Cancel" not in page
    client.post("/logout")
    assert client.get("/security")["Location"].startswith("/login")


def test_setup_page_not_held_keeps_its_cancel_link(client, member):
    force_login(client, member)
    page = client.get("/security/setup").content.decode()
    assert 'href="/security"' in page and "Sign out and set up later" not in page
