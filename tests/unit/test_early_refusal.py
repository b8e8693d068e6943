"""The early refusal's decision (early_refusal.py): which requests it answers in front of Django.

A fake gate stands in for the hashing gate; the application behind is a stub that says it was
reached. The answers' pages and headers are tests/integration/test_early_refusal.py's.
"""

from __future__ import annotations

import logging

import pytest
from django.core import signing

from twostep.core.admission import Gate
from twostep.early_refusal import EarlyRefusal, RefusalLog
from twostep.services import devices


class FakeGate:
    """`refusal` answers what the test set: None (a slot or a place in the lane) or a wait."""

    def __init__(self, wait=None):
        self.wait = wait
        self.asked = []

    def refusal(self, *, priority):
        self.asked.append(priority)
        return self.wait


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"django"]


def environ(method="POST", path="/login", cookie=None):
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "testserver", "SERVER_PORT": "80",
           "wsgi.url_scheme": "http", "REMOTE_ADDR": "192.0.2.1"}
    if cookie is not None:
        env["HTTP_COOKIE"] = cookie
    return env


def layer(wait=None) -> tuple[EarlyRefusal, FakeGate]:
    gate = FakeGate(wait)
    return EarlyRefusal(application, gate=lambda: gate), gate


def device_cookie(login="member") -> str:
    return f"{devices.COOKIE_NAME}={devices.issue(None, login)}"


@pytest.mark.parametrize("path", ["/login", "/api/v1/auth/login"])
def test_a_sign_in_without_a_device_cookie_is_refused_when_the_lane_is_full(path):
    early, gate = layer(wait=4)
    assert early.retry_after(environ(path=path)) == 4
    assert gate.asked == [False]  # asked as a stranger: the normal lane


@pytest.mark.parametrize("path", ["/login", "/api/v1/auth/login"])
def test_never_refused_while_the_gate_would_take_it(path):
    early, _ = layer(wait=None)
    assert early.retry_after(environ(path=path)) is None
    assert early.retry_after(environ(path=path, cookie="csrftoken=abc")) is None


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/login"), ("HEAD", "/login"), ("POST", "/login/code"), ("POST", "/login/backup-code"),
    ("POST", "/api/v1/auth/second-factor"), ("POST", "/security/confirm-password"), ("POST", "/logout"),
    ("GET", "/api/v1/auth/session"), ("POST", "/login/"), ("POST", "/api/v1/auth/login/x"),
])
def test_nothing_but_the_two_sign_in_posts_is_looked_at(method, path):
    early, gate = layer(wait=9)
    assert early.retry_after(environ(method, path)) is None
    assert gate.asked == []  # not even the gate's lock


def test_the_paths_are_found_without_the_script_prefix_the_thread_last_served():
    from django.urls import set_script_prefix

    set_script_prefix("/auth/")  # as Django leaves it after serving a request under /auth
    try:
        early, _ = layer(wait=4)
        assert early.retry_after(environ(path="/login")) == 4
        assert early.retry_after(environ(path="/api/v1/auth/login")) == 4
    finally:
        set_script_prefix("/")


def test_a_browser_with_a_device_cookie_goes_on_to_django():
    early, _ = layer(wait=4)
    cookie = device_cookie("member")
    assert early.retry_after(environ(cookie=cookie)) is None
    assert early.retry_after(environ(path="/api/v1/auth/login", cookie=f"csrftoken=x; {cookie}; a=b")) is None


def test_a_forged_expired_or_foreign_device_cookie_is_a_stranger(settings):
    early, _ = layer(wait=4)
    value = devices.issue(None, "member")
    altered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    other_purpose = signing.dumps({"d": [["x" * 32, "id"]]}, salt="twostep.other")
    for cookie in (f"{devices.COOKIE_NAME}={altered}", f"{devices.COOKIE_NAME}={other_purpose}",
                   f"{devices.COOKIE_NAME}=", f"{devices.COOKIE_NAME}=garbage", "twostep_session=abc",
                   f"{devices.COOKIE_NAME}={'x' * 5000}"):
        assert early.retry_after(environ(cookie=cookie)) == 4, cookie
    settings.TWOSTEP_DEVICE_COOKIE_DAYS = 0  # every cookie older than now: expired
    assert early.retry_after(environ(cookie=f"{devices.COOKIE_NAME}={value}")) == 4


def test_a_cookie_signed_under_a_former_key_still_counts(settings):
    value = devices.issue(None, "member")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a new key " * 6
    early, _ = layer(wait=4)
    assert early.retry_after(environ(cookie=f"{devices.COOKIE_NAME}={value}")) is None


def test_with_the_real_gate_it_refuses_only_when_every_slot_is_taken_and_the_lane_is_full():
    real = Gate(1, queue_length=0, wait=2.0, priority_wait=10.0)
    early = EarlyRefusal(application, gate=lambda: real)
    assert early.retry_after(environ()) is None  # idle
    with real.admit(priority=True):
        # This thread holds the slot; the gate lets a thread through that already holds one,
        # so ask from another thread, as another request would be.
        import threading

        seen = []
        thread = threading.Thread(target=lambda: seen.append(early.retry_after(environ())))
        thread.start()
        thread.join(5)
        assert seen == [2]
    assert early.retry_after(environ()) is None  # the slot is free again


def test_the_log_says_it_once_then_at_most_once_an_interval_with_the_count(caplog):
    now = [100.0]
    refusals = RefusalLog(interval=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="twostep.admission"):
        refusals.note("page", 3)
        for n in range(499):  # 250 pages, 249 API calls, in 5 s
            now[0] += 0.01
            refusals.note("api" if n % 2 else "page", 3)
        assert len(caplog.records) == 1
        now[0] = 111.0
        refusals.note("page", 5)
    assert len(caplog.records) == 2
    assert "in the last 0 s: 1 (pages 1, API 0)" in caplog.records[0].getMessage()
    assert "in the last 11 s: 500 (pages 251, API 249)" in caplog.records[1].getMessage()
    assert "come back in 5 s" in caplog.records[1].getMessage()
