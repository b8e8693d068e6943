"""The early refusal through the WSGI application `twostep serve` runs (config/wsgi.py).

Requests go to `config.wsgi.application` itself, not through Django's test client (which would
skip the layer in front of Django): with the CSRF check on, as from a browser.
"""

from __future__ import annotations

import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, RequestFactory
from django.utils.crypto import get_random_string

from config.wsgi import application
from twostep.models import Throttle
from twostep.services import devices

from ..conftest import PASSWORD
from .test_admission import slot_taken, small_gate_fixture  # noqa: F401
from .test_api_support import api_fixture, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


# Headers every page answer carries, whatever the page.
SECURITY_HEADERS = ("Content-Security-Policy", "Permissions-Policy", "X-Frame-Options", "X-Content-Type-Options",
                    "Referrer-Policy", "Cross-Origin-Opener-Policy", "Cache-Control")


class Answer:
    def __init__(self, status: str, headers: list, body: bytes):
        self.status = int(status.split()[0])
        self.cookies = [value.strip().split("=", 1)[0] for name, value in headers if name.lower() == "set-cookie"]
        self.headers = {}
        for name, value in headers:
            self.headers.setdefault(name.lower(), value)
        self.body = body

    def __getitem__(self, name):
        return self.headers[name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode()


def call(request) -> Answer:
    """Run one request (a RequestFactory request) through the served WSGI application."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers

    # As Django's test client does: the test's database connection stays open after the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = application(request.environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return Answer(seen["status"], seen["headers"], body)


CSRF = get_random_string(32)  # the cookie's secret, also accepted as the form's token


def cookies(*extra: str) -> str:
    return "; ".join([f"csrftoken={CSRF}", *extra])


def page_post(login="member", password=PASSWORD, *, cookie="", **headers):
    return RequestFactory().post("/login", {"csrfmiddlewaretoken": CSRF, "login": login, "password": password},
                                 HTTP_COOKIE=cookies(*filter(None, [cookie])), **headers)


def api_post(login="member", password=PASSWORD, *, cookie="", **headers):
    return RequestFactory().post("/api/v1/auth/login", json.dumps({"login": login, "password": password}),
                                 content_type="application/json", HTTP_X_CSRFTOKEN=CSRF,
                                 HTTP_COOKIE=cookies(*filter(None, [cookie])), **headers)


def device_cookie(login="member") -> str:
    """The cookie a full sign-in as `login` gave this browser."""
    response = Client().post("/login", {"login": login, "password": PASSWORD})
    assert response.status_code == 302
    return f"{devices.COOKIE_NAME}={response.cookies[devices.COOKIE_NAME].value}"


def early_count(transport: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("twostep_sign_ins_refused_early_total", {"transport": transport}) or 0.0


def test_a_stranger_is_refused_in_english_with_retry_after_and_the_pages_headers(member, small_gate):
    before = early_count("page")
    with slot_taken(small_gate):
        answer = call(page_post(HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9"))
    assert answer.status == 503 and answer["Retry-After"] == "2"
    assert answer["Content-Type"].startswith("text/html") and answer["Content-Language"] == "en"
    assert "Many people are signing in right now, so your password was not checked yet." in answer.text
    assert "Please try again in 2 seconds." in answer.text and 'href="/login"' in answer.text
    assert PASSWORD not in answer.text
    assert early_count("page") == before + 1
    assert not Throttle.objects.exists()  # nothing was checked or counted
    normal = call(RequestFactory().get("/login"))  # an ordinary page of the same application
    assert normal.status == 200
    for name in SECURITY_HEADERS:
        assert answer[name] == normal[name], name
    assert answer["X-Request-ID"]


def test_a_stranger_is_refused_in_russian_by_accept_language_or_the_language_cookie(member, small_gate):
    with slot_taken(small_gate):
        by_header = call(page_post(HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5"))
        by_cookie = call(page_post(cookie="twostep_language=ru", HTTP_ACCEPT_LANGUAGE="en"))
    for answer in (by_header, by_cookie):
        assert answer.status == 503 and answer["Retry-After"] == "2" and answer["Content-Language"] == "ru"
        assert '<html lang="ru">' in answer.text
        assert "Сейчас входит очень много людей, поэтому пароль ещё не проверен." in answer.text
        assert "Попробуйте ещё раз через 2 секунды." in answer.text and "Назад ко входу" in answer.text


def test_the_way_back_keeps_where_the_sign_in_was_going(member, small_gate):
    request = RequestFactory().post("/login?next=/security&x=%22%3E", {"login": "member"},
                                    HTTP_COOKIE=cookies())
    with slot_taken(small_gate):
        answer = call(request)
    assert answer.status == 503
    assert 'href="/login?next=/security&amp;x=%22%3E"' in answer.text  # escaped, as typed


def test_a_member_with_a_device_cookie_passes_and_signs_in(member, small_gate):
    cookie = device_cookie()
    with slot_taken(small_gate, free_after=0.3):
        assert call(page_post()).status == 503  # a stranger at that moment
        answer = call(page_post(cookie=cookie))
    assert answer.status == 302 and answer["Location"] == "/security"
    assert "twostep_session" in answer.cookies  # signed in


def test_a_forged_device_cookie_is_refused(member, small_gate):
    value = device_cookie().split("=", 1)[1]
    with slot_taken(small_gate):
        answer = call(page_post(cookie=f"{devices.COOKIE_NAME}={value[:-3]}xyz"))
    assert answer.status == 503


def test_never_refused_while_the_server_is_idle(member, small_gate):
    before = early_count("page") + early_count("api")
    wrong = call(page_post(password="not the password"))
    assert wrong.status == 401 and "Many people" not in wrong.text  # checked, and wrong
    assert call(page_post()).status == 302
    assert call(api_post(password="not the password")).status == 401
    assert call(api_post()).status == 200
    assert early_count("page") + early_count("api") == before


def test_other_requests_reach_django_while_the_gate_is_full(member, small_gate):
    with slot_taken(small_gate):
        assert call(RequestFactory().get("/login")).status == 200
        assert call(RequestFactory().get("/api/v1/auth/session")).status == 200
        code = RequestFactory().post("/login/code", {"csrfmiddlewaretoken": CSRF, "code": "123456"},
                                     HTTP_COOKIE=cookies())
        assert call(code).status != 503  # no sign-in held: Django's own answer, not the gate's


def test_the_api_gets_the_same_json_busy_as_from_the_gate(api, member, small_gate):
    before = early_count("api")
    with slot_taken(small_gate):
        early = call(api_post(HTTP_ACCEPT_LANGUAGE="en"))
        inside = api.login("member")  # the test client skips the early layer: the gate's own answer
        russian = call(api_post(HTTP_ACCEPT_LANGUAGE="ru"))
    assert early.status == inside.status_code == 503
    assert early["Content-Type"] == inside["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(early.body) == inside.json() == {
        "error": "busy", "message": "Many people are signing in right now. Please try again in a few seconds.",
        "retry_after": 2}
    assert early["Retry-After"] == inside["Retry-After"] == "2"
    assert early["Cache-Control"] == inside["Cache-Control"]
    assert "Content-Security-Policy" not in early.headers  # the API sets its own headers, as always
    assert json.loads(russian.body)["message"].startswith("Сейчас входит очень много людей.")
    assert early_count("api") == before + 2
