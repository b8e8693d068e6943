"""Browser journeys: the real `twostep serve`, driven in Debian's Chromium through Playwright.

The service runs as a user would start it (a subprocess on a fresh data dir, users made with
the `twostep` command); the browser reads only what the pages show. Every page a journey meets
goes through `look()`: axe-core, a 360 px width check and a screenshot in the page's language.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TWOSTEP = str(Path(sys.executable).with_name("twostep"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE_JS = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
SHOTS = ARTIFACTS / "screenshots"
PASSWORD = "correct horse battery staple"
LANGUAGES = ["en", "ru"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
NARROWEST = 360  # the width every page must fit without sideways scrolling
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _missing(what: str):
    if os.environ.get("TWOSTEP_REQUIRE_BROWSER"):
        pytest.fail(f"{what} is required for this run (TWOSTEP_REQUIRE_BROWSER) but missing")
    pytest.skip(f"{what} is not installed: browser journeys left out")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A running `twostep serve` and the `twostep` command on the same data dir."""

    def __init__(self, data_dir: Path, **settings: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TWOSTEP_")},
            "TWOSTEP_DATA_DIR": str(data_dir),
            "TWOSTEP_LOG_LEVEL": "WARNING",
            **{f"TWOSTEP_{name}": value for name, value in settings.items()},
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.log_path = data_dir / "serve.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen(
            [TWOSTEP, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=data_dir,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"twostep serve exited: {self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("twostep serve did not answer /healthz within 60 s")

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([TWOSTEP, *args], input=stdin, env=self.env, capture_output=True,
                                text=True, timeout=120)
        if result.returncode:
            raise AssertionError(f"twostep {' '.join(args)} failed: {result.stderr}")
        return result

    def make_account(self, name: str, admin: str) -> str:
        """Create an account with its admin; return the admin's login."""
        self.cli("account", "create", name, "--admin", admin, "--email", f"{admin}@{name.lower()}.example",
                 "--password-stdin", stdin=PASSWORD + "\n")
        return admin

    def make_user(self, login: str, *, admin: bool = False, account: str = "Acme") -> str:
        args = ["user", "create", login, "--account", account, "--email", f"{login}@acme.example"]
        self.cli(*args, *(["--admin"] if admin else []), "--password-stdin", stdin=PASSWORD + "\n")
        return login

    def show(self, login: str) -> dict:
        return json.loads(self.cli("user", "show", login, "--json").stdout)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _start(tmp_path_factory, folder: str, **settings: str) -> Service:
    if not os.path.exists(TWOSTEP):
        pytest.fail(f"{TWOSTEP} is missing: install the project first (make install)")
    running = Service(tmp_path_factory.mktemp(folder), **settings)
    running.make_account("Acme", "boss")
    return running


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    """The service as shipped: a change right after signing in does not ask the password again."""
    running = _start(tmp_path_factory, "serve")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def returning_service(tmp_path_factory):
    """The service as a user meets it minutes after signing in: every change asks the password.

    It also warns about backup codes running low from 9 left, so one used code shows the warning.
    """
    running = _start(tmp_path_factory, "serve-reauth", REAUTH_MINUTES="0", BACKUP_CODES_LOW="9")
    yield running
    running.stop()


_serial = itertools.count(1)


@pytest.fixture
def person(lang):
    """Make up a fresh login per call, so no journey meets another's state on the same server."""
    def name(first: str) -> str:
        return f"{first}-{lang}-{next(_serial)}"
    return name


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        _missing("Chromium (Debian package chromium)")
    # The journeys read codes, QR codes and PDFs with these, as a person would with a phone.
    for program, package in [("oathtool", "oathtool"), ("zbarimg", "zbar-tools"), ("pdftotext", "poppler-utils")]:
        if shutil.which(program) is None:
            _missing(f"{program} (Debian package {package})")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(params=LANGUAGES)
def lang(request):
    return request.param


@pytest.fixture
def page(browser, lang, request):
    """A phone-sized page whose browser asks for `lang`.

    Fails the test on any CSP violation, script error or HTTP 5xx answer.
    """
    context = browser.new_context(
        locale={"en": "en-US", "ru": "ru-RU"}[lang], viewport=PHONE, accept_downloads=True,
    )
    context.set_default_timeout(10_000)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    opened.on("pageerror", lambda e: problems.append(str(e)))
    opened.on("response", lambda r: problems.append(f"HTTP {r.status} from {r.url}") if r.status >= 500 else None)
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # What the browser showed when the journey broke, for whoever reads the CI log.
        failed = ARTIFACTS / "failures" / f"{request.node.name}.png"
        failed.parent.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=str(failed), full_page=True)
    context.close()
    assert not problems, f"the page broke its CSP, threw, or the server failed: {problems}"


def shot(page, lang: str, name: str) -> Path:
    """Save a full-page screenshot to the folder the README names."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}-{lang}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_check(page) -> None:
    """Run axe-core in the page; fail on any serious or critical violation."""
    if not AXE_JS.exists():
        _missing(f"axe-core ({AXE_JS}; `make install` fetches it from the npm registry)")
    page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"accessibility violations on {page.url}: {bad}"


def _resize(page, size: dict) -> None:
    """Change the viewport and let the page lay itself out again before anything is measured."""
    page.set_viewport_size(size)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def fits_narrow_phone(page) -> None:
    """Fail if the page scrolls sideways on a 360 px wide screen."""
    size = page.viewport_size
    _resize(page, {"width": NARROWEST, "height": size["height"]})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
    finally:
        _resize(page, size)
    assert width <= NARROWEST, f"{page.url} is {width} px wide on a {NARROWEST} px screen"


def look(page, lang: str, name: str, *, desktop: bool = False) -> Path:
    """Check a page the way a customer meets it: on record, accessible, and fits a phone.

    With `desktop`, a screenshot at a desktop width is kept too (NAME-desktop-LANG.png).
    """
    page.wait_for_load_state()  # styles and script in place, not just the text a step waited for
    assert page.locator("html").get_attribute("lang") == lang, f"{page.url} is not in {lang}"
    path = shot(page, lang, name)  # first, as the journey left the page
    if desktop:
        size = page.viewport_size
        _resize(page, DESKTOP)
        try:
            shot(page, lang, f"{name}-desktop")
        finally:
            _resize(page, size)
    axe_check(page)
    fits_narrow_phone(page)
    return path
