"""Required 2FA with a deadline: the one rule, the policy, the banner, reminders, who enrolled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from twostep.core import clock as core_clock
from twostep.models import Account, Notice, SecurityEvent, User
from twostep.services import accounts, authenticators, deadlines, signin
from twostep.services.errors import InvalidInput, NotAccountAdmin, TwoFactorRequired
from twostep.services.signin import AUTHENTICATED, SECOND_FACTOR, SETUP_REQUIRED

from ..conftest import ORIGIN, PASSWORD
from .policy_page import save_policy
from .test_api_support import api_fixture, assert_error  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs: reminders leave as in production


def today():
    return core_clock.utcnow().date()


def set_deadline(account, days_from_today: int):
    Account.objects.filter(pk=account.pk).update(require_two_factor_from=today() + timedelta(days=days_from_today))
    account.refresh_from_db()
    return account.require_two_factor_from


# The one rule -------------------------------------------------------------------------------

def test_two_factor_required_before_the_deadline_is_false(account, clock):
    set_deadline(account, 3)
    assert accounts.two_factor_required(account) is False


def test_two_factor_required_on_and_after_the_deadline_is_true(account, clock):
    deadline = set_deadline(account, 3)
    assert accounts.two_factor_required(account, deadline) is True
    clock.advance(3 * 86400)
    assert accounts.two_factor_required(account) is True


def test_two_factor_required_by_the_plain_flag_needs_no_date(account):
    account.require_two_factor = True
    assert accounts.two_factor_required(account) is True


def test_password_step_forces_setup_only_from_the_deadline(member, account, clock):
    set_deadline(account, 1)
    assert signin.check_password("member", PASSWORD, ORIGIN).stage == AUTHENTICATED
    clock.advance(86400)
    assert signin.check_password("member", PASSWORD, ORIGIN).stage == SETUP_REQUIRED


def test_enrolled_user_still_gets_the_second_step_after_the_deadline(enrolled, account, clock):
    set_deadline(account, 0)
    assert signin.check_password("member", PASSWORD, ORIGIN).stage == SECOND_FACTOR


def test_disable_is_refused_from_the_deadline_on(enrolled, account, clock):
    set_deadline(account, 0)
    with pytest.raises(TwoFactorRequired):
        authenticators.disable(User.objects.get(pk=enrolled.user.pk), PASSWORD, enrolled.code(), ORIGIN)


# The policy ---------------------------------------------------------------------------------

def test_set_deadline_is_audited(admin, clock):
    day = today() + timedelta(days=10)
    account = accounts.set_two_factor_deadline(admin, day, ORIGIN)
    assert account.require_two_factor_from == day
    event = SecurityEvent.objects.get(type="policy_changed")
    assert event.detail == {"require_two_factor_from": day.isoformat()}


def test_set_deadline_in_the_past_is_refused(admin, clock):
    with pytest.raises(InvalidInput):
        accounts.set_two_factor_deadline(admin, today() - timedelta(days=1), ORIGIN)


def test_set_deadline_by_non_admin_is_refused(member):
    with pytest.raises(NotAccountAdmin):
        accounts.set_two_factor_deadline(member, None, ORIGIN)


def test_clear_deadline(admin, clock):
    accounts.set_two_factor_deadline(admin, today() + timedelta(days=2), ORIGIN)
    assert accounts.set_two_factor_deadline(admin, None, ORIGIN).require_two_factor_from is None


def test_api_policy_sets_and_clears_the_deadline(api, admin, clock):
    api.sign_in("admin")
    day = (today() + timedelta(days=14)).isoformat()
    response = api.put("/account/policy", {"require_two_factor_from": day})
    assert response.status_code == 200
    assert response.json() == {"require_two_factor": False, "require_two_factor_from": day}
    assert api.put("/account/policy", {"require_two_factor_from": None}).json()["require_two_factor_from"] is None


def test_api_policy_past_deadline_is_readable_422(api, admin, clock):
    api.sign_in("admin")
    body = assert_error(api.put("/account/policy", {"require_two_factor_from": "2001-01-01"}), 422,
                        "invalid_input")
    assert "past" in body["message"]


def test_api_policy_not_a_date_is_422(api, admin):
    api.sign_in("admin")
    assert_error(api.put("/account/policy", {"require_two_factor_from": "soon"}), 422, "invalid_input")


def test_api_policy_empty_body_is_422(api, admin):
    api.sign_in("admin")
    assert_error(api.put("/account/policy", {}), 422, "invalid_input")


def test_api_policy_second_admin(api, admin):
    api.sign_in("admin")
    assert api.put("/account/policy", {"require_second_admin": True}).json() == {
        "require_two_factor": False, "require_second_admin": True}
    assert Account.objects.get().require_second_admin is True


def test_api_me_reports_required_from_before_the_deadline(api, member, account, clock):
    day = set_deadline(account, 5)
    api.sign_in("member")
    body = api.get("/me/two-factor").json()
    assert body["required_from"] == day.isoformat() and body["required_by_account"] is False


def test_api_me_required_after_the_deadline(api, enrolled, account, clock):
    set_deadline(account, 0)
    api.sign_in("member", enrolled=enrolled)
    body = api.get("/me/two-factor").json()
    assert body["required_by_account"] is True and body["required_from"] is None


def test_api_login_after_the_deadline_is_setup_required(api, member, account, clock):
    set_deadline(account, 0)
    assert api.login("member").json() == {"stage": "setup_required"}


# The banner ---------------------------------------------------------------------------------

def test_banner_shows_before_the_deadline_for_users_without_two_factor(client, member, account, clock):
    set_deadline(account, 5)
    client.post("/login", {"login": "member", "password": PASSWORD})
    page = client.get("/security").content.decode()
    assert 'id="deadline-banner"' in page and "requires two-factor authentication from" in page


def test_banner_hidden_for_enrolled_users(enrolled, account, clock):
    set_deadline(account, 5)
    assert deadlines.pending_deadline(User.objects.get(pk=enrolled.user.pk)) is None


def test_web_after_the_deadline_forces_setup(client, member, account, clock):
    set_deadline(account, 0)
    response = client.post("/login", {"login": "member", "password": PASSWORD})
    assert response["Location"] == "/security/setup"


# Reminders ----------------------------------------------------------------------------------

def at(day) -> datetime:
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


def test_reminders_go_out_seven_days_and_one_day_before(member, enroll, make_user, account, clock, mailoutbox):
    enroll(make_user("done"))
    mailoutbox.clear()
    deadline = set_deadline(account, 10)
    assert deadlines.send_due_reminders(at(deadline - timedelta(days=8))) == 0
    sent = deadlines.send_due_reminders(at(deadline - timedelta(days=7)))
    assert sent == 2  # admin and member; "done" has 2FA
    assert sorted(m.to[0] for m in mailoutbox) == ["admin@acme.example", "member@acme.example"]
    assert "Set up two-factor authentication" in mailoutbox[0].subject
    assert deadlines.send_due_reminders(at(deadline - timedelta(days=3))) == 0
    assert deadlines.send_due_reminders(at(deadline - timedelta(days=1))) == 2
    assert deadlines.send_due_reminders(at(deadline)) == 0
    assert Notice.objects.filter(kind="two_factor_deadline_reminder").count() == 4
    assert SecurityEvent.objects.filter(type="reminder_sent").count() == 4


def test_reminders_are_sent_once_however_often_the_job_runs(member, account, clock, mailoutbox):
    deadline = set_deadline(account, 7)
    now = at(deadline - timedelta(days=7))
    assert deadlines.send_due_reminders(now) == 2
    assert deadlines.send_due_reminders(now) == 0
    assert deadlines.send_due_reminders(now + timedelta(hours=5)) == 0
    assert len(mailoutbox) == 2


def test_reminders_skip_accounts_already_requiring_two_factor(member, account, clock):
    deadline = set_deadline(account, 7)
    Account.objects.filter(pk=account.pk).update(require_two_factor=True)
    assert deadlines.send_due_reminders(at(deadline - timedelta(days=7))) == 0


def test_a_new_deadline_gets_its_own_reminders(member, account, clock):
    deadline = set_deadline(account, 7)
    assert deadlines.send_due_reminders(at(deadline - timedelta(days=7))) == 2
    later = set_deadline(account, 8)
    assert deadlines.send_due_reminders(at(later - timedelta(days=7))) == 2


def test_send_reminders_command(member, account, clock, mailoutbox, capsys):
    set_deadline(account, 1)
    call_command("send_reminders")
    assert "2 reminder(s) queued" in capsys.readouterr().out
    assert len(mailoutbox) == 2


# Who has enrolled ---------------------------------------------------------------------------

def test_list_users_filters_by_enrolment(admin, enrolled, make_user):
    make_user("other")
    without = [s.user.login for s in accounts.list_users(admin, enrolled=False)[0]]
    assert without == ["admin", "other"]
    assert [s.user.login for s in accounts.list_users(admin, enrolled=True)[0]] == ["member"]
    assert accounts.enrolment_counts(admin) == (1, 3)


def test_api_users_not_enrolled(api, admin, enrolled):
    api.sign_in("admin")
    body = api.get("/account/users", {"enrolled": "false"}).json()
    assert [u["login"] for u in body["users"]] == ["admin"]


def test_users_page_shows_count_and_filter(client, admin, enrolled):
    client.post("/login", {"login": "admin", "password": PASSWORD})
    page = client.get("/account/users").content.decode()
    assert "1 of 2 have two-factor authentication" in page
    filtered = client.get("/account/users", {"enrolled": "false"}).content.decode()
    assert ">admin<" in filtered and ">member<" not in filtered


def test_users_page_policy_form_sets_deadline_and_second_admin(client, admin, clock):
    client.post("/login", {"login": "admin", "password": PASSWORD})
    day = today() + timedelta(days=20)
    response = save_policy(client, require_two_factor_from=day.isoformat(), require_second_admin="on")
    assert response.status_code == 302
    account = Account.objects.get()
    assert account.require_two_factor_from == day and account.require_second_admin is True
