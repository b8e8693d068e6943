"""Getting back in: a password reset by mail, a one-time pass from the admin, and a 2FA deadline."""

from __future__ import annotations

import datetime
import re
import time

from playwright.sync_api import expect

from .conftest import PASSWORD, look
from .steps import (
    app_code,
    enrol,
    exactly,
    leave_codes_page,
    say,
    scan_and_confirm,
    shown_date,
    sign_in,
    sign_out,
)

NEW_PASSWORD = "a brand new passphrase for spring"


def _open_users(page, lang):
    page.get_by_role("navigation", name=say(lang, "Main")).get_by_role(
        "link", name=exactly(lang, "Users")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(say(lang, "Users of %(account)s", account=""))


def _mailed_link(service, since: int, login: str) -> str:
    """The reset link from the mail the server printed (console mail backend) after `since`."""
    pattern = re.compile(re.escape(service.url) + r"/password-reset/[\w-]+/[\w-]+")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = service.log_path.read_text(encoding="utf-8", errors="replace")[since:]
        if login in text and pattern.search(text):
            return pattern.search(text).group(0)
        time.sleep(0.2)
    raise AssertionError(f"no reset link for {login} in {service.log_path}")


def _ask_for_reset(page, service, lang, login):
    page.goto(f"{service.url}/login")
    page.get_by_role("link", name=exactly(lang, "Forgot your password?")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Reset your password"))
    page.get_by_label(say(lang, "Login or e-mail address"), exact=True).fill(login)
    page.get_by_role("button", name=exactly(lang, "Send the link")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Sign in"))
    return page.get_by_role("status").inner_text()


def test_scenario_password_reset(page, service, lang, person, tmp_path):
    user = enrol(page, service, lang, person("nora"), tmp_path)

    since = len(service.log_path.read_text(encoding="utf-8", errors="replace"))
    page.goto(f"{service.url}/password-reset")
    look(page, lang, "password-reset")
    known = _ask_for_reset(page, service, lang, user.login)
    assert known.strip() == say(lang, "If that login or e-mail address is known here, a message with a link "
                                      "to reset the password is on its way. The link works once.")
    look(page, lang, "password-reset-sent")
    unknown = _ask_for_reset(page, service, lang, person("nobody"))
    assert unknown == known  # the answer does not tell which logins exist

    link = _mailed_link(service, since, user.login)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Choose a new password"))
    expect(page.get_by_role("main")).to_contain_text(user.login)
    look(page, lang, "password-reset-set")
    page.get_by_label(say(lang, "New password"), exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name=exactly(lang, "Set the new password")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Sign in"))
    expect(page.get_by_role("status")).to_have_text(say(
        lang, "Your password was changed and you were signed out everywhere. Sign in with the new password."))
    look(page, lang, "password-reset-done")
    page.goto(f"{service.url}/security")  # not signed in by the reset
    expect(page).to_have_url(re.compile(r"/login"))

    page.goto(link)  # the link works once
    expect(page.get_by_role("link", name=exactly(lang, "Ask for a new link"))).to_be_visible()

    sign_in(page, service, lang, user.login, NEW_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Enter the code from your app"))
    assert app_code(user.secret)  # the authenticator is unchanged: the code is still asked


def test_scenario_admin_recovery_pass(page, service, lang, person, tmp_path):
    account = f"Pass-{lang}"
    admin = service.make_account(account, person("omar"))
    user = enrol(page, service, lang, person("lisa"), tmp_path, account=account)

    # The admin's own second factor, set up just now: no code is asked on the pass form.
    enrol(page, service, lang, admin, tmp_path, new_user=False, sign_out_after=False)
    _open_users(page, lang)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=user.login))
    row.get_by_role("link", name=re.sub(r"<[^>]+>", "", say(
        lang, 'One-time sign-in pass<span class="visually-hidden"> for %(login)s</span>', login=user.login))).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(lang, "One-time sign-in pass for %(login)s", login=user.login))
    look(page, lang, "recovery-pass-issue")
    page.get_by_label(say(lang, "Reason")).fill("Lost phone; confirmed by a video call")
    page.get_by_label(say(lang, "Your own password")).fill(PASSWORD)
    page.get_by_role("button", name=exactly(lang, "Issue a one-time sign-in pass")).click()
    shown = page.locator("#recovery-pass")
    expect(shown).to_have_text(re.compile(r"^\s*\w{4}-\w{4}-\w{4}-\w{4}\s*$"))
    recovery_pass = shown.inner_text().strip()
    look(page, lang, "recovery-pass-shown")
    page.goto(page.url)  # shown once: opening the address again asks anew, it does not show the pass
    expect(page.locator("#recovery-pass")).to_have_count(0)
    _open_users(page, lang)
    sign_out(page, lang)

    sign_in(page, service, lang, user.login)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Enter the code from your app"))
    page.get_by_role("link", name=exactly(lang, "I have a one-time sign-in pass from my admin")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "One-time sign-in pass"))
    look(page, lang, "recovery-pass-use")
    page.get_by_label(say(lang, "One-time sign-in pass from your admin")).fill(recovery_pass)
    page.get_by_role("button", name=exactly(lang, "Sign in")).click()
    page.wait_for_url(re.compile(r"/security/recover$"))
    # The page speaks of the pass, not of a backup code.
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "You signed in with a one-time sign-in pass"))
    # What to do now, not the backup-code sign-in's "Lost your phone?".
    expect(page.get_by_role("heading", level=2, name=say(lang, "Set up a new authenticator"))).to_be_visible()
    expect(page.get_by_role("heading", name=say(lang, "Lost your phone?"))).to_have_count(0)
    look(page, lang, "recovery-pass-recover")
    page.get_by_role("button", name=exactly(lang, "Register a new authenticator")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Register your new authenticator"))
    look(page, lang, "recovery-pass-new-authenticator")
    seen, codes = scan_and_confirm(page, lang, tmp_path)
    assert seen.secret != user.secret and len(codes) == 10
    leave_codes_page(page, lang)
    assert service.show(user.login)["two_factor_enabled"] is True


def test_scenario_two_factor_deadline(page, service, lang, person):
    account = f"Deadline-{lang}"
    admin = service.make_account(account, person("hugo"))
    newcomer = service.make_user(person("ida"), account=account)
    deadline = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=10)

    sign_in(page, service, lang, admin)
    _open_users(page, lang)
    page.get_by_label(say(lang, "Require two-factor authentication from (date)")).fill(deadline.isoformat())
    page.get_by_role("button", name=exactly(lang, "Save policy")).click()
    expect(page.get_by_role("status").filter(has_text=say(
        lang, "From %(date)s everyone in this account needs two-factor authentication.",
        date=shown_date(lang, deadline)))).to_be_visible()
    look(page, lang, "users-deadline", desktop=True)
    sign_out(page, lang)

    sign_in(page, service, lang, newcomer)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))
    banner = page.locator("#deadline-banner")
    expect(banner).to_be_visible()
    expect(banner.get_by_role("link", name=exactly(lang, "Set it up"))).to_be_visible()
    assert str(deadline.day) in banner.inner_text()
    look(page, lang, "security-deadline-banner")
