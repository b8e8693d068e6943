"""Setting up on a phone: the app button and the key first, the QR code second; help without an app.

Issue: the setup page led with a QR code that the phone showing it cannot scan, and hid the
"open in your app" link and the key; nothing helped someone with no authenticator app yet.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import DESKTOP, NARROWEST, look
from .steps import app_code, enter_app_code, exactly, read_qr, say, sign_in, switch_on

FREE_APPS = ("Aegis", "FreeOTP", "Google Authenticator", "Microsoft Authenticator")


def _top(locator) -> float:
    return locator.bounding_box()["y"]


def test_scenario_set_up_on_the_phone_itself(page, service, lang, person, tmp_path):
    page.set_viewport_size({"width": NARROWEST, "height": 740})
    login = service.make_user(person("pavel"))
    sign_in(page, service, lang, login)
    switch_on(page, lang)

    # No app yet: the page names free ones and says it will wait.
    help_ = page.get_by_text(say(lang, "No authenticator app yet?"))
    help_.click()
    advice = page.get_by_text(say(lang, "Install a free one from your phone's app store: for example Aegis "
                                        "(Android), FreeOTP, Google Authenticator or Microsoft Authenticator. "
                                        "Then come back to this page: it keeps the same key until you confirm it."))
    expect(advice).to_be_visible()
    for app in FREE_APPS:
        expect(advice).to_contain_text(app)

    # On a phone: first the button that opens the app with the key, then the key to copy, then the QR.
    open_app = page.get_by_role("link", name=exactly(lang, "Open in authenticator app"))
    expect(open_app).to_be_visible()
    assert open_app.get_attribute("href").startswith("otpauth://totp/")
    key = page.locator("#setup-key")
    expect(key).to_be_visible()
    expect(page.get_by_role("button", name=exactly(lang, "Copy key"))).to_be_visible()
    qr = page.get_by_role("img", name=re.compile("QR"))
    assert _top(open_app) < _top(key) < _top(qr)
    look(page, lang, "setup-phone")

    # The key and the app button carry the same secret as the QR code.
    seen = read_qr(page, tmp_path)
    assert key.inner_text().replace(" ", "") == seen.secret
    assert f"secret={seen.secret}" in open_app.get_attribute("href")

    # On a desktop: the QR code leads, the key follows, the app button (useless there) is gone.
    page.set_viewport_size(DESKTOP)
    expect(open_app).to_be_hidden()
    assert _top(qr) < _top(key)
    look(page, lang, "setup-desktop")

    # Typing the key by hand works as well as scanning.
    page.set_viewport_size({"width": NARROWEST, "height": 740})
    enter_app_code(page, lang, app_code(key.inner_text().replace(" ", "")), button="Confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Your backup codes"))
