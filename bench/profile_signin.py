"""Where a sign-in's CPU goes, in-process: full sign-ins through the whole WSGI stack.

    python bench/profile_signin.py [--users 20] [--rounds 10] [--flow web|api|both]
                                   [--database-url postgres://…] [--profile] [--sql]

Every request goes through Django's WSGI handler and every middleware, as under `twostep serve`
(only the HTTP server itself is left out), with real CSRF tokens and cookies. The password
hasher is MD5 so that what is left is twostep's own work. Users have an authenticator app and
sign in with a fresh code each round (the clock moves 30 s between rounds, so a code is never
a replay).

The web sign-in is five requests: GET /login, POST /login, GET /login/code, POST /login/code,
GET /api/v1/me/two-factor. The API sign-in is three: GET /api/v1/auth/session,
POST /api/v1/auth/login, POST /api/v1/auth/second-factor.

Prints the CPU time of this process per sign-in (time.process_time: a database server's own
CPU is not counted), the SQL statements of each request, and with --profile the functions
that took the time (cProfile). The first round warms caches and is not counted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench password long enough"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def configure(database_url: str | None) -> None:
    for name in [n for n in os.environ if n.startswith("TWOSTEP_")]:
        del os.environ[name]
    os.environ["TWOSTEP_DATA_DIR"] = tempfile.mkdtemp(prefix="twostep-profile-")
    os.environ.setdefault("TWOSTEP_LOG_LEVEL", "INFO")
    if database_url:
        os.environ["TWOSTEP_DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path[:0] = [str(ROOT), str(ROOT / "src")]
    import django
    from django.conf import settings

    django.setup()
    # What `make bench` uses for its cheap-hasher runs: the hash is then a negligible part.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.contrib.auth import hashers

    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()


def silence_logs() -> None:
    """Log lines are formatted and written as in production, to nowhere."""
    import logging

    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115


class FakeClock:
    def __init__(self):
        self.value = (int(time.time()) // 30) * 30 + 5.0

    def __call__(self) -> float:
        return self.value


class Browser:
    """A cookie jar over the WSGI application: what a browser sends, nothing more."""

    def __init__(self, app):
        self.app = app
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, data: dict | None = None, *, json_body: str | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        if json_body is not None:
            body, kind = json_body.encode(), "application/json"
        elif data is not None:
            body, kind = urlencode(data).encode(), "application/x-www-form-urlencoded"
        else:
            body, kind = b"", ""
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8108", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8108", "HTTP_USER_AGENT": AGENT,
            "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9", "HTTP_REFERER": "http://127.0.0.1:8108/login",
            "HTTP_ORIGIN": "http://127.0.0.1:8108",
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
            "wsgi.version": (1, 0), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": kind,
        }
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = response_headers

        result = self.app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        headers_out = {}
        for name, value in answer["headers"]:
            if name.lower() == "set-cookie":
                for morsel in SimpleCookie(value).values():
                    if morsel["max-age"] == "0" or morsel.value == "":
                        self.cookies.pop(morsel.key, None)
                    else:
                        self.cookies[morsel.key] = morsel.value
            headers_out[name.lower()] = value
        return answer["status"], headers_out, content


_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def web_sign_in(browser: Browser, login: str, code: str, protected: str, label) -> None:
    browser.cookies.clear()
    with label("GET /login"):
        status, _, page = browser.request("GET", "/login")
    assert status == 200, status
    token = _TOKEN.search(page).group(1).decode()
    with label("POST /login"):
        status, headers, _ = browser.request("POST", "/login", {
            "csrfmiddlewaretoken": token, "login": login, "password": PASSWORD})
    assert status == 302 and headers["location"].startswith("/login/code"), (status, headers)
    with label("GET /login/code"):
        status, _, page = browser.request("GET", "/login/code")
    assert status == 200, status
    token = _TOKEN.search(page).group(1).decode()
    with label("POST /login/code"):
        status, headers, page = browser.request("POST", "/login/code", {
            "csrfmiddlewaretoken": token, "code": code})
    assert status == 302, (status, page[:2000])
    with label("GET " + protected):
        status, _, body = browser.request("GET", protected)
    assert status == 200, (status, body)


def api_sign_in(browser: Browser, login: str, code: str, label) -> None:
    import json

    browser.cookies.clear()
    with label("GET /api/v1/auth/session"):
        status, _, _ = browser.request("GET", "/api/v1/auth/session")
    assert status == 200, status
    with label("POST /api/v1/auth/login"):
        status, _, body = browser.request(
            "POST", "/api/v1/auth/login", json_body=json.dumps({"login": login, "password": PASSWORD}),
            headers={"X-CSRFToken": browser.cookies["csrftoken"]})
    assert status == 200 and json.loads(body)["stage"] == "second_factor", (status, body)
    with label("POST /api/v1/auth/second-factor"):
        status, _, body = browser.request(
            "POST", "/api/v1/auth/second-factor", json_body=json.dumps({"method": "totp", "code": code}),
            headers={"X-CSRFToken": browser.cookies["csrftoken"]})
    assert status == 200, (status, body)


def make_users(count: int, clock) -> list[tuple[str, str]]:
    import pyotp
    from django.core.management import call_command

    from twostep.services import accounts, authenticators
    from twostep.services.audit import Origin

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    origin = Origin(ip="127.0.0.1", user_agent="profile")
    accounts.create_account("Bench", "benchadmin", "admin@bench.example", PASSWORD)
    users = []
    for n in range(count):
        login = f"u{n}"
        user = accounts.create_user(login, "Bench", f"{login}@bench.example", PASSWORD)
        setup = authenticators.start_app(user, PASSWORD, origin)
        authenticators.confirm_app(user, pyotp.TOTP(setup.secret).at(clock()), origin)
        users.append((login, setup.secret))
    return users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10, help="sign-ins per user (the first is warm-up)")
    parser.add_argument("--flow", choices=("web", "api", "both"), default="both")
    parser.add_argument("--database-url", help="PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432/twostep_x")
    parser.add_argument("--protected", default="/api/v1/me/two-factor",
                        help="the protected JSON the web sign-in reads last")
    parser.add_argument("--profile", action="store_true", help="print the top functions (cProfile)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--request", help="with --profile: the top functions of this request only, e.g. 'POST /login'")
    parser.add_argument("--sql", action="store_true", help="print every statement of one sign-in")
    args = parser.parse_args()

    configure(args.database_url)
    import pyotp
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    from twostep.core import clock as clock_module

    silence_logs()
    clock = FakeClock()
    clock_module.now = clock
    users = make_users(args.users, clock)
    app = get_wsgi_application()  # sets logging up again, as a server does
    silence_logs()

    current = {"label": None}
    statements: dict[str, Counter] = defaultdict(Counter)  # label -> statement kind -> count
    samples: list[str] = []
    record = {"on": False}

    def count(execute, sql, params, many, context):
        if record["on"]:
            statements[current["label"]][sql.split(None, 1)[0].upper()] += 1
            if args.sql and record.get("one"):
                samples.append(f"{current['label']:<34} {sql[:220]}")
        return execute(sql, params, many, context)

    request_profiles: dict[str, cProfile.Profile] = {}  # label -> profile of that request alone

    class label:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            current["label"] = self.name
            if args.profile and record["on"]:
                request_profiles.setdefault(self.name, cProfile.Profile()).enable()

        def __exit__(self, *exc):
            if args.profile and record["on"]:
                request_profiles[self.name].disable()
            current["label"] = None

    from django.db.backends.signals import connection_created

    opened = Counter()

    def on_connect(sender, connection, **kwargs):
        if record["on"]:
            opened["n"] += 1

    connection_created.connect(on_connect)
    flows = ["web", "api"] if args.flow == "both" else [args.flow]
    browser = Browser(app)
    db = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    print(f"{db}, MD5 hasher, {args.users} users x {args.rounds - 1} counted rounds (after 1 warm-up)")
    with connection.execute_wrapper(count):
        for flow in flows:
            statements.clear()
            samples.clear()
            opened.clear()
            profiler = cProfile.Profile() if args.profile else None
            request_profiles.clear()
            cpu = 0.0
            signins = 0
            per_round = []
            for round_ in range(args.rounds):
                round_cpu = 0.0
                clock.value += 30
                counted = round_ > 0
                record["on"] = counted
                for index, (login, secret) in enumerate(users):
                    code = pyotp.TOTP(secret).at(clock())
                    record["one"] = counted and index == 0 and round_ == 1
                    started = time.process_time()
                    if flow == "web":
                        web_sign_in(browser, login, code, args.protected, label)
                    else:
                        api_sign_in(browser, login, code, label)
                    spent = time.process_time() - started
                    if counted:
                        cpu += spent
                        round_cpu += spent
                        signins += 1
                if counted:
                    per_round.append(round_cpu / len(users) * 1000)
            per = cpu / signins * 1000
            per_round.sort()
            total = sum(sum(c.values()) for c in statements.values()) / signins
            print(f"\n{flow} sign-in: {per:.2f} ms CPU per sign-in (rounds: best {per_round[0]:.2f}, median "
                  f"{per_round[len(per_round) // 2]:.2f}), {total:.1f} SQL statements per sign-in")
            print(f"  database connections opened: {opened['n']} in {signins} sign-ins "
                  "(a server thread keeps its connection)")
            for name, kinds in statements.items():
                shown = ", ".join(f"{k} {v / signins:g}" for k, v in sorted(kinds.items()))
                print(f"  {name:<34} {sum(kinds.values()) / signins:5.1f}  ({shown})")
            if args.sql:
                print("\n  statements of one sign-in:")
                for line in samples:
                    print("   ", line)
            if profiler is not None:
                calls = {name: pstats.Stats(one).total_calls / signins for name, one in request_profiles.items()}
                print(f"  Python function calls per sign-in: {sum(calls.values()):,.0f} (steady under load, "
                      "unlike CPU time)")
                for name, count in calls.items():
                    print(f"    {name:<34} {count:8,.0f}")
                for order in ("tottime", "cumulative"):
                    out = io.StringIO()
                    chosen = [one for name, one in request_profiles.items() if args.request in (None, name)]
                    stats = pstats.Stats(*chosen, stream=out)
                    stats.sort_stats(order).print_stats(args.top)
                    print(f"\n  top {args.top} by {order} (whole run, {signins} sign-ins):")
                    print("\n".join("    " + line for line in out.getvalue().splitlines()
                                    if line.strip() and not line.startswith("   Ordered")))


if __name__ == "__main__":
    main()
