"""What the API tests share: a JSON client that plays by the CSRF rules. No tests here.

Test modules import the fixtures: `from .test_api_support import api_fixture, make_api_fixture`.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from ..conftest import PASSWORD

BASE = "/api/v1"


class Api:
    """A browser-like API client: session cookie, CSRF cookie read back into X-CSRFToken."""

    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True)

    def csrf_token(self) -> str:
        if "csrftoken" not in self.client.cookies:
            self.client.get(f"{BASE}/auth/session")
        return self.client.cookies["csrftoken"].value

    def session_cookie(self) -> str | None:
        cookie = self.client.cookies.get("twostep_session")
        return cookie.value if cookie is not None and cookie.value else None

    def get(self, path: str, params=None, **extra):
        return self.client.get(f"{BASE}{path}", params or {}, **extra)

    def send(self, method: str, path: str, body=None, *, raw: bytes | str | None = None,
             csrf: bool | str = True, content_type: str = "application/json", **extra):
        """Send `body` as JSON (or `raw` as it is) with the CSRF header unless told otherwise."""
        headers = dict(extra.pop("headers", {}))
        if csrf is True:
            headers["X-CSRFToken"] = self.csrf_token()
        elif csrf:
            headers["X-CSRFToken"] = csrf
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        call = getattr(self.client, method.lower())
        return call(f"{BASE}{path}", data=data, content_type=content_type, headers=headers, **extra)

    def post(self, path: str, body=None, **kwargs):
        return self.send("POST", path, body, **kwargs)

    def put(self, path: str, body=None, **kwargs):
        return self.send("PUT", path, body, **kwargs)

    # The steps of a sign-in ---------------------------------------------------------------

    def login(self, login: str, password: str = PASSWORD):
        return self.post("/auth/login", {"login": login, "password": password})

    def second_factor(self, code: str, method: str = "totp"):
        return self.post("/auth/second-factor", {"method": method, "code": code})

    def sign_in(self, login: str, *, enrolled=None):
        """Sign in fully (with an app code when `enrolled` is given); fail loudly otherwise."""
        response = self.login(login)
        assert response.status_code == 200, response.content
        if enrolled is not None:
            assert response.json()["stage"] == "second_factor"
            response = self.second_factor(enrolled.code())
            assert response.status_code == 200, response.content
        assert response.json()["stage"] == "authenticated"
        return self

    def stage(self) -> str:
        return self.get("/auth/session").json()["stage"]


def assert_error(response, status: int, code: str) -> dict:
    """Check an error answer's status and shape; return its body."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


# Named apart from their fixture names so that test arguments do not shadow an import.
@pytest.fixture(name="api")
def api_fixture(db):
    return Api()


@pytest.fixture(name="make_api")
def make_api_fixture(db):
    return Api
