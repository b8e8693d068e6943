"""API /me: 2FA status, setup and confirmation, backup codes, switching off, security events."""

from __future__ import annotations

import pyotp
import pytest

from twostep.models import Account, SecurityEvent
from twostep.services import audit

from ..conftest import ORIGIN, PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def start_setup(api) -> str:
    response = api.post("/me/two-factor/setup", {"password": PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()["secret"]


def at(clock, secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock() + 30 * steps)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/me/two-factor"), ("POST", "/me/two-factor/setup"), ("POST", "/me/two-factor/confirm"),
    ("POST", "/me/backup-codes"), ("POST", "/me/two-factor/disable"), ("GET", "/me/security-events"),
])
def test_me_when_anonymous_is_401(api, method, path):
    response = api.get(path) if method == "GET" else api.post(path, {"password": PASSWORD, "code": "123456"})
    assert_error(response, 401, "not_authenticated")


# GET /me/two-factor ------------------------------------------------------------------------

def test_status_without_two_factor(api, member):
    api.sign_in("member")
    assert api.get("/me/two-factor").json() == {
        "enabled": False, "backup_codes_remaining": 0, "backup_codes_generated_at": None,
        "backup_codes_low": False, "required_by_account": False, "required_from": None,
        "backup_codes_saved": None, "backup_codes_saved_at": None,
    }


def test_status_with_two_factor(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    body = api.get("/me/two-factor").json()
    assert body["enabled"] is True and body["backup_codes_remaining"] == 10
    assert body["backup_codes_generated_at"] and body["backup_codes_low"] is False


def test_status_warns_when_few_codes_left(api, make_api, enrolled):
    for code in enrolled.codes[:7]:
        other = make_api()
        other.login("member")
        assert other.second_factor(code, method="backup_code").status_code == 200
    api.sign_in("member", enrolled=enrolled)
    body = api.get("/me/two-factor").json()
    assert body["backup_codes_remaining"] == 3 and body["backup_codes_low"] is True


# POST /me/two-factor/setup and /confirm --------------------------------------------------------

def test_setup_returns_key_uri_and_qr(api, member):
    api.sign_in("member")
    body = api.post("/me/two-factor/setup", {"password": PASSWORD}).json()
    assert body["otpauth_uri"].startswith("otpauth://totp/twostep:member?secret=" + body["secret"])
    assert body["grouped_secret"].replace(" ", "") == body["secret"]
    assert body["qr_svg"].lstrip().startswith("<svg")
    assert api.get("/me/two-factor").json()["enabled"] is False  # pending until confirmed


def test_setup_with_wrong_password_is_refused(api, member):
    api.sign_in("member")
    assert_error(api.post("/me/two-factor/setup", {"password": "not the password"}), 403, "wrong_password")


def test_setup_without_password_is_invalid_input(api, member):
    api.sign_in("member")
    assert_error(api.post("/me/two-factor/setup", {}), 422, "invalid_input")


def test_confirm_switches_two_factor_on_with_codes(api, member, clock):
    api.sign_in("member")
    secret = start_setup(api)
    response = api.post("/me/two-factor/confirm", {"code": at(clock, secret)})
    assert response.status_code == 200
    body = response.json()
    assert body["enabled"] is True and body["replaced"] is False and body["stage"] == "authenticated"
    assert len(body["backup_codes"]) == 10 and len(set(body["backup_codes"])) == 10
    assert api.get("/me/two-factor").json()["enabled"] is True  # this session stays


def test_confirm_ends_other_sessions(api, make_api, member, clock):
    elsewhere = make_api().sign_in("member")
    api.sign_in("member")
    secret = start_setup(api)
    api.post("/me/two-factor/confirm", {"code": at(clock, secret)})
    assert_error(elsewhere.get("/me/two-factor"), 401, "not_authenticated")


def test_confirm_without_pending_setup_is_conflict(api, member):
    api.sign_in("member")
    assert_error(api.post("/me/two-factor/confirm", {"code": "123456"}), 409, "no_pending_setup")


def test_confirm_with_wrong_code_is_refused(api, member, clock):
    api.sign_in("member")
    secret = start_setup(api)
    wrong = f"{(int(at(clock, secret)) + 1) % 1_000_000:06d}"
    assert_error(api.post("/me/two-factor/confirm", {"code": wrong}), 400, "invalid_code")
    assert api.get("/me/two-factor").json()["enabled"] is False


def test_confirm_with_malformed_code_is_refused(api, member):
    api.sign_in("member")
    start_setup(api)
    assert_error(api.post("/me/two-factor/confirm", {"code": "abcdef"}), 400, "invalid_code")


def test_confirm_with_code_from_skewed_clock_says_how_far(api, member, clock):
    api.sign_in("member")
    secret = start_setup(api)
    body = assert_error(api.post("/me/two-factor/confirm", {"code": at(clock, secret, 4)}), 400, "invalid_code")
    assert body["clock_skew_seconds"] == 120


def test_confirm_replacement_keeps_codes_and_says_replaced(api, enrolled, clock):
    api.sign_in("member", enrolled=enrolled)
    secret = start_setup(api)
    body = api.post("/me/two-factor/confirm", {"code": at(clock, secret)}).json()
    assert body["replaced"] is True and body["backup_codes"] is None


def test_confirm_after_backup_code_sign_in_makes_new_codes(api, enrolled, clock):
    api.login("member")
    api.second_factor(enrolled.codes[0], method="backup_code")
    secret = start_setup(api)
    body = api.post("/me/two-factor/confirm", {"code": at(clock, secret)}).json()
    assert body["replaced"] is True and len(body["backup_codes"]) == 10
    assert not set(body["backup_codes"]) & set(enrolled.codes)


# POST /me/backup-codes ---------------------------------------------------------------------------

def test_generate_backup_codes_replaces_old_ones(api, make_api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    response = api.post("/me/backup-codes", {"password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert len(body["backup_codes"]) == 10 and body["generated_at"]
    other = make_api()
    other.login("member")
    assert_error(other.second_factor(enrolled.codes[0], method="backup_code"), 401, "invalid_code")
    assert other.second_factor(body["backup_codes"][0], method="backup_code").status_code == 200


def test_generate_backup_codes_with_wrong_password_is_refused(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    assert_error(api.post("/me/backup-codes", {"password": "not the password"}), 403, "wrong_password")


def test_generate_backup_codes_without_two_factor_is_conflict(api, member):
    api.sign_in("member")
    assert_error(api.post("/me/backup-codes", {"password": PASSWORD}), 409, "two_factor_disabled")


def test_generate_backup_codes_after_many_wrong_passwords_is_throttled(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    for _ in range(6):
        api.post("/me/backup-codes", {"password": "not the password"})
    response = api.post("/me/backup-codes", {"password": PASSWORD})
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


# POST /me/two-factor/disable ------------------------------------------------------------------

def test_disable_switches_two_factor_off(api, make_api, enrolled, clock):
    elsewhere = make_api().sign_in("member", enrolled=enrolled)
    clock.advance(30)  # each sign-in spends its time step
    api.sign_in("member", enrolled=enrolled)
    clock.advance(30)
    response = api.post("/me/two-factor/disable", {"password": PASSWORD, "code": enrolled.code()})
    assert response.status_code == 200 and response.json() == {"enabled": False}
    assert api.get("/me/two-factor").json()["enabled"] is False  # this session stays
    assert_error(elsewhere.get("/me/two-factor"), 401, "not_authenticated")


def test_disable_with_backup_code(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    response = api.post("/me/two-factor/disable", {"password": PASSWORD, "code": enrolled.codes[0]})
    assert response.json() == {"enabled": False}


def test_disable_with_wrong_code_is_refused(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    wrong = f"{(int(enrolled.code()) + 1) % 1_000_000:06d}"
    response = api.post("/me/two-factor/disable", {"password": PASSWORD, "code": wrong})
    assert_error(response, 400, "invalid_code")
    assert api.get("/me/two-factor").json()["enabled"] is True


def test_disable_with_wrong_password_is_refused(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    response = api.post("/me/two-factor/disable", {"password": "not the password", "code": enrolled.code(1)})
    assert_error(response, 403, "wrong_password")


def test_disable_when_account_requires_two_factor_is_refused(api, admin, enrolled):

    Account.objects.filter(pk=admin.account_id).update(require_two_factor=True)  # as the policy left it
    api.sign_in("member", enrolled=enrolled)
    response = api.post("/me/two-factor/disable", {"password": PASSWORD, "code": enrolled.code(1)})
    assert_error(response, 403, "two_factor_required_by_account")


def test_disable_without_two_factor_is_conflict(api, member):
    api.sign_in("member")
    response = api.post("/me/two-factor/disable", {"password": PASSWORD, "code": "123456"})
    assert_error(response, 409, "two_factor_disabled")


def test_disable_without_code_is_invalid_input(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    body = assert_error(api.post("/me/two-factor/disable", {"password": PASSWORD}), 422, "invalid_input")
    assert "code" in body["message"]


# GET /me/security-events ------------------------------------------------------------------------

def test_security_events_lists_own_events_newest_first(api, admin, member):
    api.sign_in("member")
    api.sign_in("admin")  # someone else's events are not shown; member's sign-in ends
    api.sign_in("member")
    events = api.get("/me/security-events").json()["events"]
    assert [e["type"] for e in events[:3]] == ["sign_in", "sign_out", "sign_in"]
    assert {e["actor"] for e in events if e["type"] == "sign_in"} == {"member"}
    first = events[0]
    assert set(first) == {"id", "type", "description", "at", "ip", "user_agent", "actor"}
    assert first["ip"] == "127.0.0.1" and first["description"] == (
        "Signed in with the password alone (two-factor authentication off)")
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True)


def test_security_events_pages_with_cursor(api, member):
    for _ in range(60):
        audit.record(SecurityEvent.Type.REAUTH_FAILED, user=member, actor=member, origin=ORIGIN)
    api.sign_in("member")
    first = api.get("/me/security-events").json()
    assert len(first["events"]) == 50 and first["next"] is not None
    second = api.get("/me/security-events", {"cursor": first["next"]}).json()
    assert second["next"] is None
    assert not {e["id"] for e in first["events"]} & {e["id"] for e in second["events"]}
    assert len(first["events"]) + len(second["events"]) == SecurityEvent.objects.filter(user=member).count()


@pytest.mark.parametrize("cursor", ["abc", "0", "-5", "1.5", str(2**64)])
def test_security_events_with_bad_cursor_is_invalid_input(api, member, cursor):
    api.sign_in("member")
    body = assert_error(api.get("/me/security-events", {"cursor": cursor}), 422, "invalid_input")
    assert "cursor" in body["message"]
