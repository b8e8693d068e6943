"""New backup codes cannot be lost by a click: the page asks, comes back, and the security page nags.

Issue: the codes page was the answer to a POST, so the header's links, the language switch and
the Back button threw the codes away while two-factor authentication was already on.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import look
from .steps import (
    codes_on_page,
    exactly,
    say,
    scan_and_confirm,
    sign_in,
    switch_on,
)

OTHER = {"en": "ru", "ru": "en"}
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


def _security_heading(page, lang):
    return page.get_by_role("heading", level=1, name=say(lang, "Account security"))


def test_scenario_codes_are_never_lost_by_a_click(page, service, lang, person, tmp_path):
    login = service.make_user(person("nika"))
    sign_in(page, service, lang, login)
    switch_on(page, lang)
    _seen, codes = scan_and_confirm(page, lang, tmp_path)
    assert len(codes) == 10

    # The header's "Account security" asks first; staying keeps the codes on the page.
    page.get_by_role("navigation").get_by_role("link", name=exactly(lang, "Account security")).click()
    question = page.get_by_role("dialog", name=say(lang, "Leave without saving your backup codes?"))
    expect(question).to_be_visible()
    look(page, lang, "codes-leave-question")
    question.get_by_role("button", name=exactly(lang, "Stay and save them")).click()
    expect(question).to_be_hidden()
    assert codes_on_page(page) == codes

    # "Sign out" asks too.
    page.get_by_role("button", name=exactly(lang, "Sign out")).click()
    expect(question).to_be_visible()
    question.get_by_role("button", name=exactly(lang, "Stay and save them")).click()

    # The language switch keeps the person on the same codes, in the other language.
    page.get_by_role("button", name=LANGUAGE_NAMES[OTHER[lang]]).click()
    expect(page.locator("html")).to_have_attribute("lang", OTHER[lang])
    expect(page.get_by_role("heading", level=1)).to_have_text(say(OTHER[lang], "Your backup codes"))
    assert codes_on_page(page) == codes
    page.get_by_role("button", name=LANGUAGE_NAMES[lang]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Your backup codes"))

    # Reloading asks the browser's own question, then shows the same codes (no resubmitted form).
    asked: list[str] = []

    def accept(dialog):
        asked.append(dialog.type)
        dialog.accept()

    page.on("dialog", accept)
    page.get_by_role("heading", level=1).click()  # a gesture: browsers ask only on a page used
    page.reload()
    assert asked == ["beforeunload"]
    assert codes_on_page(page) == codes

    # Leaving anyway: Account security says, above everything, that the codes are not saved.
    page.get_by_role("navigation").get_by_role("link", name=exactly(lang, "Account security")).click()
    question.get_by_role("button", name=exactly(lang, "Leave this page")).click()
    expect(_security_heading(page, lang)).to_be_visible()
    nag = page.get_by_role("region", name=say(lang, "You have not confirmed saving your backup codes"))
    expect(nag).to_be_visible()
    look(page, lang, "security-codes-unsaved")

    # ... and shows the same codes again in this browser, until they are saved.
    nag.get_by_role("link", name=exactly(lang, "Show my backup codes")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Your backup codes"))
    assert codes_on_page(page) == codes
    page.get_by_label(say(lang, "I have saved my backup codes")).check()
    page.get_by_role("button", name=exactly(lang, "Continue")).click()
    expect(_security_heading(page, lang)).to_be_visible()
    expect(page.get_by_role("status").filter(
        has_text=say(lang, "Two-factor authentication is on, and your backup codes are saved."))).to_be_visible()
    expect(page.get_by_text(say(lang, "You have not confirmed saving your backup codes"))).to_have_count(0)

    # Back, once saved: no codes, no "Confirm form resubmission", just the security page.
    page.go_back()
    expect(_security_heading(page, lang)).to_be_visible()
    assert codes_on_page(page) == []
    assert asked == ["beforeunload"]
    assert re.search(r"/security$", page.url)
