"""Sessions and remembered browsers: signing out elsewhere, and skipping the code on a known browser."""

from __future__ import annotations

import gettext
import re
from contextlib import contextmanager

from playwright.sync_api import expect

from .conftest import PHONE, look
from .steps import (
    STEP,
    _catalogue,
    _translated,
    app_code,
    enrol,
    enter_app_code,
    exactly,
    say,
    say_count,
    sign_in,
    sign_out,
)


def say_plural(lang, singular, plural, count):
    """A counted message whose placeholder is %(count)d (say_count fills %(counter)s)."""
    if lang == "en":
        text = singular if count == 1 else plural
    else:
        text = _translated(lang, singular)[gettext.c2py(_catalogue(lang).plural_expr)(count)]
    return text % {"count": count}


@contextmanager
def second_browser(browser, lang):
    """Another browser (its own cookies) asking for the same language."""
    context = browser.new_context(locale={"en": "en-US", "ru": "ru-RU"}[lang], viewport=PHONE)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _sessions(page, lang):
    return page.get_by_role("region", name=say(lang, "Your sessions"))


def test_scenario_sign_out_everywhere_else(page, browser, service, lang, person):
    login = service.make_user(person("vera"))
    with second_browser(browser, lang) as elsewhere:
        sign_in(elsewhere, service, lang, login)
        expect(elsewhere.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))

        sign_in(page, service, lang, login)
        expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))
        sessions = _sessions(page, lang)
        expect(sessions.get_by_role("listitem")).to_have_count(2)
        expect(sessions.get_by_role("listitem").filter(has_text=say(lang, "this session"))).to_have_count(1)
        look(page, lang, "sessions-two", desktop=True)

        sessions.get_by_role("button", name=exactly(lang, "Sign out everywhere else")).click()
        expect(page.get_by_role("status")).to_have_text(say_plural(
            lang, "%(count)d other session is signed out.", "%(count)d other sessions are signed out.", 1))
        expect(_sessions(page, lang).get_by_role("listitem")).to_have_count(1)
        look(page, lang, "sessions-one")

        elsewhere.reload()
        expect(elsewhere).to_have_url(re.compile(r"/login(\?.*)?$"))
        expect(elsewhere.get_by_role("heading", level=1)).to_have_text(say(lang, "Sign in"))


def _code_page(page, lang):
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Enter the code from your app"))


def test_scenario_remember_this_browser(page, service, lang, person, tmp_path):
    account = f"Remember-{lang}"
    admin = service.make_account(account, person("max"))
    user = enrol(page, service, lang, person("lena"), tmp_path, account=account)

    sign_in(page, service, lang, admin)
    page.get_by_role("navigation", name=say(lang, "Main")).get_by_role(
        "link", name=exactly(lang, "Users")).click()
    page.get_by_label(say(lang, "Days a browser may skip the code after a full sign-in")).fill("7")
    page.get_by_role("button", name=exactly(lang, "Save policy")).click()
    expect(page.get_by_role("status")).to_have_text(say_plural(
        lang, "Browsers can now be remembered for %(count)d day.",
        "Browsers can now be remembered for %(count)d days.", 7))
    look(page, lang, "users-remember-7")
    sign_out(page, lang)

    # A full sign-in with the app code, ticking the box.
    sign_in(page, service, lang, user.login)
    _code_page(page, lang)
    remember = page.get_by_label(say_count(
        lang, "Remember this browser for %(days)s day", "Remember this browser for %(days)s days", 7, days=7))
    look(page, lang, "code-remember")
    remember.check()
    enter_app_code(page, lang, app_code(user.secret, ahead=STEP))
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))
    browsers = page.get_by_role("region", name=say(lang, "Remembered browsers"))
    expect(browsers.get_by_role("listitem")).to_have_count(1)
    look(page, lang, "security-remembered", desktop=True)
    sign_out(page, lang)

    # The same browser: the password is enough.
    sign_in(page, service, lang, user.login)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))

    browsers.get_by_role("button", name=exactly(lang, "Forget all browsers")).click()
    expect(page.get_by_role("status")).to_have_text(
        say(lang, "Every remembered browser is forgotten: they will ask for a code again."))
    look(page, lang, "security-forgotten")
    sign_out(page, lang)

    sign_in(page, service, lang, user.login)
    _code_page(page, lang)
