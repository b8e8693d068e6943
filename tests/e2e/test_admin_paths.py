"""The admin's paths: the policy that must not trap its admin, dates and numbers that survive
either language, the gentle way back in for a locked-out colleague, and errors kept in sight.
"""

from __future__ import annotations

import datetime
import re

from playwright.sync_api import expect

from .conftest import DESKTOP, PASSWORD, PHONE, look
from .steps import (
    enrol,
    enter_app_code,
    exactly,
    give_password_if_asked,
    leave_codes_page,
    say,
    scan_and_confirm,
    shown_date,
    sign_in,
    sign_out,
    two_factor_section,
    wrong_app_code,
)

OTHER = {"en": "ru", "ru": "en"}
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


def _open_users(page, lang):
    page.get_by_role("navigation", name=say(lang, "Main")).get_by_role(
        "link", name=exactly(lang, "Users")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(say(lang, "Users of %(account)s", account=""))


def _visible_name(message: str) -> str:
    """A link's accessible name from a message with markup in it (the hidden "for LOGIN" included)."""
    return re.sub(r"<[^>]+>", "", message)


def _summary(page):
    return page.locator("[data-error-summary]")


def _expect_summary_in_sight(page):
    """The error summary is focused and on screen, at the top of the page the phone shows."""
    summary = _summary(page)
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    box = summary.bounding_box()
    assert box is not None and -1 <= box["y"] < page.viewport_size["height"] / 2, box
    return summary


def _follow_summary_link(page, field):
    """Tap the summary's link to a field: the field gets the focus and is on screen."""
    field_id = field.get_attribute("id")
    _summary(page).locator(f'a[href="#{field_id}"]').click()
    expect(field).to_be_focused()
    expect(field).to_be_in_viewport()


def test_scenario_admin_without_2fa_is_asked_to_set_up_first(page, service, lang, person, tmp_path):
    account = f"Own-{lang}"
    admin = service.make_account(account, person("vera"))
    colleague = service.make_user(person("yuri"), account=account)
    sign_in(page, service, lang, admin)
    _open_users(page, lang)
    require = page.get_by_label(say(lang, "Require two-factor authentication for everyone in this account"))
    # The hint tells the truth: it applies at once, to people signed in now too.
    expect(page.get_by_text(say(
        lang, "From the moment you save, everyone without an authenticator must set one up before going on: "
              "people signed in now on their next page, everyone else when they sign in."))).to_be_visible()
    require.check()
    page.get_by_role("button", name=exactly(lang, "Save policy")).click()

    # Refused, on the same page, with the reason in sight and the way to set up; not held anywhere.
    expect(page.get_by_role("heading", level=1)).to_contain_text(say(lang, "Users of %(account)s", account=""))
    summary = _expect_summary_in_sight(page)
    expect(summary).to_contain_text(say(
        lang, "Set up two-factor authentication for yourself first: requiring it now would send you to the "
              "setup page too, at once."))
    look(page, lang, "admin-policy-own-first")
    _follow_summary_link(page, require)
    page.get_by_role("navigation", name=say(lang, "Main")).get_by_role(
        "link", name=exactly(lang, "Account security")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))
    _open_users(page, lang)
    page.get_by_role("link", name=exactly(lang, "Set up your own authenticator")).click()
    page.get_by_role("button", name=exactly(lang, "Continue")).click()
    scan_and_confirm(page, lang, tmp_path)
    leave_codes_page(page, lang)

    # With the admin's own 2FA on, the policy is saved, and the admin goes on using the pages.
    _open_users(page, lang)
    page.get_by_label(say(lang, "Require two-factor authentication for everyone in this account")).check()
    page.get_by_role("button", name=exactly(lang, "Save policy")).click()
    expect(page.get_by_role("status")).to_have_text(
        say(lang, "Everyone in this account now needs two-factor authentication."))
    _open_users(page, lang)
    sign_out(page, lang)

    # A colleague held on the setup page can always leave: another language, or signing out.
    sign_in(page, service, lang, colleague)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Set up two-factor authentication"))
    expect(page.get_by_role("navigation", name=say(lang, "Main"))).to_have_count(0)  # its links led back here
    expect(page.get_by_role("link", name=exactly(lang, "Cancel"))).to_have_count(0)
    look(page, lang, "setup-forced-way-out")
    other = OTHER[lang]
    page.get_by_role("button", name=LANGUAGE_NAMES[other]).click()
    expect(page.locator("html")).to_have_attribute("lang", other)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(other, "Set up two-factor authentication"))
    page.get_by_role("button", name=exactly(other, "Sign out and set up later")).click()
    page.wait_for_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(say(other, "Sign in"))


def test_scenario_dates_and_numbers_round_trip(page, service, lang, person):
    account = f"Dates-{lang}"
    admin = service.make_account(account, person("zoya"))
    deadline = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=30)
    sign_in(page, service, lang, admin)
    _open_users(page, lang)

    date_field = page.get_by_label(say(lang, "Require two-factor authentication from (date)"))
    days_field = page.get_by_label(say(lang, "Days a browser may skip the code after a full sign-in"))
    save = page.get_by_role("button", name=exactly(lang, "Save policy"))
    date_field.fill(deadline.isoformat())
    save.click()
    deadline_saved = say(lang, "From %(date)s everyone in this account needs two-factor authentication.",
                         date=shown_date(lang, deadline))
    expect(page.get_by_role("status").filter(has_text=deadline_saved)).to_be_visible()
    expect(date_field).to_have_value(deadline.isoformat())
    save.click()  # saved again as the page shows it: the deadline stays, and nothing changed
    expect(page.get_by_role("status").filter(
        has_text=say(lang, "The policy was saved; nothing in it changed."))).to_be_visible()
    page.reload()
    expect(date_field).to_have_value(deadline.isoformat())
    look(page, lang, "users-deadline-kept")

    days_field.fill("30")
    save.click()
    expect(page.get_by_role("status").filter(has_text="30")).to_be_visible()
    expect(days_field).to_have_value("30")
    expect(date_field).to_have_value(deadline.isoformat())

    # A refused date comes back as typed, under its field, with the summary leading to it; the
    # days typed beside it are kept on the page and saved only with a right date: all or nothing.
    date_field.fill("2001-01-01")
    days_field.fill("7")
    save.click()
    _expect_summary_in_sight(page)
    expect(date_field).to_have_value("2001-01-01")
    expect(days_field).to_have_value("7")
    _follow_summary_link(page, date_field)
    look(page, lang, "users-deadline-refused")
    page.goto(f"{service.url}/account/users")
    expect(days_field).to_have_value("30")
    expect(date_field).to_have_value(deadline.isoformat())

    # The activity filter's dates survive the round trip too.
    page.goto(f"{service.url}/account/activity")
    since = page.get_by_role("search").locator("input[name=since]")
    since.fill(deadline.isoformat())
    page.get_by_role("button", name=exactly(lang, "Show")).click()
    expect(since).to_have_value(deadline.isoformat())


def test_scenario_locked_out_colleague_gets_a_pass_from_their_row(page, service, lang, person, tmp_path):
    account = f"Row-{lang}"
    admin = service.make_account(account, person("inna"))
    colleague = enrol(page, service, lang, person("oleg"), tmp_path, account=account)
    other = enrol(page, service, lang, person("raya"), tmp_path, account=account)
    enrol(page, service, lang, admin, tmp_path, new_user=False, sign_out_after=False)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    _open_users(page, lang)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=colleague.login))
    pass_link = row.get_by_role("link", name=_visible_name(say(
        lang, 'One-time sign-in pass<span class="visually-hidden"> for %(login)s</span>', login=colleague.login)))
    off_link = row.get_by_role("link", name=_visible_name(say(
        lang, 'Switch off two-factor authentication<span class="visually-hidden"> for %(login)s</span>', login=colleague.login)))
    expect(pass_link).to_be_visible()
    expect(off_link).to_be_visible()
    assert pass_link.bounding_box()["y"] <= off_link.bounding_box()["y"]  # the gentle one first
    assert pass_link.evaluate("(a, b) => !!(a.compareDocumentPosition(b) & 4)", off_link.element_handle())
    row.scroll_into_view_if_needed()
    look(page, lang, "users-row-actions", desktop=True)
    page.set_viewport_size(DESKTOP)  # on a desktop the actions fit the table, nothing hides to the right
    assert page.evaluate("(w => w.scrollWidth <= w.clientWidth)(document.querySelector('.table-wrap'))")
    page.set_viewport_size(PHONE)
    pass_link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(lang, "One-time sign-in pass for %(login)s", login=colleague.login))

    # A wrong password: the summary is in sight, the reason typed is kept, the password is not.
    reason = page.get_by_label(say(lang, "Reason"))
    password = page.get_by_label(say(lang, "Your own password"))
    reason.fill("Lost phone; confirmed by a video call")
    password.fill("not " + PASSWORD)
    page.get_by_role("button", name=exactly(lang, "Issue a one-time sign-in pass")).click()
    _expect_summary_in_sight(page)
    expect(reason).to_have_value("Lost phone; confirmed by a video call")
    expect(password).to_have_value("")
    _follow_summary_link(page, password)
    password.fill(PASSWORD)
    page.get_by_role("button", name=exactly(lang, "Issue a one-time sign-in pass")).click()

    shown = page.locator("#recovery-pass")
    expect(shown).to_have_text(re.compile(r"^\s*\w{4}-\w{4}-\w{4}-\w{4}\s*$"))
    recovery_pass = shown.inner_text().strip()
    expect(page.get_by_role("heading", level=2)).to_have_text(
        say(lang, "What to tell %(login)s", login=colleague.login))
    copy = page.get_by_role("button", name=exactly(lang, "Copy the pass"))
    expect(copy).to_be_visible()
    copy.click()
    expect(page.locator("[data-copy-text]")).to_have_text(say(lang, "Copied"))  # its name changes
    assert page.evaluate("navigator.clipboard.readText()") == recovery_pass
    look(page, lang, "recovery-pass-what-to-tell")

    # The harder way, for another colleague: switching their 2FA off, from their row too.
    page.get_by_role("link", name=exactly(lang, "Back to users")).click()
    page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=other.login)).get_by_role(
        "link", name=_visible_name(say(lang, 'Switch off two-factor authentication<span class="visually-hidden"> for %(login)s</span>',
                                       login=other.login))).click()
    page.get_by_label(say(lang, "Reason")).fill("New phone, old one reset")
    page.get_by_label(say(lang, "Your own password")).fill(PASSWORD)
    page.get_by_role("button", name=exactly(lang, "Switch off two-factor authentication")).click()
    expect(page.get_by_role("status")).to_have_text(say(
        lang, "Two-factor authentication is off for %(login)s. They have been told by e-mail.", login=other.login))
    sign_out(page, lang)

    sign_in(page, service, lang, colleague.login)
    page.get_by_role("link", name=exactly(lang, "I have a one-time sign-in pass from my admin")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "One-time sign-in pass"))
    page.get_by_label(say(lang, "One-time sign-in pass from your admin")).fill(recovery_pass)
    page.get_by_role("button", name=exactly(lang, "Sign in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(lang, "You signed in with a one-time sign-in pass"))
    # Registering the new authenticator is the way on, not one of two equal choices.
    expect(page.get_by_role("link", name=exactly(lang, "Not now"))).to_have_count(0)
    look(page, lang, "recovery-pass-only-way-on")
    page.get_by_role("button", name=exactly(lang, "Register a new authenticator")).click()
    scan_and_confirm(page, lang, tmp_path)
    leave_codes_page(page, lang)
    sign_out(page, lang)

    # Switched off by the admin: the person's security page says who, when and why, and leads back.
    sign_in(page, service, lang, other.login)
    notice = page.locator("#switched-off")
    expect(notice).to_contain_text(admin)
    expect(notice).to_contain_text("New phone, old one reset")
    expect(two_factor_section(page, lang).get_by_role("button", name=exactly(lang, "Switch on"))).to_be_visible()
    look(page, lang, "security-switched-off-by-admin")


def test_scenario_errors_are_in_sight_on_a_phone(page, service, lang, person, tmp_path):
    user = enrol(page, service, lang, person("lena"), tmp_path, sign_out_after=False)
    section = two_factor_section(page, lang)
    section.get_by_text(exactly(lang, "Switch off")).click()
    switch_off = section.locator("form[action$='/security/disable']")
    # Just after enrolling the password is fresh: the form asks only for a code.
    give_password_if_asked(page, lang, switch_off)
    code = switch_off.get_by_label(say(lang, "A current code from your app, or a backup code"))
    code.fill(wrong_app_code(user.secret))
    section.get_by_role("button", name=exactly(lang, "Switch off two-factor authentication")).click()

    # The answer opens at the top, but the summary there is focused and names the wrong field.
    summary = _expect_summary_in_sight(page)
    expect(summary).to_contain_text(say(lang, "That code is not right. Check it and try again."))
    password = switch_off.get_by_label(say(lang, "Your password"), exact=True)
    if password.count():
        expect(password).to_have_value("")  # secrets are never sent back
    expect(code).to_have_value("")
    look(page, lang, "security-switch-off-wrong-code")
    _follow_summary_link(page, code)
    sign_out(page, lang)

    # The sign-in pages share the summary.
    sign_in(page, service, lang, user.login)
    enter_app_code(page, lang, wrong_app_code(user.secret))
    expect(_expect_summary_in_sight(page)).to_contain_text(
        say(lang, "That code is not right. Check it and try again."))
    look(page, lang, "sign-in-wrong-code-summary")
