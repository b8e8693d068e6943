"""Switching two-factor authentication on: the QR code read by a decoder, the first code typed."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import PASSWORD, look
from .steps import (
    app_code,
    codes_on_page,
    enter_app_code,
    exactly,
    leave_codes_page,
    read_qr,
    say,
    say_count,
    sign_in,
    submit,
    two_factor_section,
)


def test_scenario_enrol(page, service, lang, person, tmp_path):
    login = service.make_user(person("anna"))

    page.goto(f"{service.url}/login")
    look(page, lang, "login", desktop=True)
    sign_in(page, service, lang, login)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))
    expect(two_factor_section(page, lang)).to_contain_text(say(lang, "Off"))
    look(page, lang, "security-off")

    two_factor_section(page, lang).get_by_role("button", name=exactly(lang, "Switch on")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Set up your authenticator app"))
    # The page opens at its top, not scrolled down to the code field; on a phone the button that
    # opens the key in the app is in view (tests/e2e/test_setup_on_phone.py has the rest).
    assert page.evaluate("window.scrollY") == 0
    expect(page.get_by_role("link", name=exactly(lang, "Open in authenticator app"))).to_be_in_viewport(ratio=1)
    look(page, lang, "setup", desktop=True)
    seen = read_qr(page, tmp_path)
    assert seen.issuer == "twostep"
    assert seen.label == f"twostep:{login}"
    assert re.fullmatch(r"[A-Z2-7]{32,}", seen.secret), seen.secret

    # The same key, in groups of four, for typing by hand.
    key = page.locator("#setup-key")
    expect(key).to_be_visible()
    assert key.inner_text().replace(" ", "") == seen.secret
    assert all(len(group) == 4 for group in key.inner_text().split()[:-1])
    look(page, lang, "setup-key")

    enter_app_code(page, lang, app_code(seen.secret), button="Confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Your backup codes"))
    expect(page.get_by_role("status").first).to_have_text(say(lang, "Two-factor authentication is on."))
    codes = codes_on_page(page)
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    look(page, lang, "codes", desktop=True)

    leave_codes_page(page, lang)
    section = two_factor_section(page, lang)
    expect(section).to_contain_text(say(lang, "On"))
    expect(section).to_contain_text(say_count(
        lang, "%(counter)s of %(total)s backup codes left.", "%(counter)s of %(total)s backup codes left.",
        10, total=10))
    look(page, lang, "security-on", desktop=True)
    facts = service.show(login)
    assert facts["two_factor_enabled"] is True
    assert facts["backup_codes_remaining"] == 10


def test_scenario_change_asks_password_again(page, returning_service, lang, person, tmp_path):
    """Minutes after signing in, the security page asks the password once before its changes."""
    service = returning_service
    login = service.make_user(person("boris"))
    sign_in(page, service, lang, login)
    section = two_factor_section(page, lang)
    look(page, lang, "security-off-password")

    confirm = page.get_by_role("form", name=say(lang, "Confirm it is you"))
    confirm.get_by_label(say(lang, "Your password"), exact=True).fill("not " + PASSWORD)
    submit(page, confirm.get_by_role("button", name=exactly(lang, "Confirm")))
    expect(confirm.get_by_text(say(lang, "The password is not right."), exact=True)).to_be_visible()
    look(page, lang, "security-confirm-wrong-password")

    confirm.get_by_label(say(lang, "Your password"), exact=True).fill(PASSWORD)
    submit(page, confirm.get_by_role("button", name=exactly(lang, "Confirm")))
    section.get_by_role("button", name=exactly(lang, "Switch on")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Set up your authenticator app"))
    seen = read_qr(page, tmp_path)
    enter_app_code(page, lang, app_code(seen.secret), button="Confirm")
    first = codes_on_page(page)
    leave_codes_page(page, lang)
    look(page, lang, "security-on-password")

    section = two_factor_section(page, lang)
    generate = section.locator("form").filter(has=page.get_by_role("button", name=exactly(lang, "Generate new codes")))
    expect(generate.get_by_label(say(lang, "Your password"), exact=True)).to_have_count(0)  # asked once, above
    generate.get_by_role("button", name=exactly(lang, "Generate new codes")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Your backup codes"))
    second = codes_on_page(page)
    assert len(second) == 10 and not set(first) & set(second)
