"""What a person does in the pages, and the outside tools that read what the pages show.

Elements are found by role and accessible name, in the page's language: `say()` gives the
words a Russian page uses from the Russian catalogue, and fails when a message has none.
"""

from __future__ import annotations

import functools
import gettext
import re
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.pofile import read_po

from .conftest import PASSWORD, ROOT

LOCALE = ROOT / "src" / "twostep" / "locale"
BACKUP_CODE = re.compile(r"\b[2-9a-z]{4}-[2-9a-z]{4}-[2-9a-z]{4}-[2-9a-z]{4}\b")
STEP = 30  # seconds per TOTP time step (RFC 6238)


# Words ------------------------------------------------------------------------------------

@functools.cache
def _catalogue(lang: str):
    with (LOCALE / lang / "LC_MESSAGES" / "django.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def _translated(lang: str, msgid: str):
    message = _catalogue(lang).get(msgid)
    assert message is not None and message.string and all(message.string) and not message.fuzzy, \
        f"no {lang} translation for {msgid!r}"
    return message.string


def say(lang: str, text: str, **values) -> str:
    """Return `text` as the pages show it in `lang` (placeholders filled from `values`)."""
    if lang != "en":
        text = _translated(lang, text)
    return text % values if values else text


def shown_date(lang: str, day) -> str:
    """Return a date as the pages write it in a sentence in `lang` ("16 December 2026")."""
    from django.utils import formats, translation

    with translation.override(lang):
        return formats.date_format(day, "DATE_FORMAT")


def say_count(lang: str, singular: str, plural: str, count: int, **values) -> str:
    """Return the form of a counted message that the pages show for `count` in `lang`."""
    values = {"counter": count, **values}
    if lang == "en":
        return (singular if count == 1 else plural) % values
    forms = _translated(lang, singular)
    return forms[gettext.c2py(_catalogue(lang).plural_expr)(count)] % values


def exactly(lang: str, text: str, **values) -> re.Pattern:
    """A pattern matching the whole of `text` as `say()` gives it (for exact accessible names)."""
    return re.compile(rf"^\s*{re.escape(say(lang, text, **values))}\s*$")


# Codes ------------------------------------------------------------------------------------

def app_code(secret: str, *, ahead: int = 0) -> str:
    """Compute the app's code with oathtool, `ahead` seconds from now (as a phone would show it)."""
    moment = int(time.time()) + ahead
    result = subprocess.run(["oathtool", "--totp", "-b", "--now", f"@{moment}", secret],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def wrong_app_code(secret: str) -> str:
    """A six-digit code that is none of the codes the server would accept now."""
    near = {app_code(secret, ahead=offset) for offset in range(-2 * STEP, 3 * STEP, STEP)}
    return next(code for code in (f"{n:06d}" for n in range(100000, 1000000, 7919)) if code not in near)


@dataclass
class Provisioning:
    """What the QR code says: `otpauth://totp/ISSUER:LOGIN?secret=…&issuer=…`."""

    uri: str
    issuer: str
    label: str
    secret: str
    query: dict = field(default_factory=dict)


def read_qr(page, folder: Path) -> Provisioning:
    """Photograph the QR code on the page and decode it with zbarimg, as a phone camera would."""
    picture = folder / f"qr-{time.monotonic_ns()}.png"
    qr = page.get_by_role("img", name=re.compile("QR"))
    qr.screenshot(path=str(picture))
    result = subprocess.run(["zbarimg", "--raw", "-q", str(picture)], capture_output=True, text=True)
    assert result.returncode == 0, f"zbarimg could not read the QR code: {result.stderr}"
    uri = result.stdout.strip()
    parts = urllib.parse.urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp"), uri
    query = dict(urllib.parse.parse_qsl(parts.query))
    label = urllib.parse.unquote(parts.path.lstrip("/"))
    return Provisioning(uri=uri, issuer=query.get("issuer", ""), label=label,
                        secret=query["secret"], query=query)


def codes_on_page(page) -> list[str]:
    """The backup codes the page shows, in order."""
    return BACKUP_CODE.findall(page.get_by_role("main").inner_text())


# Steps ------------------------------------------------------------------------------------

def submit(page, button) -> None:
    """Press a form's button and wait for the page that answers it.

    Waiting for the new document (not for some text) matters when the answer repeats the last
    page, as a second wrong code does.
    """
    with page.expect_navigation():
        button.click()


def sign_in(page, service, lang: str, login: str, password: str = PASSWORD) -> None:
    """Open the sign-in page and give login and password."""
    page.goto(f"{service.url}/login")
    page.get_by_label(say(lang, "Login"), exact=True).fill(login)
    page.get_by_label(say(lang, "Password"), exact=True).fill(password)
    submit(page, page.get_by_role("button", name=exactly(lang, "Continue")))


def sign_out(page, lang: str) -> None:
    page.get_by_role("button", name=exactly(lang, "Sign out")).click()
    page.wait_for_url(re.compile(r"/login$"))


def give_password_if_asked(page, lang: str, scope=None) -> bool:
    """Type the password where a change asks for it again; tell whether it was asked.

    Minutes after signing in, the security page asks once ("Confirm it is you") before its
    changes; other pages ask in the form itself.
    """
    confirm = page.get_by_role("form", name=say(lang, "Confirm it is you"))
    if confirm.count():
        confirm.get_by_label(say(lang, "Your password"), exact=True).fill(PASSWORD)
        submit(page, confirm.get_by_role("button", name=exactly(lang, "Confirm")))
        return True
    field_ = (scope or page).get_by_label(say(lang, "Your password"), exact=True)
    if field_.count() and field_.is_visible():
        field_.fill(PASSWORD)
        return True
    return False


def enter_app_code(page, lang: str, code: str, *, button: str = "Sign in") -> None:
    page.get_by_label(say(lang, "Code from your app"), exact=True).fill(code)
    submit(page, page.get_by_role("button", name=exactly(lang, button)))


def enter_backup_code(page, lang: str, code: str) -> None:
    page.get_by_label(say(lang, "Backup code"), exact=True).fill(code)
    submit(page, page.get_by_role("button", name=exactly(lang, "Sign in")))


def two_factor_section(page, lang: str):
    return page.get_by_role("region", name=re.compile(re.escape(say(lang, "Two-factor authentication"))))


@dataclass
class Enrolled:
    login: str
    secret: str
    codes: list[str]


def switch_on(page, lang: str) -> None:
    """From the Account security page: switch 2FA on (the password if asked) to reach the QR code."""
    give_password_if_asked(page, lang, two_factor_section(page, lang))
    two_factor_section(page, lang).get_by_role("button", name=exactly(lang, "Switch on")).click()
    page.get_by_role("heading", level=1, name=say(lang, "Set up your authenticator app")).wait_for()


def scan_and_confirm(page, lang: str, folder: Path) -> tuple[Provisioning, list[str]]:
    """On the QR page: read the QR code, type the app's code, and collect the codes shown."""
    seen = read_qr(page, folder)
    enter_app_code(page, lang, app_code(seen.secret), button="Confirm")
    page.get_by_role("heading", level=1, name=say(lang, "Your backup codes")).wait_for()
    return seen, codes_on_page(page)


def leave_codes_page(page, lang: str) -> None:
    page.get_by_label(say(lang, "I have saved my backup codes")).check()
    page.get_by_role("button", name=exactly(lang, "Continue")).click()
    page.get_by_role("heading", level=1, name=say(lang, "Account security")).wait_for()


def enrol(page, service, lang: str, login: str, folder: Path, *, account: str = "Acme",
          new_user: bool = True, sign_out_after: bool = True) -> Enrolled:
    """Sign in as `login` (made first if `new_user`), switch 2FA on with the QR code, keep the codes."""
    if new_user:
        service.make_user(login, account=account)
    sign_in(page, service, lang, login)
    page.get_by_role("heading", level=1, name=say(lang, "Account security")).wait_for()
    switch_on(page, lang)
    seen, codes = scan_and_confirm(page, lang, folder)
    leave_codes_page(page, lang)
    if sign_out_after:
        sign_out(page, lang)
    return Enrolled(login=login, secret=seen.secret, codes=codes)
