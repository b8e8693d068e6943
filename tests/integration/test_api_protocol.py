"""API: what a hostile or careless HTTP client meets — methods, media types, HEAD, a lost database."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError
from django.test import Client

from .test_api_support import BASE, api_fixture, assert_error  # noqa: F401

pytestmark = pytest.mark.django_db


def test_multipart_body_is_415_without_a_traceback(api, member, caplog):
    token = api.csrf_token()
    with caplog.at_level(logging.INFO):
        response = api.client.post(f"{BASE}/auth/login", {"login": "member", "password": "x"},
                                   headers={"X-CSRFToken": token})  # the test client sends multipart
    assert response["Content-Type"].startswith("application/json")
    assert_error(response, 415, "unsupported_media_type")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_json_with_a_charset_is_json(api, member):
    response = api.post("/auth/login", {"login": "member", "password": "wrong"},
                        content_type="application/json; charset=utf-8")
    assert_error(response, 401, "invalid_credentials")


def test_trace_on_the_openapi_document_is_405(api):
    response = api.client.generic("TRACE", f"{BASE}/openapi.json")
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "PUT", "OPTIONS", "TRACE"])
def test_undeclared_method_is_405_before_the_csrf_check(api, method):
    # No CSRF token at all: the method is wrong for the address whatever the token.
    response = api.send(method, "/auth/login", {"login": "x", "password": "y"}, csrf=False)
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


def test_declared_methods_still_need_the_csrf_token(api):
    response = api.send("DELETE", "/me/trusted-browsers", csrf=False)
    assert_error(response, 403, "csrf_failed")


def test_head_answers_like_get_without_a_body(api):
    get = api.get("/auth/session")
    head = api.client.head(f"{BASE}/auth/session")
    assert head.status_code == 200 and head.content == b""
    assert head["Content-Type"] == get["Content-Type"]
    assert int(head["Content-Length"]) == len(get.content)


def test_head_on_a_post_route_is_405_without_a_body(api):
    response = api.client.head(f"{BASE}/auth/login")
    assert response.status_code == 405 and response.content == b"" and response["Allow"] == "POST"


def _database_down(monkeypatch):
    from django.db import connection

    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    monkeypatch.setattr(connection, "cursor", refuse)


def test_api_answers_json_503_when_the_database_is_down(member, monkeypatch, caplog):
    client = Client(raise_request_exception=False)
    client.force_login(member)  # a session to look up: the failure comes from the session middleware
    _database_down(monkeypatch)
    with caplog.at_level(logging.INFO):
        for path in ("/auth/session", "/me/two-factor", "/account/users"):
            response = client.get(f"{BASE}{path}")
            assert response.status_code == 503, (path, response.content)
            assert response.json()["error"] == "service_unavailable"
            assert response["Retry-After"].isdigit()
    assert not [r for r in caplog.records if r.exc_info], "a database outage logs one line, no traceback"


def test_api_answers_json_503_when_the_database_fails_inside_a_route(api, member, monkeypatch):
    api.csrf_token()
    _database_down(monkeypatch)
    response = api.login("member")
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"].isdigit()


def test_pages_answer_a_plain_503_when_the_database_is_down(member, monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(member)
    _database_down(monkeypatch)
    response = client.get("/security")
    assert response.status_code == 503 and response["Retry-After"].isdigit()
    assert response["Content-Type"].startswith("text/html")
    assert b"Briefly unavailable" in response.content


def test_other_server_errors_on_the_api_are_json(member, monkeypatch):
    from twostep.web import middleware

    def broken(request):
        raise RuntimeError("a bug")

    monkeypatch.setattr(middleware.signin_state, "end_if_expired", broken)
    client = Client(raise_request_exception=False)
    response = client.get(f"{BASE}/auth/session")
    assert response.status_code == 500 and response.json()["error"] == "server_error"
