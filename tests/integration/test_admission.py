"""Admission control at sign-in: the hashing gate's 503 on the pages and the API, the device
cookie's priority lane and its own throttle (OWASP "device cookies"; ASVS 5.0 §6.3)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.core import signing
from django.test import Client

from twostep.models import Throttle
from twostep.services import admission, devices, signin
from twostep.services.audit import Origin

from ..conftest import ORIGIN, PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

COOKIE = devices.COOKIE_NAME


@pytest.fixture(name="small_gate")
def small_gate_fixture(settings):
    """One hashing slot, no waiting room for strangers (a taken slot makes the gate full), a long
    wait for members."""
    settings.TWOSTEP_HASH_CONCURRENCY = 1
    settings.TWOSTEP_HASH_QUEUE_LENGTH = 0
    settings.TWOSTEP_HASH_QUEUE_TIMEOUT = 2
    settings.TWOSTEP_HASH_PRIORITY_TIMEOUT = 10
    admission._gate_for.cache_clear()
    yield admission.gate()
    admission._gate_for.cache_clear()


@contextmanager
def slot_taken(gate, *, free_after: float | None = None):
    """Hold the gate's only slot in another thread (a hash running), until the block ends or
    `free_after` seconds pass."""
    taken, release = threading.Event(), threading.Event()

    def hold():
        with gate.admit(priority=True):
            taken.set()
            release.wait(free_after if free_after is not None else 30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(5)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def web_login(client, login="member", password=PASSWORD):
    return client.post("/login", {"login": login, "password": password})


def signed_in_browser(login="member") -> Client:
    client = Client()
    response = web_login(client, login)
    assert response.status_code == 302, response.content
    return client


# The device cookie is set on a full sign-in, and only then ------------------------------------

def test_a_full_sign_in_sets_a_device_cookie_without_the_login_in_clear(member):
    response = web_login(Client())
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and int(cookie["max-age"]) == 180 * 86400
    assert "member" not in cookie.value.lower() and "member" not in repr(signing.loads(cookie.value,
                                                                                       salt="twostep.device_cookie"))
    assert devices.recognise(cookie.value, "member") is not None
    assert devices.recognise(cookie.value, "MEMBER ") is not None  # logins ignore case, as at sign-in


def test_no_device_cookie_after_a_wrong_password(member):
    response = web_login(Client(), password="not the password")
    assert response.status_code == 401 and COOKIE not in response.cookies


def test_the_device_cookie_comes_after_the_second_step_not_the_password(enrolled):
    client = Client()
    assert COOKIE not in web_login(client).cookies
    wrong = client.post("/login/code", {"code": "000000" if enrolled.code() != "000000" else "111111"})
    assert COOKIE not in wrong.cookies
    response = client.post("/login/code", {"code": enrolled.code()})
    assert response.status_code == 302 and devices.recognise(response.cookies[COOKIE].value, "member")


def test_the_api_sign_in_sets_the_device_cookie_too(api, member):
    response = api.login("member")
    assert response.status_code == 200 and devices.recognise(response.cookies[COOKIE].value, "member")


def test_the_secure_flag_follows_https(member, settings):
    response = Client().post("/login", {"login": "member", "password": PASSWORD}, secure=True)
    assert response.cookies[COOKIE]["secure"]
    assert not web_login(Client()).cookies[COOKIE]["secure"]


def test_a_device_cookie_keeps_its_id_and_holds_several_logins(make_user, member):
    make_user("other")
    client = signed_in_browser("member")
    first = devices.recognise(client.cookies[COOKIE].value, "member")
    client.post("/logout")
    assert web_login(client, "other").status_code == 302
    value = client.cookies[COOKIE].value
    assert devices.recognise(value, "member") == first  # still known, same throttle key
    assert devices.recognise(value, "other") not in (None, first)


# A forged or foreign cookie is a stranger ----------------------------------------------------

def test_a_forged_altered_or_foreign_cookie_is_not_recognised(make_user, member):
    make_user("other")
    value = signed_in_browser("member").cookies[COOKIE].value
    payload = signing.loads(value, salt="twostep.device_cookie")
    assert devices.recognise(value, "other") is None  # bound to the login it signed in as
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    assert devices.recognise(tampered, "member") is None
    forged = signing.dumps(payload, key="not the secret key", salt="twostep.device_cookie")
    assert devices.recognise(forged, "member") is None
    other_purpose = signing.dumps(payload, salt="another purpose")
    assert devices.recognise(other_purpose, "member") is None
    for junk in ("", "x", "a" * 5000, None):
        assert devices.recognise(junk, "member") is None


def test_a_device_cookie_expires(member, settings):
    value = signed_in_browser().cookies[COOKIE].value
    settings.TWOSTEP_DEVICE_COOKIE_DAYS = 0
    assert devices.recognise(value, "member") is None


def test_a_device_cookie_outlives_a_secret_key_rotation(member, settings):
    value = signed_in_browser().cookies[COOKIE].value
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a brand new secret key " * 3, [settings.SECRET_KEY]
    assert devices.recognise(value, "member") is not None
    settings.SECRET_KEY_FALLBACKS = []
    assert devices.recognise(value, "member") is None


# The gate answers 503 with Retry-After, on the pages and in the API ---------------------------

def test_the_login_page_says_to_come_back_when_hashing_is_full(member, small_gate):
    client = Client()
    with slot_taken(small_gate):
        response = client.post("/login", {"login": "member", "password": PASSWORD})
    assert response.status_code == 503 and response["Retry-After"] == "2"
    page = response.content.decode()
    assert "Many people are signing in right now" in page and "try again in 2 seconds" in page
    assert 'value="member"' in page and PASSWORD not in page  # the login stays typed
    assert COOKIE not in response.cookies and "_auth_user_id" not in client.session
    assert not Throttle.objects.exists()  # refused before anything was counted


def test_the_busy_page_speaks_russian(member, small_gate):
    client = Client()
    client.cookies["twostep_language"] = "ru"
    with slot_taken(small_gate):
        response = client.post("/login", {"login": "member", "password": PASSWORD})
    assert response.status_code == 503
    assert "Сейчас входит очень много людей" in response.content.decode()


def busy_count(lane: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("twostep_password_checks_busy_total", {"lane": lane}) or 0.0


def test_the_api_answers_busy_with_retry_after(api, member, small_gate):
    before = busy_count("normal")
    with slot_taken(small_gate):
        response = api.login("member")
    assert busy_count("normal") == before + 1
    body = assert_error(response, 503, "busy")
    assert body["retry_after"] == 2 and response["Retry-After"] == "2"
    assert api.stage() == "anonymous"
    assert api.login("member").status_code == 200  # the slot is free again


def test_the_login_route_documents_busy(api):
    responses = api.get("/openapi.json").json()["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "`busy`" in responses["503"]["description"]


def test_an_attempt_that_timed_out_in_the_queue_is_given_back(member, settings, small_gate):
    settings.TWOSTEP_HASH_QUEUE_LENGTH = 1
    settings.TWOSTEP_HASH_QUEUE_TIMEOUT = 0.05
    gate = admission.gate()
    with slot_taken(gate), pytest.raises(admission.Busy):
        signin.check_password("member", "a wrong guess", ORIGIN)
    assert gate.state()["refused"] == 1
    # The reserved attempt was given back: neither key keeps a failure or a pending attempt.
    assert list(Throttle.objects.filter(failures__gt=0)) == []
    assert list(Throttle.objects.filter(pending__gt=0)) == []


# Members: the priority lane and a throttle of their own ---------------------------------------

def test_a_member_with_a_device_cookie_waits_for_the_slot_and_gets_in(member, small_gate):
    browser = signed_in_browser()
    browser.post("/logout")
    stranger = Client()
    with slot_taken(small_gate, free_after=0.3):
        assert web_login(stranger).status_code == 503
        response = web_login(browser)
    assert response.status_code == 302 and "_auth_user_id" in browser.session
    assert small_gate.state()["queued"] >= 1


def test_a_cookie_for_another_login_gets_no_priority(make_user, member, small_gate):
    make_user("other")
    browser = signed_in_browser("other")
    browser.post("/logout")
    with slot_taken(small_gate):
        assert web_login(browser, "member").status_code == 503


def test_strangers_locking_the_address_do_not_lock_out_the_members_device(member, settings):
    settings.TWOSTEP_ADDRESS_FREE_ATTEMPTS = 3
    settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS = 3
    browser = signed_in_browser()
    browser.post("/logout")
    stranger = Client()
    for _ in range(4):
        web_login(stranger, password="a stranger's guess")
    assert web_login(stranger).status_code == 429  # the address and the login there are blocked
    response = web_login(browser)  # the same address, with the device cookie
    assert response.status_code == 302 and "_auth_user_id" in browser.session


def test_a_device_cookie_has_its_own_limit(member, settings):
    settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS = 2
    value = signed_in_browser().cookies[COOKIE].value
    device = devices.recognise(value, "member")
    for _ in range(3):
        with pytest.raises(signin.InvalidCredentials):
            signin.check_password("member", "my own typo", ORIGIN, device_cookie=value)
    with pytest.raises(signin.ServiceError) as blocked:
        signin.check_password("member", PASSWORD, Origin(ip="198.51.100.7", user_agent=""), device_cookie=value)
    assert blocked.value.code == "throttled"
    assert Throttle.objects.filter(key=f"dev:{device.id}").exists()
    # Without the cookie, from elsewhere, the member is another stranger: not blocked by the device.
    assert signin.check_password("member", PASSWORD, Origin(ip="198.51.100.7", user_agent="")).user == member
