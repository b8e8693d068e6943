"""Security keys and passkeys in Chromium, with its virtual authenticator over the DevTools protocol.

The service is reached as http://localhost:PORT: a WebAuthn RP ID must be a domain, and
localhost is the one a browser trusts over plain HTTP.
"""

from __future__ import annotations

import json
import re
import sqlite3
from types import SimpleNamespace

from .conftest import look
from .steps import codes_on_page, exactly, leave_codes_page, say, sign_in, sign_out


def at_localhost(service):
    return SimpleNamespace(url=service.url.replace("127.0.0.1", "localhost"))


def virtual_authenticator(page, *, transport: str = "usb") -> tuple:
    """Plug a CTAP2 authenticator with resident keys and user verification into the page's browser."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": transport, "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def heading(page, lang: str, text: str):
    page.get_by_role("heading", level=1, name=say(lang, text)).wait_for()


def add_key(page, lang: str, name: str, *, passkey: bool = False) -> None:
    """From the security page: add a key (a passkey if asked) and come back to the security page."""
    page.get_by_role("link", name=exactly(lang, "Add a security key or passkey")).click()
    heading(page, lang, "Add a security key or passkey")
    page.get_by_role("textbox", name=re.compile(rf"^{re.escape(say(lang, 'Name'))}(\s|$)")).fill(name)
    if passkey:
        page.get_by_label(say(lang, "Make it a passkey")).check()
    page.get_by_role("button", name=exactly(lang, "Continue")).click()
    with page.expect_navigation():
        page.get_by_role("button", name=exactly(lang, "Register it")).click()


def use_key(page, lang: str, button: str = "Use security key") -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=exactly(lang, button)).click()


def captured_credentials(page) -> list:
    """Record every credential the pages post, as the browser sent it."""
    seen: list = []

    def note(request):
        if request.method == "POST" and request.post_data and "credential=" in request.post_data:
            fields = dict(pair.split("=", 1) for pair in request.post_data.split("&"))
            from urllib.parse import unquote_plus
            seen.append(unquote_plus(fields["credential"]))
    page.on("request", note)
    return seen


def post_credential(page, credential: str) -> None:
    """Post a credential JSON through the page's own form, as a replaying client would."""
    with page.expect_navigation():
        page.evaluate("""(value) => {
            const form = document.querySelector('form[data-webauthn]');
            form.querySelector('input[name=credential]').value = value;
            form.submit();
        }""", credential)


def error_text(page) -> str:
    return page.locator("#page-error").inner_text()


def set_sign_count(service_dir, credential_id: str, count: int) -> None:
    with sqlite3.connect(service_dir / "twostep.sqlite3") as db:
        db.execute("UPDATE twostep_authenticator SET sign_count = ? WHERE credential_id = ?", (count, credential_id))


def test_scenario_security_key_as_second_step(page, service, lang, person):
    site = at_localhost(service)
    login = service.make_user(person("keyholder"))
    cdp, authenticator = virtual_authenticator(page)
    sent = captured_credentials(page)
    sign_in(page, site, lang, login)
    heading(page, lang, "Account security")
    add_key(page, lang, "YubiKey")
    heading(page, lang, "Your backup codes")  # the first authenticator brings the codes
    assert len(codes_on_page(page)) == 10
    leave_codes_page(page, lang)
    shown = service.show(login)
    assert shown["two_factor_enabled"] is True
    sign_out(page, lang)

    # The password leads straight to the key, with the other ways one click away.
    sign_in(page, site, lang, login)
    heading(page, lang, "Use your security key")
    page.get_by_role("link", name=exactly(lang, "Use a backup code instead")).wait_for()
    look(page, lang, "webauthn-second-step")
    use_key(page, lang)
    heading(page, lang, "Account security")
    good = sent[-1]
    sign_out(page, lang)

    # A signature that does not verify is refused.
    sign_in(page, site, lang, login)
    cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": authenticator, "isBogusSignature": True})
    use_key(page, lang)
    heading(page, lang, "Use your security key")
    assert error_text(page) == say(lang, "That code is not right. Check it and try again.")
    cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": authenticator, "isBogusSignature": False})

    # An answer already used (its challenge spent) is refused.
    post_credential(page, good)
    heading(page, lang, "Use your security key")
    assert error_text(page)

    # A counter lower than the one stored: a copy of the key was used; refused and told.
    credential_id = json.loads(good)["id"]
    set_sign_count(_data_dir(service), credential_id, 10_000)
    use_key(page, lang)
    heading(page, lang, "Use your security key")
    assert "копир" in error_text(page) or "copied" in error_text(page)


def _data_dir(service):
    return service.log_path.parent


def test_scenario_passkey_sign_in(page, service, lang, person):
    site = at_localhost(service)
    account = f"Passkeys-{lang}-{person('a')}"
    boss = service.make_account(account, person("boss"))
    login = service.make_user(person("passkeyholder"), account=account)
    cdp, authenticator = virtual_authenticator(page, transport="internal")
    sent = captured_credentials(page)

    # The account's admin allows passkey sign-in.
    sign_in(page, site, lang, boss)
    page.goto(f"{site.url}/account/users")
    page.get_by_label(say(lang, "Allow passkey sign-in")).check()
    with page.expect_navigation():
        page.get_by_role("button", name=exactly(lang, "Save policy")).click()
    assert page.get_by_label(say(lang, "Allow passkey sign-in")).is_checked()
    sign_out(page, lang)

    sign_in(page, site, lang, login)
    add_key(page, lang, "Laptop", passkey=True)
    heading(page, lang, "Your backup codes")
    leave_codes_page(page, lang)
    sign_out(page, lang)

    # No password: the passkey alone.
    page.get_by_role("link", name=exactly(lang, "Sign in with a passkey")).click()
    heading(page, lang, "Sign in with a passkey")
    look(page, lang, "webauthn-passkey")
    use_key(page, lang, "Use a passkey")
    heading(page, lang, "Account security")
    used = sent[-1]
    sign_out(page, lang)

    # The same answer again, after it signed in: refused.
    page.goto(f"{site.url}/login/passkey")
    post_credential(page, used)
    heading(page, lang, "Sign in with a passkey")
    assert error_text(page) == say(lang, "That passkey was not accepted. Try again, or sign in with your "
                                         "login and password.")

    # Without user verification a passkey is not two factors: refused.
    # isBadUV: the authenticator answers with the "user verified" flag clear.
    cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": authenticator, "isBadUV": True})
    use_key(page, lang, "Use a passkey")
    heading(page, lang, "Sign in with a passkey")
    assert error_text(page) == say(lang, "That passkey was not accepted. Try again, or sign in with your "
                                         "login and password.")


def test_scenario_passkey_refused_where_the_account_does_not_allow_it(page, service, lang, person):
    site = at_localhost(service)
    account = f"NoPasskeys-{lang}-{person('a')}"
    service.make_account(account, person("boss"))
    login = service.make_user(person("holder"), account=account)
    virtual_authenticator(page, transport="internal")
    sign_in(page, site, lang, login)
    add_key(page, lang, "Phone", passkey=True)
    leave_codes_page(page, lang)
    sign_out(page, lang)
    page.goto(f"{site.url}/login/passkey")
    use_key(page, lang, "Use a passkey")
    heading(page, lang, "Sign in with a passkey")
    assert re.search(re.escape(say(lang, "Your organisation does not allow signing in with a passkey alone. "
                                         "Sign in with your login and password; your security key or "
                                         "passkey can still be the second step.")), error_text(page))


def test_scenario_another_users_key_answer_is_refused(page, service, lang, person):
    site = at_localhost(service)
    virtual_authenticator(page)
    sent = captured_credentials(page)
    first, second = service.make_user(person("first")), service.make_user(person("second"))
    for login in (first, second):
        sign_in(page, site, lang, login)
        add_key(page, lang, "Key")
        leave_codes_page(page, lang)
        sign_out(page, lang)
    sign_in(page, site, lang, first)
    use_key(page, lang)
    firsts = sent[-1]
    sign_out(page, lang)
    sign_in(page, site, lang, second)
    heading(page, lang, "Use your security key")
    post_credential(page, firsts)
    heading(page, lang, "Use your security key")
    assert error_text(page)


def require_two_factor(service, account: str) -> None:
    with sqlite3.connect(_data_dir(service) / "twostep.sqlite3") as db:
        db.execute("UPDATE twostep_account SET require_two_factor = 1 WHERE name = ?", (account,))


def test_scenario_held_by_the_policy_a_key_is_enough(page, service, lang, person):
    account = f"Keys-{lang}"
    service.make_account(account, person("kofi"))
    login = service.make_user(person("lena"), account=account)
    require_two_factor(service, account)
    site = at_localhost(service)
    virtual_authenticator(page)
    sign_in(page, site, lang, login)
    heading(page, lang, "Set up two-factor authentication")
    page.get_by_role("link", name=exactly(lang, "Add a security key or passkey instead")).click()
    heading(page, lang, "Add a security key or passkey")
    # Held here: the ways lead back to the app setup or out, none to the security page.
    page.get_by_role("link", name=exactly(lang, "Set up an authenticator app instead")).wait_for()
    assert page.get_by_role("button", name=exactly(lang, "Sign out and set up later")).count() == 1
    assert page.get_by_role("link", name=exactly(lang, "Back to account security")).count() == 0
    assert page.get_by_role("navigation", name=say(lang, "Main")).count() == 0
    look(page, lang, "webauthn-add-held")
    page.get_by_role("textbox", name=re.compile(rf"^{re.escape(say(lang, 'Name'))}(\s|$)")).fill("YubiKey")
    page.get_by_role("button", name=exactly(lang, "Continue")).click()
    with page.expect_navigation():
        page.get_by_role("button", name=exactly(lang, "Register it")).click()
    heading(page, lang, "Your backup codes")  # signed in by the key, the codes follow
    assert len(codes_on_page(page)) == 10
    leave_codes_page(page, lang)
    assert service.show(login)["two_factor_enabled"] is True
