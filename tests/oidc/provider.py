"""twostep as another application meets it: a real `twostep serve`, its operator's `twostep`
command, and a person who signs in through the HTML pages with a browser's plain HTTP requests.

Nothing here knows how the provider is built: clients are made with `twostep client create
--json`, users with `twostep user create`, app codes come from the secret the setup shows
(computed with pyotp, as a phone would), and the pages are read as forms.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pyotp
import requests

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
PASSWORD = "correct horse battery staple"
SCOPES = "openid profile email offline_access"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Provider:
    """`twostep serve` (two workers) on a fresh data dir, and `twostep` on the same data dir."""

    def __init__(self, data: Path, *, host: str = "127.0.0.1", **settings: str):
        self.data, self.port = data, free_port()
        self.url = f"http://{host}:{self.port}"  # the issuer: the origin the service is reached by
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))}
        self.env.update({"TWOSTEP_DATA_DIR": str(data), "TWOSTEP_LOG_LEVEL": "WARNING",
                         **{f"TWOSTEP_{k}": v for k, v in settings.items()}})
        data.mkdir(parents=True, exist_ok=True)
        self.log_path = data / "serve.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen(
            [TWOSTEP, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=data)
        deadline = time.monotonic() + 180  # it migrates a fresh database first; CI machines are shared
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "twostep serve did not answer within 180 s"
            time.sleep(0.2)

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([TWOSTEP, *args], input=stdin, env=self.env, capture_output=True, text=True,
                              timeout=120, cwd=self.data)
        if check:
            assert done.returncode == 0, f"twostep {' '.join(args)}: {done.stderr}"
        return done

    def create_client(self, name: str, redirect_uri: str, *flags: str, post_logout_uri: str | None = None) -> dict:
        """`twostep client create … --json`: return what it printed (client_id, client_secret once)."""
        args = ["client", "create", name, "--redirect-uri", redirect_uri, *flags, "--json"]
        if post_logout_uri:
            args += ["--post-logout-uri", post_logout_uri]
        made = json.loads(self.cli(*args).stdout)
        assert made["client_id"], made
        return made

    def make_user(self, login: str, *, account: str = "Acme", admin: bool = False) -> str:
        self.cli("user", "create", login, "--account", account, "--email", f"{login}@acme.example",
                 *(["--admin"] if admin else []), "--password-stdin", stdin=PASSWORD + "\n")
        return login

    def discovery(self) -> dict:
        answer = requests.get(f"{self.url}/.well-known/openid-configuration", timeout=15)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)  # kept-alive connections would hold a graceful stop for 30 s
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


# A person and the app on their phone -------------------------------------------------------

@dataclass
class Person:
    """A user with a confirmed authenticator app: the secret the setup showed, the codes it gave."""

    login: str
    secret: str
    backup_codes: list[str]
    last_step: int  # the newest time step accepted: a code is good once, and only a newer one after it
    password: str = PASSWORD

    def app_code(self) -> str:
        """The code the app shows now, or the next step's once this step's code was spent (the
        server takes a step either side of its own); waits for a new step when both were spent."""
        while True:
            left = 30 - time.time() % 30
            if left < 3:  # too close to the edge for a request to arrive inside the window
                time.sleep(left + 0.2)
                continue
            now = int(time.time() // 30)
            step = max(now, self.last_step + 1)
            if step <= now + 1:
                self.last_step = step
                return pyotp.TOTP(self.secret).at(step * 30)
            time.sleep(left + 0.2)


def enrol(provider: Provider, login: str) -> Person:
    """Make `login` and switch its authenticator app on through the JSON API, as the app would."""
    provider.make_user(login)
    api = requests.Session()
    api.headers["Accept-Language"] = "en"
    api.get(f"{provider.url}/api/v1/auth/session", timeout=15)

    def post(path: str, body: dict) -> dict:
        answer = api.post(f"{provider.url}/api/v1{path}", json=body, timeout=30,
                          headers={"X-CSRFToken": api.cookies.get("csrftoken", "")})
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        return answer.json()

    assert post("/auth/login", {"login": login, "password": PASSWORD}) == {"stage": "authenticated"}
    secret = post("/me/two-factor/setup", {"password": PASSWORD})["secret"]
    for _ in range(3):  # a code of this step; on a slow machine the step may pass before it arrives
        if 30 - time.time() % 30 < 3:
            time.sleep(30 - time.time() % 30 + 0.2)
        step = int(time.time() // 30)
        answer = api.post(f"{provider.url}/api/v1/me/two-factor/confirm", timeout=30,
                          json={"code": pyotp.TOTP(secret).at(step * 30)},
                          headers={"X-CSRFToken": api.cookies.get("csrftoken", "")})
        if answer.status_code != 400:
            break
    assert answer.status_code == 200, answer.text
    post("/auth/logout", {})
    return Person(login, secret, answer.json()["backup_codes"], step)


# A browser of plain HTTP requests ---------------------------------------------------------

@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of submit buttons


class _Forms(HTMLParser):
    def __init__(self, base: str):
        super().__init__(convert_charrefs=True)
        self.base, self.forms, self.text = base, [], []
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(urljoin(self.base, a.get("action") or self.base), (a.get("method") or "get").lower()))
        elif not self.forms:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind == "submit" and a.get("name"):
                self.forms[-1].buttons.append((a["name"], a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a and a.get("name"):
                    self.forms[-1].fields[a["name"]] = a.get("value", "on")
            elif a.get("name") and kind not in ("submit", "button", "image", "reset"):
                self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("type", "submit").lower() == "submit":
            self.forms[-1].buttons.append((a.get("name", ""), a.get("value", "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self.forms[-1].fields[a["name"]] = ""

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        self.text.append(data)
        if self._textarea and self.forms:
            self.forms[-1].fields[self._textarea] += data


def forms_of(response: requests.Response) -> list[Form]:
    parser = _Forms(response.url)
    parser.feed(response.text)
    return parser.forms


def text_of(response: requests.Response) -> str:
    parser = _Forms(response.url)
    parser.feed(response.text)
    return " ".join(" ".join(parser.text).split())


class Browser:
    """Cookies, redirects followed within twostep, forms posted with their CSRF token.

    A redirect that leaves twostep (to an application's redirect URI) is not followed: the
    answer carrying it is returned, as the application's callback would receive it.
    """

    def __init__(self, provider: Provider):
        self.provider = provider
        self.http = requests.Session()
        self.http.headers.update({"Accept-Language": "en", "User-Agent": "Mozilla/5.0 (X11; Linux) Browser"})
        self.answers: list[requests.Response] = []

    def go(self, url: str, method: str = "GET", data: dict | None = None) -> requests.Response:
        for _ in range(20):
            answer = self.http.request(method, url, data=data, allow_redirects=False, timeout=60)
            self.answers.append(answer)
            assert answer.status_code < 500, f"{method} {url}: {answer.status_code}\n{answer.text[:2000]}"
            if not answer.is_redirect:
                return answer
            target = urljoin(answer.url, answer.headers["Location"])
            if not target.startswith(self.provider.url + "/"):
                return answer
            method, url, data = "GET", target, None
        raise AssertionError(f"too many redirects from {url}")

    def submit(self, form: Form, button: tuple[str, str] | None = None, **values: str) -> requests.Response:
        data = {**form.fields, **values}
        if button and button[0]:
            data[button[0]] = button[1]
        if form.method == "post":
            return self.go(form.action, "POST", data)
        return self.go(f"{form.action}?{requests.compat.urlencode(data)}")


def leaves_for(answer: requests.Response) -> str | None:
    """The address a redirect away from twostep goes to, or None."""
    return answer.headers["Location"] if answer.is_redirect else None


def consent_form(answer: requests.Response) -> Form | None:
    """The consent page's form: buttons decision=allow and decision=deny."""
    return next((f for f in forms_of(answer) if ("decision", "allow") in f.buttons), None)


def drive(browser: Browser, answer: requests.Response, person: Person | None, *, consent: str | None = "allow",
          code: str | None = None) -> requests.Response:
    """Go through the sign-in pages (password, app code) and the consent page, as `person` would,
    until twostep sends the browser away or shows a page with none of those forms."""
    for _ in range(8):
        if leaves_for(answer):
            return answer
        forms = forms_of(answer)
        login_form = next((f for f in forms if "password" in f.fields and "login" in f.fields), None)
        code_form = next((f for f in forms if "code" in f.fields), None)
        asks = consent_form(answer)
        if login_form and person:
            answer = browser.submit(login_form, login=person.login, password=person.password)
        elif code_form and person:
            answer = browser.submit(code_form, code=code or person.app_code())
            code = None
        elif asks and consent:
            answer = browser.submit(asks, ("decision", consent))
        else:
            return answer
    raise AssertionError("the sign-in went round in circles")


def sign_in_and_authorize(browser: Browser, authorize_url: str, person: Person | None, *,
                          consent: str | None = "allow", code: str | None = None) -> str:
    """Open the authorization request, go through the sign-in pages and the consent page, and
    return the callback address twostep sends the browser to."""
    answer = drive(browser, browser.go(authorize_url), person, consent=consent, code=code)
    if not leaves_for(answer):
        raise AssertionError(f"stuck at {answer.url} ({answer.status_code}): {text_of(answer)[:800]}")
    return leaves_for(answer)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def nonce() -> str:
    return secrets.token_urlsafe(16)
