"""The account admin: switching a locked-out user's 2FA off, and requiring 2FA for everyone."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import PASSWORD, look
from .steps import (
    app_code,
    codes_on_page,
    enrol,
    enter_app_code,
    exactly,
    leave_codes_page,
    read_qr,
    say,
    sign_in,
    sign_out,
    two_factor_section,
)


def _open_users(page, lang):
    page.get_by_role("navigation", name=say(lang, "Main")).get_by_role(
        "link", name=exactly(lang, "Users")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(say(lang, "Users of %(account)s", account=""))


def test_scenario_admin_switches_off_2fa(page, service, lang, person, tmp_path):
    account = f"Lost-{lang}"
    admin = service.make_account(account, person("olga"))
    colleague = enrol(page, service, lang, person("petr"), tmp_path, account=account)

    # Acting on someone else's factors needs the admin's own; right after it, no code is asked.
    enrol(page, service, lang, admin, tmp_path, new_user=False, sign_out_after=False)
    _open_users(page, lang)
    page.get_by_role("searchbox", name=say(lang, "Search by login or e-mail")).fill(colleague.login)
    page.get_by_role("button", name=exactly(lang, "Search")).click()
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=colleague.login))
    expect(row).to_have_count(1)
    expect(row).to_contain_text(say(lang, "on"))
    expect(row.get_by_role("cell").nth(3)).to_have_text("10")
    look(page, lang, "users", desktop=True)

    switch_off_link = say(lang, 'Switch off two-factor authentication<span class="visually-hidden"> for %(login)s</span>',
                          login=colleague.login)
    row.get_by_role("link", name=re.sub(r"<[^>]+>", "", switch_off_link)).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(lang, "Switch off two-factor authentication for %(login)s", login=colleague.login))
    look(page, lang, "admin-disable")
    switch_off = page.get_by_role("button", name=exactly(lang, "Switch off two-factor authentication"))

    page.get_by_label(say(lang, "Reason")).fill("Lost phone; confirmed by a video call")
    page.get_by_label(say(lang, "Your own password")).fill("not " + PASSWORD)
    switch_off.click()
    expect(page.get_by_text(say(lang, "The password is not right."), exact=True)).to_be_visible()
    look(page, lang, "admin-disable-wrong-password")
    page.get_by_label(say(lang, "Your own password")).fill(PASSWORD)
    switch_off.click()

    expect(page.get_by_role("status")).to_have_text(say(
        lang, "Two-factor authentication is off for %(login)s. They have been told by e-mail.",
        login=colleague.login))
    look(page, lang, "users-after-disable")
    assert service.show(colleague.login)["two_factor_enabled"] is False
    sign_out(page, lang)

    sign_in(page, service, lang, colleague.login)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))
    expect(two_factor_section(page, lang)).to_contain_text(say(lang, "Off"))


def test_scenario_account_requires_2fa(page, service, lang, person, tmp_path):
    account = f"Strict-{lang}"
    admin = service.make_account(account, person("rita"))
    newcomer = service.make_user(person("sami"), account=account)
    enrol(page, service, lang, admin, tmp_path, new_user=False, sign_out_after=False)

    _open_users(page, lang)
    page.get_by_label(say(lang, "Require two-factor authentication for everyone in this account")).check()
    page.get_by_role("button", name=exactly(lang, "Save policy")).click()
    expect(page.get_by_role("status")).to_have_text(
        say(lang, "Everyone in this account now needs two-factor authentication."))
    look(page, lang, "users-policy-on")
    sign_out(page, lang)

    sign_in(page, service, lang, newcomer)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Set up two-factor authentication"))
    expect(page.get_by_text(say(
        lang, "Your organisation requires two-factor authentication. Set up an authenticator app or a security key "
              "to continue."))
    ).to_be_visible()
    look(page, lang, "setup-required")
    page.goto(f"{service.url}/security")
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Set up two-factor authentication"))

    page.get_by_role("button", name=exactly(lang, "Continue")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Set up your authenticator app"))
    look(page, lang, "setup-required-scan")
    seen = read_qr(page, tmp_path)
    enter_app_code(page, lang, app_code(seen.secret), button="Confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Your backup codes"))
    assert len(codes_on_page(page)) == 10
    leave_codes_page(page, lang)
    expect(two_factor_section(page, lang)).to_contain_text(say(lang, "On"))
    assert service.show(newcomer)["last_login"] is not None
