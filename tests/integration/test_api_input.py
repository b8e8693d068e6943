"""API: odd input gets a readable 4xx, never a 500; every answer has the error shape; OpenAPI."""

from __future__ import annotations

import json

import pytest

from ..conftest import PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

POST_ROUTES = [
    "/auth/login", "/auth/second-factor", "/auth/logout", "/me/two-factor/setup", "/me/two-factor/confirm",
    "/me/backup-codes", "/me/two-factor/disable", "/account/users/2/two-factor/disable",
]
HOSTILE = [
    b"", b"null", b"[]", b"[1, 2]", b'"text"', b"42", b"true", b"{", b"{'login': 'x'}", b"login=x&password=y",
    b"\xff\xfe\x00", b"\x00" * 20, "[" * 100_000, b'{"login": NaN, "password": Infinity}',
    b'{"login": 1e999}', b'{"login": "\\ud800", "password": "\\udfff"}', b'{"login": {"$ne": null}}',
    b'{"login": ["member"], "password": ["x"]}', b'{"login": null, "password": null}',
    b'{"login": "member\\u0000", "password": "x"}', b'{"code": 123456, "method": "totp"}',
    b'{"code": "123456", "method": "sms"}', b'{"code": "123456", "method": null}',
    b'{"password": true, "code": false, "reason": 7}', b'{"reason": "' + b"r" * 5000 + b'", "password": "x"}',
    ('{"login": "' + "\u0431" * 10_000 + '", "password": "x"}').encode(),
    b'{"password": "' + b"p" * 100_000 + b'", "code": "1"}',
    '{"login": "мембер", "password": "пароль", "code": "١٢٣٤٥٦", "method": "totp"}'.encode(),
    b'{"login": "member", "password": "x", "login": "admin"}',
]


@pytest.mark.parametrize("path", POST_ROUTES)
def test_hostile_bodies_never_get_a_server_error(make_api, admin, enroll, clock, path):
    enrolled = enroll(admin)
    for number, body in enumerate(HOSTILE):
        api = make_api()
        if path.startswith(("/me", "/account")):
            api.sign_in("admin", enrolled=enrolled)
            clock.advance(30)  # the next sign-in needs a fresh app code
        response = api.post(path, raw=body)
        assert response.status_code < 500, (number, body[:40], response.status_code, response.content)
        if response.status_code >= 400:
            assert_error(response, response.status_code, response.json()["error"])


def test_missing_field_names_it(api):
    body = assert_error(api.post("/auth/login", {"login": "member"}), 422, "invalid_input")
    assert body["message"] == "password is required."
    assert body["fields"] == {"password": "password is required."}


def test_wrong_type_names_field_and_problem(api):
    body = assert_error(api.post("/auth/login", {"login": 123, "password": None}), 422, "invalid_input")
    assert "login must be a string." in body["message"] and "password must be a string." in body["message"]


def test_wrong_method_value_lists_choices(api):
    body = assert_error(api.post("/auth/second-factor", {"method": "sms", "code": "1"}), 422, "invalid_input")
    assert "method must be one of 'totp', 'backup_code', 'webauthn' or 'recovery_pass'." == body["message"]


def test_overlong_field_says_the_limit(api):
    body = assert_error(api.post("/auth/login", {"login": "x" * 151, "password": "y"}), 422, "invalid_input")
    assert body["message"] == "login must be at most 150 characters long."


def test_empty_field_says_so(api):
    body = assert_error(api.post("/auth/login", {"login": "", "password": "y"}), 422, "invalid_input")
    assert body["message"] == "login must not be empty."


def test_nul_character_is_refused(api):
    body = assert_error(api.post("/auth/login", {"login": "mem\x00ber", "password": "y"}), 422, "invalid_input")
    assert body["message"].startswith("login:")


def test_lone_surrogate_is_refused(api):
    raw = b'{"login": "member", "password": "\\ud800"}'
    body = assert_error(api.post("/auth/login", raw=raw), 422, "invalid_input")
    assert body["message"] == "password must be valid Unicode text."


def test_malformed_json_says_where(api):
    body = assert_error(api.post("/auth/login", raw=b'{"login": "member",}'), 422, "invalid_input")
    assert "not valid JSON" in body["message"] and "line 1" in body["message"]


def test_form_encoded_body_is_refused(api):
    response = api.post("/auth/login", raw="login=member&password=x",
                        content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_body_that_is_not_an_object_is_refused(api):
    body = assert_error(api.post("/auth/login", raw=b"[]"), 422, "invalid_input")
    assert body["message"] == "The request body must be a JSON object."


def test_oversized_body_is_refused(api):
    raw = json.dumps({"login": "member", "password": "x" * 3_000_000})
    assert_error(api.post("/auth/login", raw=raw), 413, "request_too_large")


def test_oversized_form_body_is_refused_unread(api):
    raw = "login=member&password=" + "x" * 3_000_000
    response = api.post("/auth/login", raw=raw, content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_unicode_login_is_just_wrong(api, member):
    assert_error(api.login("ｍｅｍｂｅｒ"), 401, "invalid_credentials")
    assert_error(api.login("мембер", "пароль"), 401, "invalid_credentials")


def test_extra_fields_are_ignored(api, member):
    response = api.post("/auth/login", {"login": "member", "password": PASSWORD, "is_admin": True})
    assert response.json() == {"stage": "authenticated"}


def test_messages_follow_the_request_language(api):
    response = api.post("/auth/login", {"login": "nobody", "password": "x"}, HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 401 and response["Content-Language"] == "ru"


# Every answer has the API's shape and is never cached ----------------------------------------

def test_unknown_address_is_json_not_found(api):
    assert_error(api.get("/nothing/here"), 404, "not_found")
    assert_error(api.get("/"), 404, "not_found")
    assert_error(api.post("/nothing/here", {}), 404, "not_found")


def test_wrong_method_is_json_method_not_allowed(api):
    response = api.send("DELETE", "/auth/session")
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/auth/session", "/me/two-factor", "/nothing", "/openapi.json"])
def test_answers_are_never_cached(api, path):
    assert "no-store" in api.get(path)["Cache-Control"]


def test_error_answers_are_never_cached(api):
    response = api.post("/auth/login", {"login": "x", "password": "y"}, csrf=False)
    assert response.status_code == 403 and "no-store" in response["Cache-Control"]


# OpenAPI ------------------------------------------------------------------------------------

EXPECTED_PATHS = {
    "/api/v1/auth/session": {"get"},
    "/api/v1/auth/login": {"post"},
    "/api/v1/auth/second-factor": {"post"},
    "/api/v1/auth/logout": {"post"},
    "/api/v1/me/two-factor": {"get"},
    "/api/v1/me/two-factor/setup": {"post"},
    "/api/v1/me/two-factor/confirm": {"post"},
    "/api/v1/me/backup-codes": {"post"},
    "/api/v1/me/backup-codes/saved": {"post"},
    "/api/v1/me/apps": {"get"},
    "/api/v1/me/apps/{client_id}": {"delete"},
    "/api/v1/me/two-factor/disable": {"post"},
    "/api/v1/me/security-events": {"get"},
    "/api/v1/me/sessions": {"get"},
    "/api/v1/me/sessions/{id}": {"delete"},
    "/api/v1/me/sessions/end-others": {"post"},
    "/api/v1/me/trusted-browsers": {"get", "delete"},
    "/api/v1/me/trusted-browsers/{id}": {"delete"},
    "/api/v1/account/users": {"get"},
    "/api/v1/account/users/{id}/two-factor/disable": {"post"},
    "/api/v1/account/policy": {"put"},
    # passwords and admin recovery (api/recovery.py)
    "/api/v1/auth/password-reset": {"post"},
    "/api/v1/auth/password-reset/confirm": {"post"},
    "/api/v1/me/password": {"post"},
    "/api/v1/account/users/{id}/recovery-pass": {"post"},
    "/api/v1/account/recovery-requests": {"get"},
    "/api/v1/account/recovery-requests/{id}/approve": {"post"},
    "/api/v1/account/security-events": {"get"},
    "/api/v1/me/authenticators": {"get"},
    "/api/v1/me/authenticators/totp": {"post"},
    "/api/v1/me/authenticators/webauthn/options": {"post"},
    "/api/v1/me/authenticators/webauthn": {"post"},
    "/api/v1/me/authenticators/{id}/confirm": {"post"},
    "/api/v1/me/authenticators/{id}": {"patch", "delete"},
    "/api/v1/auth/webauthn/options": {"post"},
    "/api/v1/auth/passkey": {"post"},
}


def test_openapi_document_lists_every_route(api):
    response = api.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "twostep" and document["info"]["version"] == "1"
    assert {path: set(ops) for path, ops in document["paths"].items()} == EXPECTED_PATHS


def test_openapi_documents_errors_and_csrf(api):
    paths = api.get("/openapi.json").json()["paths"]
    login = paths["/api/v1/auth/login"]["post"]
    assert {"200", "401", "403", "422", "429"} <= set(login["responses"])
    assert "invalid_credentials" in login["responses"]["401"]["description"]
    assert "csrf_failed" in login["responses"]["403"]["description"]
    assert any(p["name"] == "X-CSRFToken" for p in login["parameters"])
    disable = paths["/api/v1/me/two-factor/disable"]["post"]
    assert "invalid_code" in disable["responses"]["400"]["description"]
    assert "two_factor_required_by_account" in disable["responses"]["403"]["description"]
    assert disable["security"] == [{"SignedIn": []}]
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "200" in operation["responses"], (method, path)


def test_docs_page_loads(api):
    response = api.get("/docs")
    assert response.status_code == 200 and b"openapi.json" in response.content
