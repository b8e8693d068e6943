"""Backup codes: making new ones, saving them as a file, printing them on one sheet."""

from __future__ import annotations

import subprocess

from playwright.sync_api import expect

from .conftest import SHOTS, look
from .steps import (
    codes_on_page,
    enrol,
    enter_backup_code,
    exactly,
    give_password_if_asked,
    leave_codes_page,
    say,
    sign_in,
    sign_out,
    two_factor_section,
)


def _new_codes(page, lang) -> list[str]:
    """Generate new codes from the Account security page; return the codes the page shows."""
    generate = page.get_by_role("button", name=exactly(lang, "Generate new codes"))
    give_password_if_asked(page, lang, two_factor_section(page, lang).locator("form").filter(has=generate))
    with page.expect_response(lambda r: r.url.endswith("/security/backup-codes/new")) as answer:
        generate.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Your backup codes"))
    # Shown until saved, in this browser only: neither the browser nor a proxy may keep the page.
    assert "no-store" in answer.value.headers["cache-control"]
    return codes_on_page(page)


def test_scenario_generate_new_codes(page, service, lang, person, tmp_path):
    me = enrol(page, service, lang, person("gleb"), tmp_path)
    sign_in(page, service, lang, me.login)
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).click()
    enter_backup_code(page, lang, me.codes[3])
    page.get_by_role("link", name=exactly(lang, "Not now")).click()

    new = _new_codes(page, lang)
    assert len(new) == 10 and not set(new) & set(me.codes)
    look(page, lang, "codes-regenerated")
    leave_codes_page(page, lang)
    sign_out(page, lang)

    sign_in(page, service, lang, me.login)
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).click()
    enter_backup_code(page, lang, me.codes[5])
    expect(page.get_by_text(say(lang, "That code is not right. Check it and try again."), exact=True)).to_be_visible()
    look(page, lang, "sign-in-backup-code-wrong")
    enter_backup_code(page, lang, new[0])
    expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "You signed in with a backup code"))


def test_scenario_download_codes(page, service, lang, person, tmp_path):
    me = enrol(page, service, lang, person("hana"), tmp_path, sign_out_after=False)
    shown = _new_codes(page, lang)

    with page.expect_download() as started:
        page.get_by_role("link", name=exactly(lang, "Download (.txt)")).click()
    download = started.value
    name = download.suggested_filename
    assert name.endswith(".txt") and "twostep" in name and me.login in name, name
    saved = tmp_path / name
    download.save_as(saved)
    text = saved.read_bytes().decode("utf-8")  # strict: the file is UTF-8
    for code in shown:
        assert code in text
    assert me.login in text and "Acme" in text
    assert say(lang, "%(name)s — backup codes", name="twostep") in text


def test_scenario_print_codes(page, service, lang, person, tmp_path):
    enrol(page, service, lang, person("ivan"), tmp_path, sign_out_after=False)
    shown = _new_codes(page, lang)
    expect(page.get_by_role("button", name=exactly(lang, "Print"))).to_be_visible()

    page.emulate_media(media="print")
    pdf = tmp_path / "codes.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for code in shown:
        assert code in text
    assert say(lang, "%(name)s — backup codes", name="twostep") in text
    assert say(lang, "I have saved my backup codes") not in text  # the page furniture stays off paper
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages == 1, f"the codes sheet prints on {pages} pages"

    SHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf), str(SHOTS / f"codes-print-{lang}")],
                   check=True)


def test_scenario_warned_when_codes_run_low(page, returning_service, lang, person, tmp_path):
    service = returning_service  # warns from 9 codes left
    me = enrol(page, service, lang, person("vera"), tmp_path)
    sign_in(page, service, lang, me.login)
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).click()
    enter_backup_code(page, lang, me.codes[9])

    expect(page.get_by_text(say(lang, "You are running out of backup codes. Register a new authenticator below "
                                      "— you get a fresh set of codes with it — or make new codes on the "
                                      "security page."))).to_be_visible()
    look(page, lang, "recover-low")
    page.get_by_role("link", name=exactly(lang, "Not now")).click()
    section = two_factor_section(page, lang)
    expect(section.get_by_text(say(lang, "You are running out of backup codes. Make new ones and keep them "
                                         "somewhere safe: without them, losing your phone locks you out."))
           ).to_be_visible()
    look(page, lang, "security-low-codes")

    new = _new_codes(page, lang)  # the password is asked here: signed in "minutes ago"
    assert len(new) == 10
    leave_codes_page(page, lang)
    expect(page.get_by_text(say(lang, "You are running out of backup codes. Make new ones and keep them "
                                      "somewhere safe: without them, losing your phone locks you out."))
           ).to_have_count(0)

