"""The backup-code field on a narrow phone, and a code used before told apart from a typo.

Issue: at 360 px the field cut the code off, and a used code got "not right, check for typos".
"""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import NARROWEST, look
from .steps import enrol, exactly, say, sign_in, sign_out, submit


def _use_backup_code(page, lang, code: str) -> None:
    field = page.get_by_label(say(lang, "Backup code"), exact=True)
    field.fill(code)
    # The whole code is in view while typed: the field does not scroll it sideways.
    assert field.evaluate("f => f.scrollWidth <= f.clientWidth"), "the backup code is cut off"
    submit(page, page.get_by_role("button", name=exactly(lang, "Sign in")))


def test_scenario_used_backup_code_is_told_apart(page, service, lang, person, tmp_path):
    me = enrol(page, service, lang, person("vera"), tmp_path)
    page.set_viewport_size({"width": NARROWEST, "height": 740})

    sign_in(page, service, lang, me.login)
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).click()
    _use_backup_code(page, lang, me.codes[0])
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "You signed in with a backup code"))
    sign_out(page, lang)

    sign_in(page, service, lang, me.login)
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).click()
    _use_backup_code(page, lang, me.codes[0])
    used = say(lang, "That backup code was already used: each code works once. Try another of your codes.")
    expect(page.get_by_text(used, exact=True)).to_be_visible()
    expect(page.get_by_text(say(lang, "That is not a backup code: check it for typos."))).to_have_count(0)
    look(page, lang, "sign-in-backup-code-used")

    # Another of the codes still works.
    _use_backup_code(page, lang, me.codes[1])
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "You signed in with a backup code"))
