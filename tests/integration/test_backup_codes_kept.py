"""A new set of backup codes: unsaved until confirmed, shown again to its own session only, and
a code used before told apart from a wrong one (services, pages and API)."""

from __future__ import annotations

import re

import pyotp
import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import translation

from twostep.models import BackupCode, BackupCodeSet, SecurityEvent
from twostep.services import activity, authenticators, signin
from twostep.services.errors import InvalidCode, TwoFactorDisabled
from twostep.services.factors import backup_codes

from ..conftest import ORIGIN, PASSWORD, web_sign_in
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

CODE_SHAPE = re.compile(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>")
NEW_CODES = "/security/backup-codes/new"
NAG = "You have not confirmed saving your backup codes"


def shown_codes(response) -> list[str]:
    return CODE_SHAPE.findall(response.content.decode())


def switch_on_in_pages(client, member, clock) -> list[str]:
    """Sign in, switch on with the first app code, and return the codes the page shows."""
    web_sign_in(client, member.login)
    client.post("/security/setup", {})
    secret = authenticators.pending_app(member).secret
    response = client.post("/security/setup/confirm", {"code": pyotp.TOTP(secret).at(clock())})
    assert response.status_code == 302 and response["Location"] == NEW_CODES
    return shown_codes(client.get(NEW_CODES))


# Services -----------------------------------------------------------------------------------

def test_new_set_is_unsaved_until_confirmed(enrolled, clock):
    code_set = backup_codes.current_set(enrolled.user)
    assert backup_codes.is_saved(code_set) is False
    saved = backup_codes.confirm_saved(enrolled.user)
    assert backup_codes.is_saved(saved) is True and saved.saved_at.timestamp() == pytest.approx(clock())
    clock.advance(60)
    assert backup_codes.confirm_saved(enrolled.user).saved_at == saved.saved_at  # repeating changes nothing
    backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    assert backup_codes.is_saved(backup_codes.current_set(enrolled.user)) is False


def test_confirm_saved_without_a_set_is_refused(member):
    assert backup_codes.is_saved(backup_codes.current_set(member)) is None
    with pytest.raises(TwoFactorDisabled):
        backup_codes.confirm_saved(member)


def test_sealed_set_comes_back_only_while_current_unsaved_and_recent(enrolled, make_user, clock):
    new = backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    token = backup_codes.seal_for_session(enrolled.user, new)
    assert not any(code in token or code.replace("-", "") in token for code in new.codes)
    assert backup_codes.unsealed(enrolled.user, token).codes == new.codes
    assert backup_codes.unsealed(make_user("other"), token) is None  # another user's session
    assert backup_codes.unsealed(enrolled.user, token[:-4] + "AAAA") is None  # tampered
    clock.advance(backup_codes.SHOWN_AGAIN_MINUTES * 60 + 1)
    assert backup_codes.unsealed(enrolled.user, token) is None  # too old


def test_sealed_set_is_dead_once_saved_or_replaced(enrolled, clock):
    first = backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    token = backup_codes.seal_for_session(enrolled.user, first)
    clock.advance(1)
    second = backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    assert backup_codes.unsealed(enrolled.user, token) is None
    token = backup_codes.seal_for_session(enrolled.user, second)
    backup_codes.confirm_saved(enrolled.user)
    assert backup_codes.unsealed(enrolled.user, token) is None


def test_used_backup_code_is_told_apart_and_counted(enrolled):
    user = enrolled.user
    signin.check_code(user.pk, enrolled.codes[0], ORIGIN, method="backup_code")
    with pytest.raises(backup_codes.CodeAlreadyUsed) as refused:
        signin.check_code(user.pk, enrolled.codes[0], ORIGIN, method="backup_code")
    assert refused.value.code == "code_already_used"
    user.refresh_from_db()
    assert user.second_factor_failures == 1  # a failure like any wrong code
    failed = SecurityEvent.objects.filter(user=user, type=SecurityEvent.Type.SECOND_FACTOR_FAILED).get()
    assert failed.detail.get("reused") is True
    assert BackupCode.objects.filter(user=user, used_at__isnull=False).count() == 1


def test_code_of_a_replaced_set_is_just_wrong(enrolled):
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN, method="backup_code")
    backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    with pytest.raises(InvalidCode) as refused:
        signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN, method="backup_code")
    assert refused.value.code == "invalid_code"


# Pages --------------------------------------------------------------------------------------

def test_codes_page_shows_the_same_set_again_until_saved(client, member, clock):
    codes = switch_on_in_pages(client, member, clock)
    assert len(codes) == 10
    again = client.get(NEW_CODES)  # a reload, Back, or the language switch's redirect
    assert shown_codes(again) == codes and "no-store" in again["Cache-Control"]
    assert 'action="/security/backup-codes/saved"' in again.content.decode()
    # The session keeps the set, but not readably.
    for session in Session.objects.all():
        stored = session.session_data + repr(session.get_decoded())
        assert not any(code in stored or code.replace("-", "") in stored for code in codes)

    page = client.get("/security").content.decode()
    assert NAG in page and "Show my backup codes" in page and f'href="{NEW_CODES}"' in page

    response = client.post("/security/backup-codes/saved", follow=True)
    page = response.content.decode()
    assert "Two-factor authentication is on, and your backup codes are saved." in page and NAG not in page
    assert BackupCodeSet.objects.get(user=member).saved_at is not None
    after = client.get(NEW_CODES)
    assert after.status_code == 302 and after["Location"] == "/security" and shown_codes(after) == []


def test_codes_page_shows_nothing_to_another_session(client, member, clock):
    switch_on_in_pages(client, member, clock)
    other = Client()
    other.force_login(member.__class__.objects.get(pk=member.pk))
    response = other.get(NEW_CODES)
    assert response.status_code == 302 and response["Location"] == "/security"
    page = other.get("/security").content.decode()
    assert NAG in page and "They can no longer be shown." in page and "Show my backup codes" not in page


def test_codes_page_stops_showing_the_set_after_a_while(client, member, clock):
    switch_on_in_pages(client, member, clock)
    clock.advance(backup_codes.SHOWN_AGAIN_MINUTES * 60 + 1)
    response = client.get(NEW_CODES, follow=True)
    page = response.content.decode()
    assert shown_codes(response) == [] and "can no longer be shown here" in page and NAG in page


def test_saved_from_the_security_page_needs_post(client, enrolled):
    enrolled.user.refresh_from_db()  # enrolling rotated the security stamp
    client.force_login(enrolled.user)
    assert client.get("/security/backup-codes/saved").status_code == 405
    assert NAG in client.get("/security").content.decode()
    client.post("/security/backup-codes/saved")
    assert NAG not in client.get("/security").content.decode()


def test_no_codes_left_reads_as_danger_and_makes_generating_the_main_button(client, enrolled):
    backup_codes.confirm_saved(enrolled.user)
    client.force_login(enrolled.user.__class__.objects.get(pk=enrolled.user.pk))
    page = client.get("/security").content.decode()
    assert "No backup codes left" not in page
    assert re.search(r'class="button button-secondary">Generate new codes', page)
    BackupCode.objects.filter(user=enrolled.user, pk__in=BackupCode.objects.filter(
        user=enrolled.user).values("pk")[:7]).update(used_at="2026-01-01T00:00:00Z")
    page = client.get("/security").content.decode()
    assert "running out of backup codes" in page and "No backup codes left" not in page
    assert re.search(r'class="button">Generate new codes', page)
    BackupCode.objects.filter(user=enrolled.user).update(used_at="2026-01-01T00:00:00Z")
    page = client.get("/security").content.decode()
    assert '<p class="notice notice-error" role="alert"><strong>No backup codes left — generate new ones now.' in page
    assert "running out of backup codes" not in page
    assert re.search(r'class="button">Generate new codes', page)


def test_users_list_flags_few_and_no_codes(client, admin, make_user, enroll):
    few, none_left, plenty = (enroll(make_user(login)) for login in ("few", "none", "plenty"))
    BackupCode.objects.filter(user=few.user, pk__in=BackupCode.objects.filter(
        user=few.user).values("pk")[:7]).update(used_at="2026-01-01T00:00:00Z")
    BackupCode.objects.filter(user=none_left.user).update(used_at="2026-01-01T00:00:00Z")
    client.force_login(admin)
    page = client.get("/account/users").content.decode()
    rows = {login: re.search(rf'<th scope="row">{login}</th>(.*?)</tr>', page, re.S).group(1)
            for login in ("few", "none", "plenty")}
    assert "few left" in rows["few"] and "none left" not in rows["few"]
    assert "none left" in rows["none"]
    assert "left</span>" not in rows["plenty"]


def test_used_backup_code_at_sign_in_page_says_so(client, enrolled):
    client.post("/login", {"login": "member", "password": PASSWORD})
    client.post("/login/backup-code", {"code": enrolled.codes[0]})
    client.post("/logout")
    client.post("/login", {"login": "member", "password": PASSWORD})
    response = client.post("/login/backup-code", {"code": enrolled.codes[0]})
    assert response.status_code == 401
    page = response.content.decode()
    assert "That backup code was already used" in page and "check it for typos" not in page


def saved_events(user):
    return SecurityEvent.objects.filter(user=user, type=SecurityEvent.Type.BACKUP_CODES_SAVED)


def test_confirming_saved_codes_in_the_pages_records_one_event_per_set(client, member, clock):
    switch_on_in_pages(client, member, clock)
    client.post("/security/backup-codes/saved")
    client.post("/security/backup-codes/saved")  # the same set again: nothing new to record
    event = saved_events(member).get()
    assert event.actor_id == member.pk and event.ip == "127.0.0.1"
    # The one description, on the user's own activity page and in Russian.
    assert "Confirmed that the new backup codes are saved" in client.get("/security/activity").content.decode()
    with translation.override("ru"):
        assert activity.describe(event) == "Подтверждено, что новые резервные коды сохранены"
    client.post("/security/backup-codes", {"password": PASSWORD})  # a new set, saved once more
    client.post("/security/backup-codes/saved")
    assert saved_events(member).count() == 2


def test_confirming_an_already_saved_set_records_nothing(enrolled):
    backup_codes.confirm_saved(enrolled.user, ORIGIN)
    backup_codes.confirm_saved(enrolled.user, ORIGIN)
    assert saved_events(enrolled.user).count() == 1


# API ----------------------------------------------------------------------------------------

def test_api_says_whether_the_set_was_saved_and_confirms_it(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    status = api.get("/me/two-factor").json()
    assert status["backup_codes_saved"] is False and status["backup_codes_saved_at"] is None
    response = api.post("/me/backup-codes/saved")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["backup_codes_saved"] is True and body["backup_codes_saved_at"]
    status = api.get("/me/two-factor").json()
    assert status["backup_codes_saved"] is True and status["backup_codes_saved_at"] == body["backup_codes_saved_at"]
    api.post("/me/backup-codes", {"password": PASSWORD})
    assert api.get("/me/two-factor").json()["backup_codes_saved"] is False


def test_api_confirming_saved_codes_records_one_event(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    assert api.post("/me/backup-codes/saved").status_code == 200
    assert api.post("/me/backup-codes/saved").status_code == 200
    assert saved_events(enrolled.user).count() == 1
    descriptions = [e["description"] for e in api.get("/me/security-events").json()["events"]]
    assert descriptions.count("Confirmed that the new backup codes are saved") == 1


def test_api_confirm_saved_without_two_factor_is_409(api, member):
    api.sign_in("member")
    assert_error(api.post("/me/backup-codes/saved"), 409, "two_factor_disabled")


def test_api_used_backup_code_is_code_already_used(api, enrolled):
    api.login("member")
    assert api.second_factor(enrolled.codes[0], method="backup_code").status_code == 200
    api.login("member")
    body = assert_error(api.second_factor(enrolled.codes[0], method="backup_code"), 401, "code_already_used")
    assert "already used" in body["message"]
