"""The admin's one-time sign-in pass and the second admin's approval."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from twostep.models import Authenticator, RecoveryRequest, SecurityEvent, User
from twostep.services import accounts, recovery, recovery_passes, signin
from twostep.services.errors import (
    Conflict,
    InvalidCode,
    NotAccountAdmin,
    NotFound,
    Throttled,
    TwoFactorDisabled,
    WrongPassword,
)
from twostep.services.recovery_passes import ApprovalPending

from ..conftest import ORIGIN, PASSWORD, web_sign_in
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

# on_commit runs: mail leaves as in production. The admin has 2FA: acting on others' needs it.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("admin_factor")]


FRESH = {"second_factor_fresh": True}  # as after a sign-in with a second factor moments ago


def fresh(user):
    return User.objects.select_related("account").get(pk=user.pk)


def issue(admin, user, reason="lost phone, checked by video call"):
    return recovery_passes.issue(fresh(admin), user.pk, reason, PASSWORD, ORIGIN, **FRESH)


@pytest.fixture
def second_admin(make_user):
    return make_user("admin2", is_admin=True)


@pytest.fixture
def second_admin_factor(second_admin, enroll):
    return enroll(second_admin)


@pytest.fixture
def two_admin_rule(admin, second_admin, second_admin_factor):
    accounts.set_require_second_admin(fresh(admin), True, ORIGIN)


# Issuing ------------------------------------------------------------------------------------

def test_issue_returns_a_readable_pass_storing_only_its_hash(admin, enrolled, mailoutbox):
    issued = issue(admin, enrolled.user)
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){3}", issued.code)
    row = RecoveryRequest.objects.get()
    assert row.token_digest and issued.code.replace("-", "") not in row.token_digest
    assert row.approved_by_id == admin.pk and row.kind == "sign_in_pass"
    assert (row.expires_at - row.approved_at) == timedelta(hours=24)
    assert SecurityEvent.objects.filter(type="recovery_pass_issued", user=enrolled.user).count() == 1
    mail = mailoutbox[-1]
    assert mail.to == ["member@acme.example"] and "one-time sign-in pass" in mail.subject
    assert issued.code not in mail.body


def test_pass_has_at_least_64_bits():
    import math
    assert recovery_passes.SYMBOLS * math.log2(len(recovery_passes.ALPHABET)) >= 64


def test_issue_hours_follow_the_setting(admin, enrolled, settings):
    settings.TWOSTEP_RECOVERY_PASS_HOURS = 2
    issue(admin, enrolled.user)
    row = RecoveryRequest.objects.get()
    assert row.expires_at - row.approved_at == timedelta(hours=2)


def test_issue_needs_the_admins_password(admin, enrolled):
    with pytest.raises(WrongPassword):
        recovery_passes.issue(fresh(admin), enrolled.user.pk, "lost phone", "wrong", ORIGIN, **FRESH)
    assert not RecoveryRequest.objects.exists()


def test_issue_needs_a_reason(admin, enrolled):
    from twostep.services.errors import InvalidInput
    with pytest.raises(InvalidInput):
        recovery_passes.issue(fresh(admin), enrolled.user.pk, "  ", PASSWORD, ORIGIN, **FRESH)


def test_issue_for_oneself_is_refused(admin):
    with pytest.raises(Conflict):
        issue(admin, admin)


def test_issue_by_non_admin_is_refused(enrolled, make_user):
    other = make_user("other")
    with pytest.raises(NotAccountAdmin):
        issue(other, enrolled.user)


def test_issue_for_another_accounts_user_is_not_found(admin, db, enroll):
    accounts.create_account("Globex", "globex-admin", "a@globex.example", PASSWORD)
    stranger = accounts.create_user("stranger", "Globex", "s@globex.example", PASSWORD)
    with pytest.raises(NotFound):
        issue(admin, stranger)


def test_issue_for_a_user_without_two_factor_is_refused(admin, member):
    with pytest.raises(TwoFactorDisabled):
        issue(admin, member)


def test_new_pass_cancels_the_earlier_one(admin, enrolled):
    first = issue(admin, enrolled.user).code
    second = issue(admin, enrolled.user).code
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, first, ORIGIN, method="recovery_pass")
    signin.check_code(enrolled.user.pk, second, ORIGIN, method="recovery_pass")


# Using ------------------------------------------------------------------------------------

def test_use_signs_in_once_and_keeps_the_old_authenticator(admin, enrolled, mailoutbox):
    code = issue(admin, enrolled.user).code
    signin.check_code(enrolled.user.pk, code.lower().replace("-", " "), ORIGIN, method="recovery_pass")
    assert Authenticator.objects.filter(user=enrolled.user, confirmed=True).count() == 1
    assert SecurityEvent.objects.filter(type="recovery_pass_used").count() == 1
    assert SecurityEvent.objects.filter(type="sign_in", detail__method="recovery_pass").count() == 1
    assert "pass was used" in mailoutbox[-1].subject
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, code, ORIGIN, method="recovery_pass")


def test_expired_pass_is_refused(admin, enrolled, clock):
    code = issue(admin, enrolled.user).code
    clock.advance(24 * 3600 + 1)
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, code, ORIGIN, method="recovery_pass")


def test_another_users_pass_is_refused(admin, enrolled, enroll, make_user):
    other = enroll(make_user("other"))
    code = issue(admin, other.user).code
    with pytest.raises(InvalidCode):
        signin.check_code(enrolled.user.pk, code, ORIGIN, method="recovery_pass")


def test_wrong_passes_count_toward_the_one_second_factor_throttle(admin, enrolled, settings):
    issue(admin, enrolled.user)
    for _ in range(settings.TWOSTEP_SECOND_FACTOR_FREE_ATTEMPTS + 1):
        with pytest.raises(InvalidCode):
            signin.check_code(enrolled.user.pk, "AAAA-BBBB-CCCC-DDDD", ORIGIN, method="recovery_pass")
    assert fresh(enrolled.user).second_factor_failures == settings.TWOSTEP_SECOND_FACTOR_FREE_ATTEMPTS + 1
    with pytest.raises(Throttled):
        signin.check_code(enrolled.user.pk, "AAAA-BBBB-CCCC-DDDD", ORIGIN, method="recovery_pass")


# Second admin -------------------------------------------------------------------------------

def test_with_second_admin_rule_a_pass_waits_for_approval(admin, second_admin, enrolled, two_admin_rule):
    issued = issue(admin, enrolled.user)
    assert issued.pending and issued.code is None
    assert SecurityEvent.objects.filter(type="recovery_requested").count() == 1
    assert [r.pk for r in recovery_passes.pending_requests(fresh(second_admin))] == [issued.request.pk]
    approved = recovery_passes.approve(fresh(second_admin), issued.request.pk, PASSWORD, ORIGIN, **FRESH)
    assert approved.code
    assert SecurityEvent.objects.filter(type="recovery_approved").count() == 1
    signin.check_code(enrolled.user.pk, approved.code, ORIGIN, method="recovery_pass")


def test_requester_cannot_approve_their_own_request(admin, second_admin, enrolled, two_admin_rule):
    issued = issue(admin, enrolled.user)
    with pytest.raises(Conflict):
        recovery_passes.approve(fresh(admin), issued.request.pk, PASSWORD, ORIGIN, **FRESH)


def test_approval_needs_the_approvers_password(admin, second_admin, enrolled, two_admin_rule):
    issued = issue(admin, enrolled.user)
    with pytest.raises(WrongPassword):
        recovery_passes.approve(fresh(second_admin), issued.request.pk, "nope", ORIGIN, **FRESH)


def test_expired_request_cannot_be_approved(admin, second_admin, enrolled, two_admin_rule, clock):
    issued = issue(admin, enrolled.user)
    clock.advance(25 * 3600)
    with pytest.raises(Conflict):
        recovery_passes.approve(fresh(second_admin), issued.request.pk, PASSWORD, ORIGIN, **FRESH)
    assert recovery_passes.pending_requests(fresh(second_admin)) == []


def test_cancelled_request_does_nothing(admin, second_admin, enrolled, two_admin_rule):
    issued = issue(admin, enrolled.user)
    recovery_passes.cancel(fresh(admin), issued.request.pk, ORIGIN)
    with pytest.raises(Conflict):
        recovery_passes.approve(fresh(second_admin), issued.request.pk, PASSWORD, ORIGIN, **FRESH)


def test_switch_off_waits_for_approval_then_takes_effect(admin, second_admin, enrolled, two_admin_rule):
    with pytest.raises(ApprovalPending) as pending:
        recovery.admin_disable_two_factor(fresh(admin), enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                          **FRESH)
    assert Authenticator.objects.filter(user=enrolled.user).exists()
    request_id = pending.value.extra["request_id"]
    recovery_passes.approve(fresh(second_admin), request_id, PASSWORD, ORIGIN, **FRESH)
    assert not Authenticator.objects.filter(user=enrolled.user).exists()
    event = SecurityEvent.objects.get(type="admin_disabled_two_factor")
    assert event.actor_id == admin.pk and event.detail["approved_by"] == "admin2"


def test_request_of_another_account_is_not_found(admin, enrolled, two_admin_rule, second_admin):
    issued = issue(admin, enrolled.user)
    accounts.create_account("Globex", "globex-admin", "a@globex.example", PASSWORD)
    with pytest.raises(NotFound):
        outsider = accounts.user_status("globex-admin").user
        recovery_passes.approve(outsider, issued.request.pk, PASSWORD, ORIGIN, **FRESH)


# Web ------------------------------------------------------------------------------------------

def test_web_code_page_offers_the_pass_and_leads_to_a_new_authenticator(client, admin, enrolled):
    code = issue(admin, enrolled.user).code
    client.post("/login", {"login": "member", "password": PASSWORD})
    page = client.get("/login/code").content.decode()
    assert "I have a one-time sign-in pass from my admin" in page and 'href="/login/recovery-pass"' in page
    response = client.post("/login/recovery-pass", {"code": code})
    assert response.status_code == 302 and response["Location"] == "/security/recover"
    assert "_auth_user_id" in client.session
    page = client.get("/security/recover").content.decode()
    assert "<h1>You signed in with a one-time sign-in pass</h1>" in page
    # The section says what to do now; "Lost your phone?" is the backup-code sign-in's question.
    assert '<h2 id="lost-heading">Set up a new authenticator</h2>' in page and "Lost your phone?" not in page
    ru = client.get("/security/recover", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert '<h2 id="lost-heading">Настройте новый аутентификатор</h2>' in ru


def test_web_wrong_pass_is_refused(client, admin, enrolled):
    issue(admin, enrolled.user)
    client.post("/login", {"login": "member", "password": PASSWORD})
    assert client.post("/login/recovery-pass", {"code": "AAAA-BBBB-CCCC-DDDD"}).status_code == 401
    assert "_auth_user_id" not in client.session


def test_web_pass_page_without_password_step_goes_to_login(client, db):
    assert client.get("/login/recovery-pass")["Location"].startswith("/login")


def test_web_admin_issues_a_pass_and_sees_it_once(client, admin, enrolled, admin_factor):
    web_sign_in(client, "admin", admin_factor)
    assert client.get(f"/account/users/{enrolled.user.pk}/recovery-pass").status_code == 200
    response = client.post(f"/account/users/{enrolled.user.pk}/recovery-pass",
                           {"reason": "lost phone", "password": PASSWORD})
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    code = re.search(r'id="recovery-pass">([^<]+)<', response.content.decode()).group(1)
    signin.check_code(enrolled.user.pk, code, ORIGIN, method="recovery_pass")


def test_web_users_page_lists_pending_requests_for_approval(client, admin, second_admin, enrolled,
                                                            two_admin_rule, second_admin_factor):
    issued = issue(admin, enrolled.user)
    web_sign_in(client, "admin2", second_admin_factor)
    page = client.get("/account/users").content.decode()
    assert f"/account/recovery-requests/{issued.request.pk}/approve" in page
    response = client.post(f"/account/recovery-requests/{issued.request.pk}/approve", {"password": PASSWORD})
    assert response.status_code == 200 and 'id="recovery-pass"' in response.content.decode()


# API ------------------------------------------------------------------------------------------

def test_api_pass_flow(make_api, admin, enrolled, admin_factor):
    admin_api = make_api().sign_in("admin", enrolled=admin_factor)
    response = admin_api.post(f"/account/users/{enrolled.user.pk}/recovery-pass",
                              {"reason": "lost phone", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["pending"] is False and body["recovery_pass"]
    user_api = make_api()
    assert user_api.login("member").json()["stage"] == "second_factor"
    signed = user_api.second_factor(body["recovery_pass"], method="recovery_pass")
    assert signed.status_code == 200 and signed.json()["method"] == "recovery_pass"
    assert user_api.stage() == "authenticated"
    again = make_api()
    again.login("member")
    assert_error(again.second_factor(body["recovery_pass"], method="recovery_pass"), 401, "invalid_code")


def test_api_second_admin_approval(make_api, admin, second_admin, enrolled, two_admin_rule, admin_factor,
                                   second_admin_factor):
    first = make_api().sign_in("admin", enrolled=admin_factor)
    body = first.post(f"/account/users/{enrolled.user.pk}/recovery-pass",
                      {"reason": "lost phone", "password": PASSWORD}).json()
    assert body["pending"] is True and body["recovery_pass"] is None
    assert_error(first.post(f"/account/recovery-requests/{body['request_id']}/approve", {"password": PASSWORD}),
                 409, "conflict")
    second = make_api().sign_in("admin2", enrolled=second_admin_factor)
    listed = second.get("/account/recovery-requests").json()["requests"]
    assert [r["id"] for r in listed] == [body["request_id"]] and listed[0]["requested_by"] == "admin"
    approved = second.post(f"/account/recovery-requests/{body['request_id']}/approve", {"password": PASSWORD})
    assert approved.status_code == 200 and approved.json()["recovery_pass"]


def test_api_switch_off_with_second_admin_rule_is_202_pending(make_api, admin, second_admin, enrolled,
                                                              two_admin_rule, admin_factor):
    first = make_api().sign_in("admin", enrolled=admin_factor)
    response = first.post(f"/account/users/{enrolled.user.pk}/two-factor/disable",
                          {"reason": "lost phone", "password": PASSWORD})
    assert response.status_code == 202 and response.json()["error"] == "approval_pending"
    assert Authenticator.objects.filter(user=enrolled.user).exists()


# Concurrency, on PostgreSQL -----------------------------------------------------------------

def test_pass_raced_by_twenty_sign_ins_is_used_once(postgres_only, admin, enrolled):
    """Keycloak #26106: a single-use secret must win once under parallel requests (ASVS 15.4.2)."""
    from .test_concurrency import outcomes, race, unexpected

    code = issue(admin, enrolled.user).code
    results = race(20, lambda i: signin.check_code(enrolled.user.pk, code, ORIGIN, method="recovery_pass"))
    assert unexpected(results, InvalidCode, Throttled) == []
    assert outcomes(results)["ok"] == 1
    assert SecurityEvent.objects.filter(type="recovery_pass_used").count() == 1


def test_approval_raced_by_two_admins_takes_effect_once(postgres_only, admin, second_admin, make_user,
                                                        enrolled, enroll, two_admin_rule):
    from .test_concurrency import outcomes, race

    third = make_user("admin3", is_admin=True)
    enroll(third)
    issued = issue(admin, enrolled.user)
    approvers = [fresh(second_admin), fresh(third)]
    results = race(2, lambda i: recovery_passes.approve(approvers[i], issued.request.pk, PASSWORD, ORIGIN,
                                                          second_factor_fresh=True))
    assert outcomes(results)["ok"] == 1
    assert SecurityEvent.objects.filter(type="recovery_pass_issued").count() == 1


def test_web_switch_off_with_second_admin_rule_waits(client, admin, second_admin, enrolled, two_admin_rule,
                                                     admin_factor):
    web_sign_in(client, "admin", admin_factor)
    response = client.post(f"/account/users/{enrolled.user.pk}/disable-2fa",
                           {"reason": "lost phone", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/account/users"
    assert Authenticator.objects.filter(user=enrolled.user).exists()
    assert RecoveryRequest.objects.get().kind == "disable_two_factor"


def test_pass_lets_a_locked_user_back_in(admin, enrolled, settings):
    User.objects.filter(pk=enrolled.user.pk).update(second_factor_failures=settings.TWOSTEP_SECOND_FACTOR_LOCK_AFTER)
    code = issue(admin, enrolled.user).code  # the admin vouched for the person: the lock is lifted
    signin.check_code(enrolled.user.pk, code, ORIGIN, method="recovery_pass")
    assert fresh(enrolled.user).second_factor_failures == 0
