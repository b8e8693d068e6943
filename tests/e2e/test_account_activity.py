"""Security activity: a user reads their own events; an admin filters the account's log and exports it."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import expect

from .conftest import look
from .steps import STEP, app_code, enrol, enter_app_code, exactly, say, sign_in, sign_out


def test_scenario_security_activity(page, service, lang, person, tmp_path):
    account = f"Log-{lang}"
    admin = service.make_account(account, person("ines"))
    anna = enrol(page, service, lang, person("anna"), tmp_path, account=account)
    bruno = service.make_user(person("bruno"), account=account)
    sign_in(page, service, lang, bruno)
    sign_out(page, lang)

    # The user: her own events, newest first, on their own page.
    sign_in(page, service, lang, anna.login)
    enter_app_code(page, lang, app_code(anna.secret, ahead=STEP))
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Account security"))
    page.get_by_role("link", name=exactly(lang, "See all security activity")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Security activity"))
    events = page.locator("ul.events > li")
    expect(events.first).to_be_visible()
    assert events.count() >= 3  # created, 2FA on, backup codes, sign-ins
    assert bruno not in page.get_by_role("main").inner_text()
    # Saying the backup codes are kept is on record too, in the one description.
    saved = say(lang, "Confirmed that the new backup codes are saved")
    expect(page.locator("ul.events")).to_contain_text(saved)
    pager = page.get_by_role("navigation", name=say(lang, "Pages"))
    expect(pager.get_by_role("link")).to_have_count(0)  # one page: nothing newer, nothing older
    look(page, lang, "activity-own", desktop=True)
    sign_out(page, lang)

    # The admin: the account's log, filtered by a user and a type, then the CSV of it.
    sign_in(page, service, lang, admin)
    page.get_by_role("navigation", name=say(lang, "Main")).get_by_role(
        "link", name=exactly(lang, "Users")).click()
    page.get_by_role("link", name=exactly(lang, "Security activity of the account (filter, export CSV)")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(lang, "Security activity of %(account)s", account=account))
    expect(page.locator("ul.events")).to_contain_text(bruno)
    expect(page.locator("ul.events")).to_contain_text(saved)
    look(page, lang, "activity-account", desktop=True)

    page.get_by_label(re.compile("^" + re.escape(say(lang, "User (login)")))).fill(anna.login)
    page.get_by_label(re.compile("^" + re.escape(say(lang, "Event")) + r"(\s|$)")).select_option("sign_in")
    page.get_by_role("button", name=exactly(lang, "Show")).click()
    page.wait_for_url(re.compile(r"type=sign_in"))
    rows = page.locator("ul.events > li")
    expect(rows.first).to_contain_text(anna.login)
    assert rows.count() >= 2  # the sign-in that switched 2FA on, and the one with a code
    for text in rows.all_inner_texts():
        assert text.startswith(anna.login + ":"), text
    look(page, lang, "activity-account-filtered")

    with page.expect_download() as waiting:
        page.get_by_role("link", name=exactly(lang, "Export CSV")).click()
    download = waiting.value
    assert download.suggested_filename.endswith(".csv")
    table = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))  # noqa: SIM115
    assert table[0] == [say(lang, column) for column in (
        "time (UTC)", "event type", "description", "user", "done by", "IP address", "browser", "user agent")]
    assert len(table) - 1 == rows.count()
    assert {row[3] for row in table[1:]} == {anna.login}
    assert {row[1] for row in table[1:]} == {"sign_in"}
    assert not any(bruno in cell for row in table for cell in row)
