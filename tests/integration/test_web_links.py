"""The pages' links: reversed once per process (web/links.py), never carried from one mount to
another. Served through Django's WSGI handler, which sets the script prefix from SCRIPT_NAME as a
server behind a proxy that mounts twostep under a path does (the test client does not)."""

from __future__ import annotations

import re

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.template import engines
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse, set_script_prefix

from twostep.web import links

from ..conftest import PASSWORD

pytestmark = pytest.mark.django_db


def serve(method: str, path: str, script_name: str = "", cookie: str = "", **data) -> tuple[str, dict, str]:
    factory = RequestFactory()
    environ = getattr(factory, method)(path, data, SCRIPT_NAME=script_name, HTTP_COOKIE=cookie).environ
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=dict(headers))

    # As Django's test client does: the test's database connection stays open across requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(WSGIHandler()(environ, start_response)).decode()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], body


def sign_in_form_action(page: str) -> str:
    return re.search(r'<form method="post" action="([^"]*)" class="card', page).group(1)


@pytest.fixture(autouse=True)
def _root_prefix_after():
    yield
    set_script_prefix("/")


def test_the_sign_in_form_posts_to_the_mount_it_was_served_under():
    assert sign_in_form_action(serve("get", "/login")[2]) == "/login"
    # The same process and thread, now mounted under /auth, then at the root again.
    _, _, under_auth = serve("get", "/login", "/auth")
    assert sign_in_form_action(under_auth) == "/auth/login"
    assert 'href="/auth/"' in under_auth and 'action="/auth/language"' in under_auth
    assert sign_in_form_action(serve("get", "/login")[2]) == "/login"


def test_the_step_after_the_password_follows_the_mount(enrolled):
    _, headers, page = serve("get", "/login", "/auth")
    cookie = headers["Set-Cookie"].split(";")[0].strip()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    status, headers, _ = serve("post", "/login", "/auth", cookie, csrfmiddlewaretoken=token,
                               login=enrolled.user.login, password=PASSWORD)
    assert status.startswith("302") and headers["Location"] == "/auth/login/code"


def render(source: str) -> str:
    return engines["django"].from_string(source).render({})


def test_the_url_tag_is_djangos_for_arguments_as_and_unknown_names():
    assert render("{% url 'web:password_reset_confirm' 'abc' 't-1' %}") == "/password-reset/abc/t-1"
    assert render("{% url 'web:login' as there %}[{{ there }}]") == "[/login]"
    assert render("{% url 'web:nope' as missing %}[{{ missing }}]") == "[]"
    with pytest.raises(NoReverseMatch):
        render("{% url 'web:nope' %}")
    with pytest.raises(NoReverseMatch):  # and a failure is not kept as an answer
        links.reverse("web:nope")


@pytest.mark.parametrize("prefix", ["/", "/auth/", "/sign in/"])
def test_a_kept_link_is_the_one_django_gives(prefix):
    set_script_prefix(prefix)
    for name in ("web:login", "web:home", "web:security", "web:login_code", "api:api-root"):
        assert links.reverse(name) == reverse(name)
    assert links.reverse("web:login") == f"{prefix}login".replace(" ", "%20")
