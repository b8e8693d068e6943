"""One longest password everywhere: whatever can be set can be typed on the sign-in page and the API."""

from __future__ import annotations

import pytest
from django.test import Client

from twostep.services import accounts, passwords
from twostep.services.errors import InvalidInput

from ..conftest import ORIGIN, PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

LONGEST = "long passphrase " * 64  # 1024 characters
assert len(LONGEST) == accounts.MAX_PASSWORD == 1024


def test_the_longest_password_set_through_the_api_signs_in_on_the_page(make_api, member):
    api = make_api().sign_in("member")
    response = api.post("/me/password", {"current_password": PASSWORD, "new_password": LONGEST})
    assert response.status_code == 200, response.content
    page = Client().post("/login", {"login": "member", "password": LONGEST})
    assert page.status_code == 302 and page["Location"] == "/security"
    assert make_api().login("member", LONGEST).json()["stage"] == "authenticated"


def test_the_longest_password_set_on_the_page_signs_in_through_the_api(client, make_api, member):
    client.post("/login", {"login": "member", "password": PASSWORD})
    response = client.post("/security/password", {"current_password": PASSWORD, "new_password": LONGEST})
    assert response.status_code == 302
    assert make_api().login("member", LONGEST).json()["stage"] == "authenticated"


def test_one_character_more_is_refused_everywhere(client, make_api, member):
    longer = LONGEST + "x"
    api = make_api().sign_in("member")
    body = assert_error(api.post("/me/password", {"current_password": PASSWORD, "new_password": longer}),
                        422, "invalid_input")
    assert "1024" in body["message"]
    assert_error(make_api().login("member", longer), 422, "invalid_input")
    assert Client().post("/login", {"login": "member", "password": longer}).status_code == 400
    with pytest.raises(InvalidInput):
        passwords.change_password(member, PASSWORD, longer, ORIGIN)
    with pytest.raises(InvalidInput):
        accounts.create_user("longer", "Acme", "longer@acme.example", longer)
