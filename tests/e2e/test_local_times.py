"""Times in the reader's own zone and browsers named as a person would, in both languages.

The browser here is in Vladivostok (UTC+10) on an Android phone: the pages learn the zone from
it once, remember it, show it next to every time, and let it be changed; the activity lists
say "Chrome on Android", never the raw User-Agent header.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from .conftest import PHONE, look
from .steps import enrol, exactly, say, sign_in

ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0.0.0 Mobile Safari/537.36")
ZONE = "Asia/Vladivostok"


@pytest.fixture
def phone_far_east(browser, lang):
    """A phone-sized Chrome on Android in Vladivostok; fails on a CSP violation or script error."""
    context = browser.new_context(locale={"en": "en-US", "ru": "ru-RU"}[lang], viewport=PHONE,
                                  timezone_id=ZONE, user_agent=ANDROID, accept_downloads=True)
    context.set_default_timeout(10_000)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    opened.on("pageerror", lambda e: problems.append(str(e)))
    opened.on("response", lambda r: problems.append(f"HTTP {r.status} from {r.url}") if r.status >= 500 else None)
    yield opened
    context.close()
    assert not problems, f"the page broke its CSP, threw, or the server failed: {problems}"


def test_scenario_times_in_my_zone_and_my_browser_by_name(phone_far_east, service, lang, person, tmp_path):
    page = phone_far_east
    enrol(page, service, lang, person("yuri"), tmp_path, sign_out_after=False)

    # The zone came from the browser, without a question, and stays with the user.
    page.goto(f"{service.url}/security")
    events = page.get_by_role("region", name=say(lang, "Recent security events"))
    expect(events.locator("time").first).to_contain_text(f"({ZONE})")
    assert "(UTC)" not in page.get_by_role("main").inner_text()
    expect(page.get_by_role("region", name=say(lang, "Your sessions"))).to_contain_text(
        say(lang, "%(browser)s on %(system)s", browser="Chrome", system="Android"))

    page.get_by_role("link", name=exactly(lang, "See all security activity")).click()
    rows = page.locator("ul.events > li")
    expect(rows.first).to_contain_text(f"({ZONE})")
    text = page.get_by_role("main").inner_text()
    assert "Mozilla/5.0" not in text and "AppleWebKit" not in text
    expect(rows.first).to_contain_text(say(lang, "%(browser)s on %(system)s", browser="Chrome", system="Android"))
    # The account was made with the command: named so, in the reader's language.
    expect(page.get_by_role("main")).to_contain_text(say(lang, "the twostep command line"))
    look(page, lang, "times-activity-local")

    # Travelling: choose another zone; every time follows.
    page.get_by_role("link", name=exactly(lang, "Change the time zone")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Time zone"))
    look(page, lang, "times-choose-zone")
    page.get_by_label(say(lang, "Time zone"), exact=True).select_option("Europe/Moscow")
    page.get_by_role("button", name=exactly(lang, "Save the time zone")).click()
    expect(page.get_by_role("status")).to_have_text(say(lang, "Times are now shown in %(zone)s.",
                                                         zone="Europe/Moscow"))
    expect(page.locator("ul.events > li").first).to_contain_text("(Europe/Moscow)")


def test_scenario_account_log_and_csv_in_my_language(phone_far_east, service, lang, person, tmp_path):
    page = phone_far_east
    account = f"Zone-{lang}"
    admin = service.make_account(account, person("zoya"))
    sign_in(page, service, lang, admin)
    page.goto(f"{service.url}/account/activity")
    rows = page.locator("ul.events > li")
    expect(rows.first).to_contain_text(f"({ZONE})")
    assert "Mozilla/5.0" not in page.get_by_role("main").inner_text()
    look(page, lang, "times-account-log")

    with page.expect_download() as waiting:
        page.get_by_role("link", name=exactly(lang, "Export CSV")).click()
    table = list(csv.reader(io.StringIO(open(waiting.value.path(), encoding="utf-8-sig").read())))  # noqa: SIM115
    assert table[0] == [say(lang, column) for column in (
        "time (UTC)", "event type", "description", "user", "done by", "IP address", "browser", "user agent")]
    sign_ins = [row for row in table[1:] if row[1] == "sign_in"]
    assert sign_ins and sign_ins[0][7] == ANDROID  # the raw header kept for the record
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sign_ins[0][0])
