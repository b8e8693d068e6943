"""The users page's one policy form: every field saved together, all of it or none of it."""

from __future__ import annotations

import datetime
import re

import pytest

from twostep.models import Account, SecurityEvent
from twostep.services import accounts, recovery_passes

from ..conftest import ORIGIN, PASSWORD, web_sign_in
from .policy_page import save_policy, shown_policy


def fresh(user):
    user.refresh_from_db()
    return user


def in_days(days: int) -> str:
    return (datetime.date.today() + datetime.timedelta(days=days)).isoformat()


def test_the_page_has_one_policy_form_with_one_save_button(client, admin, admin_factor):
    web_sign_in(client, "admin", admin_factor)
    page = client.get("/account/users").content.decode()
    assert page.count('action="/account/policy"') == 1
    assert page.count(">Save policy</button>") == 1
    assert set(shown_policy(client)) == {"require_two_factor_from", "remember_browser_days"}  # boxes unticked
    for name in ("require_two_factor", "require_two_factor_from", "require_second_admin",
                 "remember_browser_days", "allow_passkeys"):
        assert f'name="{name}"' in page


def test_one_save_changes_every_field_and_records_one_event(client, admin, admin_factor):
    web_sign_in(client, "admin", admin_factor)
    response = save_policy(client, require_two_factor_from=in_days(14), require_second_admin="on",
                           remember_browser_days="30", allow_passkeys="on")
    assert response.status_code == 302 and response["Location"] == "/account/users"
    account = Account.objects.get()
    assert account.require_two_factor_from.isoformat() == in_days(14)
    assert account.require_second_admin and account.allow_passkeys and account.remember_browser_days == 30
    assert not account.require_two_factor
    event = SecurityEvent.objects.get(type="policy_changed")
    assert set(event.detail) >= {"require_two_factor_from", "require_second_admin", "remember_browser_days",
                                  "allow_passkeys"}
    page = client.get("/account/users").content.decode()
    assert "Browsers can now be remembered for 30 days." in page
    assert "People in this account can now sign in with a passkey alone." in page
    assert "now wait for a second admin&#x27;s approval" in page
    # What the page shows now is what was saved.
    assert shown_policy(client) == {"require_two_factor_from": in_days(14), "require_second_admin": "on",
                                    "remember_browser_days": "30", "allow_passkeys": "on"}


def test_one_wrong_field_saves_nothing_and_keeps_everything_typed(client, admin, admin_factor):
    web_sign_in(client, "admin", admin_factor)
    response = save_policy(client, require_two_factor_from=in_days(14), allow_passkeys="on",
                           remember_browser_days="120")
    page = response.content.decode()
    assert response.status_code == 400
    assert 'href="#id_remember_browser_days"' in page and 'value="120"' in page
    assert f'value="{in_days(14)}"' in page
    assert re.search(r'<input type="checkbox" name="allow_passkeys"[^>]*checked', page)
    account = Account.objects.get()
    assert account.require_two_factor_from is None and not account.allow_passkeys
    assert account.remember_browser_days == 0
    assert not SecurityEvent.objects.filter(type="policy_changed").exists()


def test_a_refused_deadline_saves_nothing_else_either(client, admin, admin_factor):
    web_sign_in(client, "admin", admin_factor)
    response = save_policy(client, require_two_factor_from="2001-01-01", remember_browser_days="7")
    assert response.status_code == 422
    assert 'href="#id_require_two_factor_from"' in response.content.decode()
    assert Account.objects.get().remember_browser_days == 0


def test_an_admin_without_two_factor_can_save_the_rest_but_not_require_it_now(client, admin):
    web_sign_in(client, "admin")
    refused = save_policy(client, require_two_factor="on", remember_browser_days="7")
    assert refused.status_code == 403
    assert "Set up two-factor authentication for yourself first" in refused.content.decode()
    assert Account.objects.get().remember_browser_days == 0
    assert save_policy(client, require_two_factor_from=in_days(30), remember_browser_days="7").status_code == 302
    account = Account.objects.get()
    assert account.remember_browser_days == 7 and account.require_two_factor_from.isoformat() == in_days(30)
    assert client.get("/account/users").status_code == 200  # the later deadline does not hold the admin


def test_unticking_a_box_switches_it_off(client, admin, admin_factor):
    accounts.change_policy(admin, {"allow_passkeys": True, "require_second_admin": True}, ORIGIN)
    web_sign_in(client, "admin", admin_factor)
    assert save_policy(client, allow_passkeys=None).status_code == 302
    account = Account.objects.get()
    assert not account.allow_passkeys and account.require_second_admin


def test_saving_without_changes_says_so_and_records_nothing(client, admin, admin_factor):
    web_sign_in(client, "admin", admin_factor)
    save_policy(client)
    assert "nothing in it changed" in client.get("/account/users").content.decode()
    assert not SecurityEvent.objects.filter(type="policy_changed").exists()


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_policy_round_trips_in_both_languages(client, admin, admin_factor, language):
    web_sign_in(client, "admin", admin_factor)
    client.post("/language", {"language": language})
    save_policy(client, require_two_factor_from=in_days(10), remember_browser_days="14")
    before = shown_policy(client)
    assert before["require_two_factor_from"] == in_days(10) and before["remember_browser_days"] == "14"
    save_policy(client)  # saved again exactly as shown: nothing is lost
    assert shown_policy(client) == before


# Approving another admin's request: errors beside the request ------------------------------------

@pytest.fixture
def pending_pass(admin, admin_factor, make_user, enrolled):
    make_user("admin2", is_admin=True)
    accounts.set_require_second_admin(fresh(admin), True, ORIGIN)
    issued = recovery_passes.issue(fresh(admin), enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                   second_factor_fresh=True)
    return issued.request


def test_a_wrong_password_on_approve_is_shown_under_that_request(client, pending_pass, enroll):
    approver = enroll(accounts.user_status("admin2").user)
    web_sign_in(client, "admin2", approver)
    url = f"/account/recovery-requests/{pending_pass.pk}/approve"
    response = client.post(url, {"password": "not my password"})
    page = response.content.decode()
    assert response.status_code == 403
    assert f'id="approve-password-{pending_pass.pk}_error"' in page
    assert f'href="#approve-password-{pending_pass.pk}"' in page  # the summary at the top links to it
    pending_pass.refresh_from_db()
    assert pending_pass.approved_at is None
    response = client.post(url, {"password": ""})
    assert response.status_code == 400 and f'id="approve-password-{pending_pass.pk}_error"' in response.content.decode()
