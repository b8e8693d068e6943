"""One vocabulary: every page a user and an admin meet names things with the words of docs/vocabulary.md."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import look
from .steps import enrol, exactly, say, sign_in, sign_out

# Names the glossary retired, as they could appear on a page in either language.
RETIRED = re.compile(r"2FA|2ФА|two-step|двухэтап|recovery pass|Recovery pass", re.IGNORECASE)


def _words_of(page) -> str:
    page.wait_for_load_state()
    return page.get_by_role("main").inner_text() + page.locator("footer").inner_text()


def test_scenario_one_name_for_each_thing(page, service, lang, person, tmp_path):
    me = enrol(page, service, lang, person("vlad"), tmp_path)
    seen: dict[str, str] = {}

    sign_in(page, service, lang, me.login)
    seen["code"] = _words_of(page)
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).click()
    seen["backup"] = _words_of(page)
    page.goto(f"{service.url}/login")

    admin = service.make_account(f"Words-{lang}", person("wanda"))
    sign_in(page, service, lang, admin)
    seen["security"] = _words_of(page)
    admin_link = page.get_by_role("link", name=exactly(
        lang, "Users of your account and the two-factor authentication policy"))
    expect(admin_link).to_be_visible()
    admin_link.click()
    seen["users"] = _words_of(page)
    expect(page.get_by_role("region", name=say(lang, "Two-factor authentication"))).to_be_visible()
    look(page, lang, "vocabulary-users")
    page.goto(f"{service.url}/account/activity")
    seen["log"] = _words_of(page)
    page.goto(f"{service.url}/security/activity")
    seen["activity"] = _words_of(page)
    sign_out(page, lang)

    for name, text in seen.items():
        found = RETIRED.findall(text)
        assert not found, f"the {name} page still says {found}"
    assert say(lang, "I have a one-time sign-in pass from my admin") in seen["code"]
    whole = say(lang, "Two-factor authentication")
    assert whole in seen["security"] and whole in seen["users"]
