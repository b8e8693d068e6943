"""Browser journeys: the real `twostep serve`, driven in Debian's Chromium through Playwright.

The service runs as a user would start it (a subprocess on a fresh data dir, users made with
the `twostep` command); the browser reads only what the pages show.
"""

from __future__ import annotations

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
SHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
LANGUAGES = ["en", "ru"]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


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

    def __init__(self, data_dir: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TWOSTEP_")},
            "TWOSTEP_DATA_DIR": str(data_dir),
            "TWOSTEP_LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.log = open(data_dir / "serve.log", "w")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen(
            [TWOSTEP, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=data_dir,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"twostep serve exited: {(data_dir / 'serve.log').read_text()}")
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

    def make_user(self, login: str, *, admin: bool = False) -> str:
        args = ["user", "create", login, "--account", "Acme", "--email", f"{login}@acme.example"]
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


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    if not os.path.exists(TWOSTEP):
        pytest.fail(f"{TWOSTEP} is missing: install the project first (make install)")
    running = Service(tmp_path_factory.mktemp("serve"))
    running.cli("account", "create", "Acme", "--admin", "boss", "--email", "boss@acme.example",
                "--password-stdin", stdin=PASSWORD + "\n")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        _missing("Chromium (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(params=LANGUAGES)
def lang(request):
    return request.param


@pytest.fixture
def page(browser, lang):
    """A phone-sized page whose browser asks for `lang`; fails the test on any CSP violation."""
    context = browser.new_context(
        locale={"en": "en-US", "ru": "ru-RU"}[lang], viewport={"width": 390, "height": 844},
        accept_downloads=True,
    )
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    opened.on("pageerror", lambda e: problems.append(str(e)))
    yield opened
    context.close()
    assert not problems, f"the page broke its CSP or threw: {problems}"


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
