"""Pages around the journeys: errors, the language switch, the security page's hidden parts."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import PHONE, look
from .steps import enrol, exactly, say, sign_in, two_factor_section

OTHER = {"en": "ru", "ru": "en"}
NAMES = {"en": "English", "ru": "Русский"}


def test_scenario_error_pages(page, service, lang, person):
    answer = page.goto(f"{service.url}/no-such-page")
    assert answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Page not found"))
    look(page, lang, "404")

    sign_in(page, service, lang, service.make_user(person("jan")))
    answer = page.goto(f"{service.url}/account/users")
    assert answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Not allowed"))
    look(page, lang, "403")
    page.get_by_role("link", name=exactly(lang, "Go to the start page")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))


def test_scenario_security_page_opened_up(page, service, lang, person, tmp_path):
    enrol(page, service, lang, person("kira"), tmp_path, sign_out_after=False)
    section = two_factor_section(page, lang)
    section.locator("summary").filter(has_text=say(lang, "Add an authenticator app")).click()
    section.locator("summary").filter(has_text=say(lang, "Switch off")).click()
    expect(section.get_by_label(say(lang, "A current code from your app, or a backup code"))).to_be_visible()
    look(page, lang, "security-on-open")


def test_scenario_switch_language(browser, page, service, lang, person):
    login = service.make_user(person("lev"))
    other = OTHER[lang]
    page.goto(f"{service.url}/login")
    page.get_by_role("button", name=NAMES[other]).click()
    expect(page.locator("html")).to_have_attribute("lang", other)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(other, "Sign in"))
    page.get_by_role("button", name=NAMES[lang]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Sign in"))

    # Switched while signed in, the language is saved for the user.
    sign_in(page, service, lang, login)
    page.get_by_role("button", name=NAMES[other]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(other, "Account security"))

    # The choice follows the user to another browser that asks for the first language.
    elsewhere = browser.new_context(locale={"en": "en-US", "ru": "ru-RU"}[lang], viewport=PHONE)
    try:
        fresh = elsewhere.new_page()
        fresh.goto(f"{service.url}/login")
        expect(fresh.locator("html")).to_have_attribute("lang", lang)
        sign_in(fresh, service, lang, login)
        expect(fresh.get_by_role("heading", level=1)).to_have_text(say(other, "Account security"))
    finally:
        elsewhere.close()
