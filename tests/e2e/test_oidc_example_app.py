"""Another application signs its users in through twostep: examples/django-rp in Chromium.

The example site (Django with mozilla-django-oidc, in the venv `make install` makes for it at
.cache/example-venv) runs beside a real `twostep serve`. A person opens the site, is sent to
twostep's sign-in, gives a password and an app code — or a passkey from Chromium's virtual
authenticator — and is back on the site, signed in, with what the ID token said about how.

twostep is reached as http://localhost:PORT (a WebAuthn RP ID must be a domain); the example
site as http://127.0.0.1:PORT, another site as far as the browser is concerned.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request

import pytest
import requests

from ..oidc.provider import enrol
from .conftest import PASSWORD, ROOT, TWOSTEP, Service, _free_port, _missing, look, shot
from .steps import enter_app_code, exactly, leave_codes_page, say, sign_in, sign_out, submit
from .test_webauthn import add_key, at_localhost, heading, use_key, virtual_authenticator

EXAMPLE = ROOT / "examples" / "django-rp"
EXAMPLE_PYTHON = ROOT / ".cache" / "example-venv" / "bin" / "python"


class ExampleApp:
    """examples/django-rp run as its README says: migrate, then runserver, settings from the environment."""

    def __init__(self, folder, port: int, issuer: str, client: dict):
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_", "OIDC_"))}
        env.update(TWOSTEP_ISSUER=issuer, OIDC_RP_CLIENT_ID=client["client_id"],
                   OIDC_RP_CLIENT_SECRET=client["client_secret"], EXAMPLE_DATABASE=str(folder / "example.sqlite3"))
        manage = [str(EXAMPLE_PYTHON), "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=EXAMPLE, env=env, check=True, timeout=120)
        self.log_path = folder / "example.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
                                        cwd=EXAMPLE, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                assert time.monotonic() < deadline, "the example app did not answer within 60 s"
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """twostep serve, a client registered for the example site, and the site running."""
    if not EXAMPLE_PYTHON.exists():
        _missing(f"the example app's venv ({EXAMPLE_PYTHON}; `make install` makes it)")
    folder = tmp_path_factory.mktemp("serve-oidc")
    # Migrated first, so that twostep serve answers within its start-up wait on a busy machine.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))},
           "TWOSTEP_DATA_DIR": str(folder)}
    subprocess.run([TWOSTEP, "migrate"], env=env, cwd=folder, check=True, capture_output=True, timeout=300)
    service = Service(folder)
    service.make_account("Acme", "boss")
    app = None
    try:
        issuer = at_localhost(service).url
        port = _free_port()
        made = service.cli("client", "create", "Example app", "--redirect-uri",
                           f"http://127.0.0.1:{port}/oidc/callback/", "--post-logout-uri",
                           f"http://127.0.0.1:{port}/", "--trusted", "--json")
        app = ExampleApp(tmp_path_factory.mktemp("example-rp"), port, issuer, json.loads(made.stdout))
        yield service, app
    finally:
        if app:
            app.stop()
        service.stop()


def open_app_and_go_to_twostep(page, app, lang: str) -> None:
    page.goto(app.url)
    page.get_by_text("You are not signed in.").wait_for()
    page.get_by_role("link", name="Sign in with twostep").click()
    page.get_by_role("heading", level=1, name=say(lang, "Sign in")).wait_for()


def back_in_the_app(page, app, login: str) -> list[str]:
    """Wait for the example site's home page to say who is signed in; return the amr it shows."""
    page.wait_for_url(re.compile(re.escape(app.url) + r"/$"))
    assert page.locator("#signed-in").inner_text() == f"Signed in as {login}"
    assert page.locator("#acr").inner_text() == "urn:twostep:mfa"
    return page.locator("#amr").inner_text().split()


def sign_out_of_the_app(page, app) -> None:
    """The app's Sign out ends the session at twostep too (RP-initiated logout) and comes back."""
    with page.expect_navigation(url=re.compile(re.escape(app.url) + r"/$")):
        page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are not signed in.").wait_for()


def test_scenario_an_app_signs_in_through_twostep_with_an_app_code(page, example, lang, person):
    service, app = example
    someone = enrol(service, person("rp-user"))
    open_app_and_go_to_twostep(page, app, lang)
    assert page.url.startswith(at_localhost(service).url + "/login?next=")  # twostep's own page
    look(page, lang, "oidc-app-login")
    page.get_by_label(say(lang, "Login"), exact=True).fill(someone.login)
    page.get_by_label(say(lang, "Password"), exact=True).fill(PASSWORD)
    submit(page, page.get_by_role("button", name=exactly(lang, "Continue")))
    enter_app_code(page, lang, someone.app_code())
    amr = back_in_the_app(page, app, someone.login)
    assert {"pwd", "otp", "mfa"} <= set(amr), amr
    shot(page, lang, "oidc-app-signed-in")

    sign_out_of_the_app(page, app)
    # Signed out of twostep as well: the app's next sign-in asks for the password again.
    page.get_by_role("link", name="Sign in with twostep").click()
    page.get_by_role("heading", level=1, name=say(lang, "Sign in")).wait_for()


@pytest.mark.parametrize("lang", ["en"])  # the pages in Russian are the app-code journey's
def test_scenario_an_app_signs_in_through_twostep_with_a_passkey(page, example, lang, person):
    service, app = example
    site = at_localhost(service)
    account = f"Passkeys-{lang}-{person('org')}"
    boss = service.make_account(account, person("boss"))
    admin = requests.Session()
    admin.get(f"{service.url}/api/v1/auth/session", timeout=15)
    token = {"X-CSRFToken": admin.cookies["csrftoken"]}
    assert admin.post(f"{service.url}/api/v1/auth/login", json={"login": boss, "password": PASSWORD},
                      headers=token, timeout=30).status_code == 200
    allowed = admin.put(f"{service.url}/api/v1/account/policy", json={"allow_passkeys": True},
                        headers={"X-CSRFToken": admin.cookies["csrftoken"]}, timeout=30)
    assert allowed.status_code == 200, allowed.text

    login = service.make_user(person("rp-passkey"), account=account)
    virtual_authenticator(page, transport="internal")
    sign_in(page, site, lang, login)
    add_key(page, lang, "Laptop", passkey=True)
    heading(page, lang, "Your backup codes")
    leave_codes_page(page, lang)
    sign_out(page, lang)

    open_app_and_go_to_twostep(page, app, lang)
    page.get_by_role("link", name=exactly(lang, "Sign in with a passkey")).click()
    heading(page, lang, "Sign in with a passkey")
    use_key(page, lang, "Use a passkey")
    amr = back_in_the_app(page, app, login)
    assert {"hwk", "mfa"} <= set(amr) and "pwd" not in amr, amr
    shot(page, lang, "oidc-app-signed-in-passkey")
    sign_out_of_the_app(page, app)
