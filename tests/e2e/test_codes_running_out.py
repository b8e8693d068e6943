"""Running out of backup codes is escalated: few left warns, none left is danger; admins see it.

Issue: 0 codes left read like 3 left, "Generate new codes" stayed a secondary button, and the
admin's list of users did not flag anyone.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import PASSWORD, look
from .steps import STEP, app_code, enrol, enter_app_code, exactly, say, sign_in, two_factor_section


def _spend_on_another_device(browser, service, login: str, codes: list[str]) -> None:
    """Sign in with each code through the JSON API from another browser, as over some weeks."""
    other = browser.new_context()
    try:
        api = other.request

        def post(path: str, body: dict):
            token = next(c["value"] for c in other.cookies() if c["name"] == "csrftoken")
            answer = api.post(f"{service.url}/api/v1{path}", data=body, headers={"X-CSRFToken": token})
            assert answer.ok, answer.text()
            return answer.json()

        for code in codes:
            api.get(f"{service.url}/api/v1/auth/session")
            post("/auth/login", {"login": login, "password": PASSWORD})
            post("/auth/second-factor", {"method": "backup_code", "code": code})
    finally:
        other.close()


def _generate_button(page, lang):
    return two_factor_section(page, lang).get_by_role("button", name=exactly(lang, "Generate new codes"))


def _is_primary(button) -> bool:
    return "button-secondary" not in (button.get_attribute("class") or "")


def test_scenario_running_out_of_codes_is_escalated(page, browser, service, lang, person, tmp_path):
    account = f"Zeta-{person('org')}"
    admin = service.make_account(account, person("zoe"))
    me = enrol(page, service, lang, person("lev"), tmp_path, account=account)
    danger = say(lang, "No backup codes left — generate new ones now.")

    # Three left: a warning, and making new codes becomes the main button.
    _spend_on_another_device(browser, service, me.login, me.codes[:7])
    sign_in(page, service, lang, me.login)
    enter_app_code(page, lang, app_code(me.secret, ahead=STEP))  # the code of enrolling is spent
    section = two_factor_section(page, lang)
    expect(section.get_by_text(re.compile(re.escape(say(
        lang, "You are running out of backup codes. Make new ones and keep them somewhere safe: "
              "without them, losing your phone locks you out.")[:30])))).to_be_visible()
    expect(section.get_by_text(danger)).to_have_count(0)
    assert _is_primary(_generate_button(page, lang))

    # None left: it reads as danger, not as "running out".
    _spend_on_another_device(browser, service, me.login, me.codes[7:])
    page.reload()
    alert = section.get_by_role("alert").filter(has_text=danger)
    expect(alert).to_be_visible()
    assert _is_primary(_generate_button(page, lang))
    look(page, lang, "security-no-codes-left")

    # The account admin's list flags the user with none left.
    page.get_by_role("button", name=exactly(lang, "Sign out")).click()
    sign_in(page, service, lang, admin)
    page.goto(f"{service.url}/account/users")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=me.login))
    expect(row).to_contain_text(say(lang, "none left"))
    look(page, lang, "users-codes-flagged")
