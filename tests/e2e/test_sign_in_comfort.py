"""The sign-in pages when things go a little wrong: throttled, expired, minutes later, big screens, thumbs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import DESKTOP, PASSWORD, _start, look
from .steps import (
    enrol,
    exactly,
    give_password_if_asked,
    leave_codes_page,
    say,
    sign_in,
    sign_out,
    submit,
    two_factor_section,
)
from .test_webauthn import add_key, at_localhost, virtual_authenticator

MIN_TARGET = 44  # px: WCAG 2.5.5 (AAA) and the platforms' guidelines; 2.5.8 (AA) asks 24


@pytest.fixture(scope="module")
def hurried_service(tmp_path_factory):
    """A service whose half sign-in expires at once and whose longest wait is four seconds."""
    running = _start(tmp_path_factory, "serve-hurried", PENDING_MINUTES="0", MAX_DELAY_SECONDS="4",
                     PASSWORD_FREE_ATTEMPTS="2")
    yield running
    running.stop()


def test_scenario_throttled_once_clearly_and_the_button_waits(page, hurried_service, lang, person):
    service = hurried_service
    login = service.make_user(person("theo"))
    for _attempt in range(6):  # two free tries, then a wait of a few seconds
        sign_in(page, service, lang, login, "not the password")
        if page.locator("body[data-retry-after]").count():
            break
    # One sentence with the wait, not "Please wait and try again. You can try again in …".
    sentence = re.escape(say(lang, "Too many failed attempts. Try again in %(wait)s.", wait="WAIT"))
    expect(page.get_by_role("alert")).to_have_text(re.compile(rf"^\s*{sentence.replace('WAIT', '[^.]+')}\s*$"))
    button = page.get_by_role("button", name=exactly(lang, "Continue"))
    expect(button).to_be_disabled()
    expect(button.locator(".countdown")).to_have_text(re.compile(r"^\s*0:0[1-4]$"))
    look(page, lang, "throttled-button-waits")
    expect(button).to_be_enabled(timeout=8_000)  # the wait is over: the button comes back
    page.get_by_label(say(lang, "Password"), exact=True).fill(PASSWORD)
    submit(page, button)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))


def test_scenario_expired_sign_in_keeps_the_login(page, hurried_service, lang, person, tmp_path):
    service = hurried_service
    me = enrol(page, service, lang, person("edda"), tmp_path)
    sign_in(page, service, lang, me.login)  # the second step expires before it is shown
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Sign in"))
    expect(page.get_by_role("status")).to_have_text(say(
        lang, "The sign-in took too long and was stopped to keep your account safe. "
              "Enter your password again to continue."))
    expect(page.get_by_label(say(lang, "Login"), exact=True)).to_have_value(me.login)
    expect(page.get_by_label(say(lang, "Password"), exact=True)).to_be_focused()
    look(page, lang, "sign-in-expired-login-kept")


def test_scenario_expired_key_step_keeps_the_login(page, hurried_service, lang, person):
    service = hurried_service
    site = at_localhost(service)  # a WebAuthn RP ID must be a domain
    login = service.make_user(person("kira"))
    virtual_authenticator(page)
    sign_in(page, site, lang, login)
    add_key(page, lang, "YubiKey")
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Your backup codes"))
    leave_codes_page(page, lang)
    sign_out(page, lang)
    sign_in(page, site, lang, login)  # the key's page expires before it is shown
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Sign in"))
    expect(page.get_by_role("status")).to_have_text(say(
        lang, "The sign-in took too long and was stopped to keep your account safe. "
              "Enter your password again to continue."))
    expect(page.get_by_label(say(lang, "Login"), exact=True)).to_have_value(login)
    expect(page.get_by_label(say(lang, "Password"), exact=True)).to_be_focused()
    look(page, lang, "sign-in-expired-key-login-kept")


def test_scenario_stale_security_page_asks_once_then_lets_changes_through(page, returning_service, lang,
                                                                          person):
    service = returning_service
    login = service.make_user(person("pavel"))
    sign_in(page, service, lang, login)
    page.goto(f"{service.url}/security")
    confirm = page.get_by_role("form", name=say(lang, "Confirm it is you"))
    expect(confirm).to_be_visible()
    for summary in page.locator("main summary").all():
        summary.click()  # every change opened: still one password field on the page
    visible = [f for f in page.locator("input[type=password]").all() if f.is_visible()]
    assert len(visible) == 1
    look(page, lang, "security-confirm-once")

    give_password_if_asked(page, lang)
    expect(page.get_by_role("form", name=say(lang, "Confirm it is you"))).to_have_count(0)
    assert not [f for f in page.locator("input[type=password]").all() if f.is_visible()]
    two_factor_section(page, lang).get_by_role("button", name=exactly(lang, "Switch on")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Set up your authenticator app"))


def test_scenario_sign_in_sits_in_the_middle_and_escapes_are_thumb_sized(page, service, lang, person, tmp_path):
    me = enrol(page, service, lang, person("nina"), tmp_path)
    page.set_viewport_size(DESKTOP)
    page.goto(f"{service.url}/login")
    card = page.locator("main form").first.bounding_box()
    middle = card["x"] + card["width"] / 2
    assert abs(middle - DESKTOP["width"] / 2) < 24, f"the sign-in column is centred at {middle}px"
    look(page, lang, "sign-in-centred", desktop=True)

    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, service, lang, me.login)
    routes = page.locator("main .alternative a")
    assert routes.count() >= 2  # a backup code, the admin's pass
    boxes = [routes.nth(i).bounding_box() for i in range(routes.count())]
    for box in boxes:
        assert box["height"] >= MIN_TARGET and box["width"] >= MIN_TARGET, box
    for upper, lower in zip(boxes, boxes[1:], strict=False):
        assert lower["y"] >= upper["y"] + upper["height"], "two escape routes overlap"
    look(page, lang, "sign-in-escape-routes")
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Use a backup code"))
