"""An admin's action on a user outside their account: "not found" to them, audited for their account."""

from __future__ import annotations

import pytest

from twostep.models import SecurityEvent
from twostep.services import accounts, recovery, recovery_passes
from twostep.services.errors import NotFound

from ..conftest import ORIGIN, PASSWORD
from .test_api_support import api_fixture, assert_error  # noqa: F401

pytestmark = pytest.mark.django_db

DENIED = SecurityEvent.Type.ADMIN_ACCESS_DENIED


@pytest.fixture
def outsider(account):
    accounts.create_account("Globex", "globex-admin", "admin@globex.example", PASSWORD)
    return accounts.create_user("outsider", "Globex", "outsider@globex.example", PASSWORD)


def denials():
    return list(SecurityEvent.objects.filter(type=DENIED).order_by("pk"))


def test_service_refusal_is_audited_in_the_admins_account(admin, outsider):
    with pytest.raises(NotFound):
        recovery.admin_disable_two_factor(admin, outsider.pk, "curious", PASSWORD, ORIGIN)
    [event] = denials()
    assert event.actor_id == admin.pk and event.account_id == admin.account_id and event.user_id is None
    assert event.ip == ORIGIN.ip
    assert event.detail == {"target": str(outsider.pk), "action": "disable_two_factor"}


def test_another_accounts_user_and_no_user_are_audited_alike(admin, outsider):
    for target in (outsider.pk, 999_999, "nonsense"):
        with pytest.raises(NotFound):
            recovery_passes.issue(admin, target, "curious", PASSWORD, ORIGIN)
    assert [(e.detail["target"], e.detail["action"]) for e in denials()] == [
        (str(outsider.pk), "issue_recovery_pass"), ("999999", "issue_recovery_pass"),
        ("nonsense", "issue_recovery_pass")]
    # The other account's admins see nothing of it; the target learns nothing either.
    assert not SecurityEvent.objects.filter(type=DENIED, account_id=outsider.account_id).exists()


def test_a_user_of_the_own_account_is_not_a_denial(admin, member):
    assert recovery.account_user(admin, member.pk, ORIGIN, "view") == member
    assert denials() == []


def test_web_answers_404_and_audits(client, admin, outsider):
    client.force_login(admin)
    assert client.get(f"/account/users/{outsider.pk}/disable-2fa").status_code == 404
    response = client.post(f"/account/users/{outsider.pk}/disable-2fa",
                           {"reason": "curious", "password": PASSWORD})
    assert response.status_code == 404
    assert [e.detail["action"] for e in denials()] == ["disable_two_factor", "disable_two_factor"]


def test_api_answers_404_and_audits(api, admin, outsider):
    api.sign_in("admin")
    response = api.post(f"/account/users/{outsider.pk}/two-factor/disable",
                        {"reason": "curious", "password": PASSWORD})
    assert_error(response, 404, "not_found")
    response = api.post(f"/account/users/{outsider.pk}/recovery-pass", {"reason": "curious", "password": PASSWORD})
    assert_error(response, 404, "not_found")
    assert [e.detail["action"] for e in denials()] == ["disable_two_factor", "issue_recovery_pass"]
    events = api.get("/account/security-events").json()["events"]
    assert any(e["type"] == "admin_access_denied" for e in events)
