"""What every page shares: security headers, health check, language, error pages, bad input."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db.utils import OperationalError
from django.test import Client

from twostep.models import User
from twostep.web.middleware import CONTENT_SECURITY_POLICY

from ..conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_pages_send_strict_security_headers(client):
    response = client.get("/login")
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "camera=()" in response["Permissions-Policy"]
    assert "no-store" in response["Cache-Control"]
    assert response["X-Frame-Options"] == "DENY"


def test_every_page_is_kept_out_of_caches_whether_or_not_its_view_said_so(client, member):
    client.force_login(member)
    for url in ("/login", "/security", "/no-such-page"):  # the last one is no view's: a 404
        response = client.get(url)
        directives = {part.strip() for part in response["Cache-Control"].split(",")}
        assert {"no-store", "no-cache", "private", "max-age=0"} <= directives, url
        assert "Expires" in response, url


def test_pages_have_no_inline_script_or_style(client, member):
    client.force_login(member)
    for url in ("/login", "/security", "/no-such-page"):
        page = client.get(url).content.decode()
        assert "<script>" not in page and "<style" not in page and " style=" not in page and "onclick" not in page


def test_stylesheet_and_script_are_served(client):
    assert client.get("/static/twostep/twostep.css").status_code == 200
    assert client.get("/static/twostep/twostep.js").status_code == 200


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def _database_down(monkeypatch):
    from django.db import connection

    def broken():
        raise OperationalError("down")

    monkeypatch.setattr(connection, "cursor", broken)


def test_healthz_is_liveness_and_needs_no_database(client, monkeypatch):
    _database_down(monkeypatch)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_answers_ok_with_its_checks(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert "no-store" in response["Cache-Control"]


def test_readyz_answers_503_naming_the_database_when_it_is_down(client, monkeypatch):
    _database_down(monkeypatch)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["failed"] == ["database"]
    assert body["checks"]["database"] == "unavailable"


def test_readyz_names_redis_when_it_does_not_answer(client, settings):
    from twostep.web.views import misc

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    misc._redis.cache_clear()
    try:
        response = client.get("/readyz")
    finally:
        misc._redis.cache_clear()
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"] and response.json()["checks"]["database"] == "ok"


def test_home_goes_to_security_or_sign_in(client):
    assert client.get("/")["Location"] == "/security"
    assert client.get("/security")["Location"] == "/login?next=/security"


def test_language_comes_from_the_browser(client):
    response = client.get("/login", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5")
    assert response["Content-Language"] == "ru"
    assert '<html lang="ru">' in response.content.decode()
    assert 'lang="en">English</button>' in response.content.decode()


def test_language_switch_persists_for_the_user(client, member):
    client.force_login(member)
    response = client.post("/language", {"language": "ru", "next": "/security"})
    assert response.status_code == 302 and response["Location"] == "/security"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"
    assert User.objects.get(pk=member.pk).language == "ru"
    # Another browser, which asks for English, gets the user's choice once signed in.
    elsewhere = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert elsewhere.get("/login")["Content-Language"] == "en"
    response = elsewhere.post("/login", {"login": "member", "password": PASSWORD})
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"
    assert elsewhere.get("/security")["Content-Language"] == "ru"


def test_language_switch_refuses_unknown_language_and_foreign_next(client):
    response = client.post("/language", {"language": "xx", "next": "https://evil.example/"})
    assert response["Location"] == "/"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert client.get("/language").status_code == 405


def test_failed_csrf_check_shows_a_friendly_page(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login", {"login": "member", "password": PASSWORD})
    assert response.status_code == 403
    assert "The form has expired" in response.content.decode()


def test_unknown_page_shows_a_friendly_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and "Page not found" in response.content.decode()


@pytest.mark.parametrize("url, data", [
    ("/login", {"login": "a\x00b", "password": "x"}),
    ("/login", {"login": "x" * 5000, "password": "y" * 5000}),
    ("/login", {"login": ["a", "b"], "password": ""}),
    ("/language", {"language": "\x00", "next": "\x00"}),
])
def test_bad_input_never_gives_a_server_error(client, member, url, data):
    assert client.post(url, data).status_code < 500


def test_bad_codes_and_searches_never_give_a_server_error(client, enrolled, admin):
    client.post("/login", {"login": "member", "password": PASSWORD})
    for code in ("\x00", "１２３４５６", "x" * 500, "+123456", "-"):
        assert client.post("/login/code", {"code": code}).status_code < 500
        assert client.post("/login/backup-code", {"code": code}).status_code < 500
    admin.refresh_from_db()
    client.force_login(admin)
    for query in ({"q": "\x00"}, {"after": "\x00"}, {"q": "x" * 1000}, {"after": "zzz"}):
        assert client.get("/account/users", query).status_code == 200
    assert client.post("/security/disable", {"password": "\x00", "code": "\x00"}).status_code < 500
    assert client.post("/security/setup/confirm", {"code": "\x00"}).status_code < 500


def test_server_error_page_is_friendly(rf):
    from django.views.defaults import server_error

    response = server_error(rf.get("/"))
    assert response.status_code == 500 and "Something went wrong" in response.content.decode()


def test_print_and_copy_come_from_the_static_script():
    from django.contrib.staticfiles import finders

    script = open(finders.find("twostep/twostep.js"), encoding="utf-8").read()
    assert "window.print()" in script and "navigator.clipboard.writeText" in script
    stylesheet = open(finders.find("twostep/twostep.css"), encoding="utf-8").read()
    assert "@media print" in stylesheet and "size: A4" in stylesheet
