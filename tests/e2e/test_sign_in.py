"""Signing in: the password, then a code from the app or a backup code; the lost-phone path."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import PASSWORD, look
from .steps import (
    STEP,
    app_code,
    codes_on_page,
    enrol,
    enter_app_code,
    enter_backup_code,
    exactly,
    leave_codes_page,
    read_qr,
    say,
    say_count,
    sign_in,
    sign_out,
    two_factor_section,
    wrong_app_code,
)


def _signed_in(page, lang):
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))
    expect(page.get_by_role("button", name=exactly(lang, "Sign out"))).to_be_visible()


def test_scenario_sign_in_with_app_code(page, service, lang, person, tmp_path):
    me = enrol(page, service, lang, person("carl"), tmp_path)

    sign_in(page, service, lang, me.login)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Enter the code from your app"))
    code_field = page.get_by_label(say(lang, "Code from your app"), exact=True)
    expect(code_field).to_have_attribute("autocomplete", "one-time-code")
    expect(code_field).to_have_attribute("inputmode", "numeric")
    expect(code_field).to_be_focused()
    look(page, lang, "sign-in-code")

    # The next step's code, as the phone shows it a moment later: the enrolment spent this one.
    code = app_code(me.secret, ahead=STEP)
    enter_app_code(page, lang, f"{code[:3]} {code[3:]}")
    _signed_in(page, lang)
    assert service.show(me.login)["last_login"] is not None

    # The same code a second time is refused: each code signs in once, and the page says why.
    sign_out(page, lang)
    sign_in(page, service, lang, me.login)
    enter_app_code(page, lang, code)
    expect(page.get_by_text(say(lang, "That code was used a moment ago. Wait for the app to show the next one."), exact=True)).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Enter the code from your app"))


def test_scenario_sign_in_with_backup_code_after_losing_phone(page, service, lang, person, tmp_path):
    me = enrol(page, service, lang, person("dina"), tmp_path)

    sign_in(page, service, lang, me.login)
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Use a backup code"))
    look(page, lang, "sign-in-backup-code")
    # Typed as a person might copy it from paper: upper case, spaces instead of hyphens.
    enter_backup_code(page, lang, me.codes[0].upper().replace("-", " "))

    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "You signed in with a backup code"))
    expect(page.get_by_role("main")).to_contain_text(say_count(
        lang, "That code is now used up. You have %(counter)s backup code left.",
        "That code is now used up. You have %(counter)s backup codes left.", 9))
    look(page, lang, "recover")
    assert service.show(me.login)["backup_codes_remaining"] == 9

    page.get_by_role("button", name=exactly(lang, "Register a new authenticator")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Register your new authenticator"))
    look(page, lang, "setup-new-phone")
    new_phone = read_qr(page, tmp_path)
    assert new_phone.secret != me.secret
    enter_app_code(page, lang, app_code(new_phone.secret), button="Confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Your backup codes"))
    fresh_codes = codes_on_page(page)
    assert len(fresh_codes) == 10 and not set(fresh_codes) & set(me.codes)
    look(page, lang, "codes-new-phone")
    leave_codes_page(page, lang)
    expect(two_factor_section(page, lang)).to_contain_text(say_count(
        lang, "%(counter)s of %(total)s backup codes left.", "%(counter)s of %(total)s backup codes left.",
        10, total=10))
    sign_out(page, lang)

    # The lost phone's codes no longer work; the new phone's do.
    sign_in(page, service, lang, me.login)
    enter_app_code(page, lang, app_code(me.secret, ahead=STEP))
    expect(page.get_by_text(say(lang, "That code is not right. Check it and try again."), exact=True)).to_be_visible()
    enter_app_code(page, lang, app_code(new_phone.secret, ahead=STEP))
    _signed_in(page, lang)


def test_scenario_wrong_codes_are_explained_then_throttled(page, service, lang, person, tmp_path):
    login = service.make_user(person("emil"))

    sign_in(page, service, lang, login, "not the password")
    expect(page.get_by_role("alert")).to_have_text(say(lang, "The login or password is not right."))
    look(page, lang, "login-wrong-password")

    # A phone whose clock is five minutes fast: the setup says so instead of only "wrong code".
    sign_in(page, service, lang, login)
    two_factor_section(page, lang).get_by_role("button", name=exactly(lang, "Switch on")).click()
    seen = read_qr(page, tmp_path)
    enter_app_code(page, lang, app_code(seen.secret, ahead=300), button="Confirm")
    error = page.locator(".errorlist")
    expect(error).to_contain_text(re.compile(r"\b(4|5|6)\b"))  # minutes
    look(page, lang, "setup-clock-off")
    enter_app_code(page, lang, app_code(seen.secret), button="Confirm")
    leave_codes_page(page, lang)
    sign_out(page, lang)

    sign_in(page, service, lang, login)
    enter_app_code(page, lang, "12345")
    expect(page.get_by_text(say(lang, "An app code is 6 digits."), exact=True)).to_be_visible()
    look(page, lang, "sign-in-code-short")

    wrong = wrong_app_code(seen.secret)
    for _attempt in range(6):  # five free attempts, then a wait
        enter_app_code(page, lang, wrong)
        expect(page.get_by_text(say(lang, "That code is not right. Check it and try again."), exact=True)).to_be_visible()
    look(page, lang, "sign-in-code-wrong")

    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        enter_app_code(page, lang, app_code(seen.secret, ahead=STEP))
    assert answer.value.status == 429
    assert int(answer.value.headers["retry-after"]) > 0
    alert = page.get_by_role("alert")
    sentence = re.escape(say(lang, "Too many failed attempts. Try again in %(wait)s.", wait="WAIT"))
    sentence = sentence.replace("WAIT", r"[^.]*\d[^.]*")  # one sentence, with the wait in it
    expect(alert).to_have_text(re.compile(rf"^\s*{sentence}\s*$"))
    look(page, lang, "sign-in-throttled")

    # The backup-code page is held back too: one counter for both kinds of code.
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).click()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        enter_backup_code(page, lang, "abcd-efgh-jkmn-pqrs")
    assert answer.value.status == 429
    assert service.show(login)["second_factor_failures"] == 6


def test_scenario_sign_in_with_keyboard_only(page, service, lang, person):
    login = service.make_user(person("fay"))
    page.goto(f"{service.url}/login")
    focused = page.get_by_label(say(lang, "Login"), exact=True)
    for _press in range(10):  # from wherever the page starts, Tab reaches the login field
        if focused.evaluate("el => el === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(focused).to_be_focused()
    page.keyboard.type(login)
    page.keyboard.press("Tab")
    expect(page.get_by_label(say(lang, "Password"), exact=True)).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    _signed_in(page, lang)
