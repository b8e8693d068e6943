"""A refused form answers with an error summary at the top that links to each wrong field."""

from __future__ import annotations

import re

import pytest

from ..conftest import PASSWORD, web_sign_in

pytestmark = pytest.mark.django_db


def summary_links(page: str) -> list[str]:
    block = re.search(r"<div class=\"error-summary\".*?</div>", page, re.S)
    assert block, "no error summary on the page"
    return re.findall(r'href="#([\w-]+)"', block.group(0))


def wrong_code(enrolled) -> str:
    near = {enrolled.code(step) for step in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222") if code not in near)


def test_wrong_sign_in_code_is_summarised_and_not_filled_back(client, enrolled):
    client.post("/login", {"login": enrolled.user.login, "password": PASSWORD})
    response = client.post("/login/code", {"code": wrong_code(enrolled)})
    page = response.content.decode()
    assert response.status_code == 401
    assert summary_links(page) == ["id_code"]
    assert 'role="alert"' in page and 'tabindex="-1"' in page
    code_input = re.search(r'<input[^>]*id="id_code"[^>]*>', page).group(0)
    assert "value=" not in code_input and 'aria-invalid="true"' in code_input


def test_wrong_code_when_switching_off_is_summarised_with_secrets_left_out(client, enrolled):
    web_sign_in(client, enrolled.user.login, enrolled)
    response = client.post("/security/disable", {"password": PASSWORD, "code": wrong_code(enrolled)})
    page = response.content.decode()
    assert response.status_code == 400
    assert summary_links(page) == ["disable_code"]
    # The password is asked only when the last confirmation is stale; neither secret comes back.
    fields = re.findall(r'<input[^>]*id="disable_(?:password|code)"[^>]*>', page)
    assert any('id="disable_code"' in field for field in fields)
    assert all("value=" not in field for field in fields)


def test_page_without_errors_has_no_summary(client, enrolled):
    web_sign_in(client, enrolled.user.login, enrolled)
    assert "error-summary" not in client.get("/security").content.decode()
