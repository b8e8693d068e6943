"""An admin acts on someone else's factors only with 2FA of their own and a second factor proved just now.

Switching a user's 2FA off, issuing a one-time pass and approving another admin's request all
need it; the operator's break-glass on the command line does not.
"""

from __future__ import annotations

import pytest

from twostep.models import Authenticator, RecoveryRequest, SecurityEvent, User
from twostep.services import accounts, authenticators, factors, recovery, recovery_passes
from twostep.services.errors import (
    AdminNeedsTwoFactor,
    InvalidConfirmationCode,
    SecondFactorRequired,
    Throttled,
)

from ..conftest import ORIGIN, PASSWORD, web_sign_in
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

DENIED = SecurityEvent.Type.ADMIN_ACCESS_DENIED


def fresh(user):
    return User.objects.select_related("account").get(pk=user.pk)


def wrong_code(enrolled) -> str:
    right = {enrolled.code(step) for step in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in right)


@pytest.fixture
def second_admin(make_user):
    return make_user("admin2", is_admin=True)


@pytest.fixture
def pending_pass(admin, admin_factor, second_admin, enrolled):
    """A pass that admin asked for under the second-admin rule, waiting for admin2."""
    accounts.set_require_second_admin(fresh(admin), True, ORIGIN)
    issued = recovery_passes.issue(fresh(admin), enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                   second_factor_fresh=True)
    assert issued.pending
    return issued.request


def assert_nothing_changed(enrolled):
    assert factors.enabled(enrolled.user)
    assert Authenticator.objects.filter(user=enrolled.user).exists()
    assert not SecurityEvent.objects.filter(type__in=["admin_disabled_two_factor", "recovery_pass_issued"]).exists()


# An admin without 2FA ------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["disable_two_factor", "issue_recovery_pass"])
def test_admin_without_two_factor_is_refused_and_audited(admin, enrolled, action):
    act = {"disable_two_factor": recovery.admin_disable_two_factor,
           "issue_recovery_pass": recovery_passes.issue}[action]
    # Even a session that proved "a second factor" (it cannot have) and a code do not help.
    with pytest.raises(AdminNeedsTwoFactor):
        act(admin, enrolled.user.pk, "lost phone", PASSWORD, ORIGIN, code="123456", second_factor_fresh=True)
    assert_nothing_changed(enrolled)
    assert not RecoveryRequest.objects.exists()
    [event] = SecurityEvent.objects.filter(type=DENIED)
    assert event.actor_id == admin.pk and event.account_id == admin.account_id
    assert event.detail == {"target": str(enrolled.user.pk), "action": action,
                            "reason": "admin_two_factor_required"}


def test_approver_without_two_factor_is_refused(pending_pass, second_admin, enrolled):
    with pytest.raises(AdminNeedsTwoFactor):
        recovery_passes.approve(fresh(second_admin), pending_pass.pk, PASSWORD, ORIGIN, second_factor_fresh=True)
    pending_pass.refresh_from_db()
    assert pending_pass.approved_at is None and pending_pass.token_digest in ("", None)
    assert SecurityEvent.objects.get(type=DENIED).detail["action"] == "approve_recovery_request"


def test_an_admin_who_lost_their_2fa_is_refused_again(admin, admin_factor, enrolled):
    recovery.admin_disable_two_factor(fresh(admin), enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                      code=admin_factor.code())
    other = accounts.create_user("other", "Acme", "other@acme.example", PASSWORD)
    authenticators.disable(fresh(admin), PASSWORD, admin_factor.code(1), ORIGIN)
    with pytest.raises(AdminNeedsTwoFactor):
        recovery_passes.issue(fresh(admin), other.pk, "lost phone", PASSWORD, ORIGIN, second_factor_fresh=True)


def test_the_operators_break_glass_needs_no_admin(enrolled):
    recovery.operator_disable_two_factor("member", "ticket 7, checked in person")
    assert not factors.enabled(enrolled.user)


# An admin with 2FA: a second factor just now -------------------------------------------------

def test_stale_second_factor_and_no_code_is_refused_before_the_password(admin, admin_factor, enrolled):
    for code in (None, "", "   "):
        with pytest.raises(SecondFactorRequired):
            recovery.admin_disable_two_factor(fresh(admin), enrolled.user.pk, "lost phone", "wrong", ORIGIN,
                                              code=code, second_factor_fresh=False)
    assert_nothing_changed(enrolled)
    assert not SecurityEvent.objects.filter(type="reauth_failed").exists()  # nothing was tried


def test_a_right_app_code_is_accepted(admin, admin_factor, enrolled):
    recovery.admin_disable_two_factor(fresh(admin), enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                      code=admin_factor.code())
    assert not factors.enabled(enrolled.user)


def test_a_backup_code_is_accepted_once(admin, admin_factor, enrolled, enroll, make_user):
    issued = recovery_passes.issue(fresh(admin), enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                   code=admin_factor.codes[0])
    assert issued.code
    other = enroll(make_user("other"))
    with pytest.raises(InvalidConfirmationCode):
        recovery_passes.issue(fresh(admin), other.user.pk, "lost phone", PASSWORD, ORIGIN,
                              code=admin_factor.codes[0])


def test_a_code_is_checked_even_when_the_second_factor_is_fresh(admin, admin_factor, enrolled):
    with pytest.raises(InvalidConfirmationCode):
        recovery.admin_disable_two_factor(fresh(admin), enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                          code=wrong_code(admin_factor), second_factor_fresh=True)
    assert_nothing_changed(enrolled)


def test_wrong_codes_count_in_the_admins_own_throttle(admin, admin_factor, enrolled, settings):
    settings.TWOSTEP_SECOND_FACTOR_FREE_ATTEMPTS = 2
    for _ in range(3):  # two free, the third sets a wait
        with pytest.raises(InvalidConfirmationCode):
            recovery.admin_disable_two_factor(fresh(admin), enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                              code=wrong_code(admin_factor))
    assert fresh(admin).second_factor_failures == 3
    assert fresh(enrolled.user).second_factor_failures == 0  # the target's throttle is not theirs to spend
    failed = SecurityEvent.objects.filter(type="second_factor_failed", user=admin).latest("pk")
    assert failed.detail["purpose"] == "step_up"
    with pytest.raises(Throttled):  # now even the right code waits
        recovery.admin_disable_two_factor(fresh(admin), enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                          code=admin_factor.code())
    assert_nothing_changed(enrolled)


def test_approval_takes_the_approvers_code(pending_pass, second_admin, enroll):
    approver = enroll(second_admin)
    with pytest.raises(SecondFactorRequired):
        recovery_passes.approve(fresh(second_admin), pending_pass.pk, PASSWORD, ORIGIN)
    done = recovery_passes.approve(fresh(second_admin), pending_pass.pk, PASSWORD, ORIGIN, code=approver.code())
    assert done.code


# API -------------------------------------------------------------------------------------------

def test_api_admin_without_two_factor_is_403_and_audited(api, admin, enrolled):
    api.sign_in("admin")
    body = {"reason": "lost phone", "password": PASSWORD}
    assert_error(api.post(f"/account/users/{enrolled.user.pk}/two-factor/disable", body),
                 403, "admin_two_factor_required")
    assert_error(api.post(f"/account/users/{enrolled.user.pk}/recovery-pass", body),
                 403, "admin_two_factor_required")
    assert_nothing_changed(enrolled)
    assert [e.detail["action"] for e in SecurityEvent.objects.filter(type=DENIED).order_by("pk")] == [
        "disable_two_factor", "issue_recovery_pass"]
    events = api.get("/account/security-events").json()["events"]
    assert any(e["type"] == "admin_access_denied" for e in events)


def test_api_stale_second_factor_needs_a_code(api, admin, admin_factor, enrolled, clock, settings):
    api.sign_in("admin", enrolled=admin_factor)
    clock.advance(settings.TWOSTEP_REAUTH_MINUTES * 60 + 1)
    url = f"/account/users/{enrolled.user.pk}/two-factor/disable"
    assert_error(api.post(url, {"reason": "lost phone", "password": PASSWORD}), 403, "second_factor_required")
    assert_error(api.post(url, {"reason": "lost phone", "password": PASSWORD, "code": wrong_code(admin_factor)}),
                 400, "invalid_code")
    assert fresh(admin).second_factor_failures == 1
    assert_nothing_changed(enrolled)
    response = api.post(url, {"reason": "lost phone", "password": PASSWORD, "code": admin_factor.code()})
    assert response.status_code == 200 and response.json() == {"enabled": False}
    assert fresh(admin).second_factor_failures == 0


def test_api_pass_and_approval_take_a_code(make_api, pending_pass, second_admin, enroll, clock, settings):
    approver = enroll(second_admin)
    api = make_api().sign_in("admin2", enrolled=approver)
    clock.advance(settings.TWOSTEP_REAUTH_MINUTES * 60 + 1)
    url = f"/account/recovery-requests/{pending_pass.pk}/approve"
    assert_error(api.post(url, {"password": PASSWORD}), 403, "second_factor_required")
    response = api.post(url, {"password": PASSWORD, "code": approver.code()})
    assert response.status_code == 200 and response.json()["recovery_pass"]


def test_api_declares_the_new_errors(api):
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/account/users/{id}/two-factor/disable", "/api/v1/account/users/{id}/recovery-pass",
                 "/api/v1/account/recovery-requests/{id}/approve"):
        operation = paths[path]["post"]
        forbidden = operation["responses"]["403"]["description"]
        assert "admin_two_factor_required" in forbidden and "second_factor_required" in forbidden
        assert "invalid_code" in operation["responses"]["400"]["description"]


# Pages -----------------------------------------------------------------------------------------

def test_web_admin_without_two_factor_is_sent_to_set_up_their_own(client, admin, enrolled):
    client.force_login(fresh(admin))
    for url in (f"/account/users/{enrolled.user.pk}/disable-2fa", f"/account/users/{enrolled.user.pk}/recovery-pass"):
        page = client.get(url).content.decode()
        assert "Switch on two-factor authentication for yourself before changing someone" in page
        assert 'href="/security/setup"' in page and 'name="password"' not in page
        response = client.post(url, {"reason": "lost phone", "password": PASSWORD})
        assert response.status_code == 403
    assert_nothing_changed(enrolled)


def test_web_fresh_sign_in_needs_no_code(client, admin, admin_factor, enrolled):
    web_sign_in(client, "admin", admin_factor)
    url = f"/account/users/{enrolled.user.pk}/recovery-pass"
    page = client.get(url).content.decode()
    assert 'name="code"' not in page and 'id="step-up-fresh"' in page
    response = client.post(url, {"reason": "lost phone", "password": PASSWORD})
    assert response.status_code == 200 and 'id="recovery-pass"' in response.content.decode()


def test_web_stale_sign_in_shows_code_errors_in_the_field(client, admin, admin_factor, enrolled, clock, settings):
    web_sign_in(client, "admin", admin_factor)
    clock.advance(settings.TWOSTEP_REAUTH_MINUTES * 60 + 1)
    url = f"/account/users/{enrolled.user.pk}/disable-2fa"
    assert 'name="code"' in client.get(url).content.decode()
    response = client.post(url, {"reason": "lost phone", "password": PASSWORD})
    assert response.status_code == 400 and 'id="id_code_error"' in response.content.decode()
    response = client.post(url, {"reason": "lost phone", "password": PASSWORD, "code": wrong_code(admin_factor)})
    assert response.status_code == 400 and 'id="id_code_error"' in response.content.decode()
    assert_nothing_changed(enrolled)
    response = client.post(url, {"reason": "lost phone", "password": PASSWORD, "code": admin_factor.code()})
    assert response.status_code == 302 and not factors.enabled(enrolled.user)


def test_web_approval_form_asks_for_a_code(client, pending_pass, second_admin, enroll, clock, settings):
    approver = enroll(second_admin)
    web_sign_in(client, "admin2", approver)
    assert f'id="approve-code-{pending_pass.pk}"' not in client.get("/account/users").content.decode()
    clock.advance(settings.TWOSTEP_REAUTH_MINUTES * 60 + 1)
    assert f'id="approve-code-{pending_pass.pk}"' in client.get("/account/users").content.decode()
    response = client.post(f"/account/recovery-requests/{pending_pass.pk}/approve",
                           {"password": PASSWORD, "code": approver.code()})
    assert response.status_code == 200 and 'id="recovery-pass"' in response.content.decode()


def test_api_a_code_typed_for_one_action_makes_the_session_fresh_for_the_next(api, admin, admin_factor, enrolled,
                                                                               make_user, enroll, clock, settings):
    other = enroll(make_user("other"))
    api.sign_in("admin", enrolled=admin_factor)
    clock.advance(settings.TWOSTEP_REAUTH_MINUTES * 60 + 1)
    first = f"/account/users/{enrolled.user.pk}/two-factor/disable"
    response = api.post(first, {"reason": "lost phone", "password": PASSWORD, "code": admin_factor.code()})
    assert response.status_code == 200
    second = f"/account/users/{other.user.pk}/two-factor/disable"
    response = api.post(second, {"reason": "lost phone too", "password": PASSWORD})  # no code: fresh now
    assert response.status_code == 200, response.content
    clock.advance(settings.TWOSTEP_REAUTH_MINUTES * 60 + 1)
    third = enroll(make_user("third"))
    assert_error(api.post(f"/account/users/{third.user.pk}/two-factor/disable",
                          {"reason": "and again", "password": PASSWORD}), 403, "second_factor_required")
