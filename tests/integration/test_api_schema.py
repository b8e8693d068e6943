"""The OpenAPI document says exactly what the API takes and answers (what schemathesis checks).

Each test holds one promise of the document against the server: a value the schema allows is
taken, one it refuses is refused, and a status the server answers is declared.
"""

from __future__ import annotations

import jsonschema_rs
import pytest

from twostep.services import accounts
from twostep.services.audit import Type

from ..conftest import ORIGIN, PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def _document(api) -> dict:
    return api.get("/openapi.json").json()


def _operation(api, path: str, method: str) -> dict:
    return _document(api)["paths"][f"/api/v1{path}"][method]


def _body_schema(api, name: str) -> dict:
    return _document(api)["components"]["schemas"][name]


def _query_schema(api, path: str, name: str) -> dict:
    parameters = _operation(api, path, "get")["parameters"]
    return next(p["schema"] for p in parameters if p["name"] == name)


def _allows(schema: dict, value) -> bool:
    return jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(value)


@pytest.mark.parametrize("value", [
    "2026-01-31", "2026-01-31T08:00:00Z", "2026-01-31t08:00:00.1234567+05:30", "2026-01-31T08:00",
    "2026-01-31T08:00:00.25", "20260131", "2026-W05", "2026-01-31 08:00", "2026-02-30", "0" * 40,
    "2026-01-31T23:59:60Z",
])
def test_since_takes_exactly_what_the_schema_allows(api, admin, value):
    api.sign_in("admin")
    documented = _allows(_query_schema(api, "/account/security-events", "since"), value)
    response = api.get("/account/security-events", {"since": value})
    assert (response.status_code == 200) == documented, (value, documented, response.content)


def test_event_type_lists_the_types(api, admin):
    api.sign_in("admin")
    assert set(_query_schema(api, "/account/security-events", "type")["enum"]) == {"", *Type.values}
    assert api.get("/account/security-events", {"type": "sign_in"}).status_code == 200
    body = assert_error(api.get("/account/security-events", {"type": "sign_in "}), 422, "invalid_input")
    assert "type" in body["fields"]


@pytest.mark.parametrize("path", ["/account/security-events", "/account/users", "/me/security-events"])
def test_an_unknown_query_parameter_is_named(api, admin, path):
    api.sign_in("admin")
    body = assert_error(api.get(path, {"limt": "5"}), 422, "invalid_input")
    assert "limt" in body["fields"] and "limt" in body["message"]


@pytest.mark.parametrize("reason", ["   ", "\t\n", "\u3000", "x" * 501])
def test_a_blank_or_long_reason_is_refused_as_the_schema_says(api, admin, make_user, reason):
    user = make_user("someone")
    api.sign_in("admin")
    assert not _allows(_body_schema(api, "AdminDisableIn"), {"reason": reason, "password": PASSWORD})
    body = assert_error(api.post(f"/account/users/{user.pk}/two-factor/disable",
                                 {"reason": reason, "password": PASSWORD}), 422, "invalid_input")
    assert "reason" in body["fields"]


def test_a_reason_with_words_fits_the_schema(api):
    assert _allows(_body_schema(api, "AdminDisableIn"), {"reason": "  lost phone ", "password": "x"})


@pytest.mark.parametrize(("body", "allowed"), [
    ({}, False),
    ({"require_second_admin": None}, False),
    ({"allow_passkeys": None}, False),
    ({"require_two_factor_from": None}, True),
    ({"remember_browser_days": 7}, True),
])
def test_policy_takes_what_the_schema_allows(api, admin, body, allowed):
    api.sign_in("admin")
    assert _allows(_body_schema(api, "PolicyIn"), body) == allowed
    response = api.put("/account/policy", body)
    assert (response.status_code == 200) == allowed, response.content


def test_a_past_policy_date_is_a_documented_422(api, admin):
    api.sign_in("admin")
    body = {"require_two_factor_from": "2000-01-01"}
    assert _allows(_body_schema(api, "PolicyIn"), body)
    assert_error(api.put("/account/policy", body), 422, "invalid_input")
    assert "422" in _operation(api, "/account/policy", "put")["responses"]


@pytest.mark.parametrize(("body", "allowed"), [
    ({"method": "totp"}, False),
    ({"method": "totp", "code": None}, False),
    ({"method": "webauthn", "code": "123456"}, False),
    ({"method": "totp", "code": "123456"}, True),
    ({"method": "webauthn", "credential": {}}, True),
])
def test_second_factor_needs_the_proof_its_method_takes(api, member, body, allowed):
    assert _allows(_body_schema(api, "SecondFactorIn"), body) == allowed
    api.login("member")  # no 2FA: signed in at once, so a proof that fits meets no pending step
    response = api.post("/auth/second-factor", body)
    assert (response.status_code != 422) == allowed, response.content


def test_an_id_that_is_no_number_is_a_declared_404(api, admin, enroll):
    enrolled = enroll(admin)
    api.sign_in("admin", enrolled=enrolled)
    assert_error(api.post("/me/authenticators/null,null/confirm", {"code": "123456"}), 404, "not_found")
    assert "404" in _operation(api, "/me/authenticators/{id}/confirm", "post")["responses"]


def test_a_switch_off_waiting_for_a_second_admin_is_a_declared_202(api, admin, make_user, enroll):
    enrolled = enroll(admin)
    make_user("second-admin", is_admin=True)
    accounts.set_require_second_admin(admin, True, ORIGIN)
    user = make_user("someone")
    enroll(user)
    api.sign_in("admin", enrolled=enrolled)
    response = api.post(f"/account/users/{user.pk}/two-factor/disable",
                        {"reason": "lost phone", "password": PASSWORD})
    assert_error(response, 202, "approval_pending")
    assert "202" in _operation(api, "/account/users/{id}/two-factor/disable", "post")["responses"]


def test_passkey_options_declare_the_body_they_read(api, make_api):
    body = _operation(api, "/auth/webauthn/options", "post")["requestBody"]
    assert body["required"] is False
    assert body["content"]["application/json"]["schema"]["properties"]["passkey"]["type"] == "boolean"
    assert api.post("/auth/webauthn/options", {"passkey": True}).status_code == 200
    assert_error(make_api().post("/auth/webauthn/options", {"passkey": "yes"}), 422, "invalid_input")
