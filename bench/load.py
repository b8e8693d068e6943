"""twostep against django-allauth, the same closed-loop client for both: `make bench`.

    .venv/bin/python bench/load.py [--quick] [--json] [--only NAME,…] [--reps 3]

Starts `twostep serve` (its defaults: 2 gthread workers × 4 threads, and its queue worker) and a
minimal django-allauth site (bench/allauth_site, 3 gunicorn sync workers, from the bench-only venv
that `make bench-allauth-venv` installs), both on SQLite with the same password hasher, and has
N clients sign in over and over, each sign-in a full web sign-in of five requests:

    GET the login page · POST login, password and CSRF token · GET the code page ·
    POST the code (an app code, or a backup code) · GET a protected JSON page

For each side it prints sign-ins per second, p50/p99 latency of a whole sign-in, errors (any
answer other than the expected one, or a broken flow) and the server's CPU per sign-in: utime +
stime of the server's whole process tree (/proc/<pid>/stat) over the measured window, divided by
the sign-ins finished in it. Then the ratios twostep/allauth. Each scenario runs --reps times,
the two sides back to back in each repetition, and is reported as min/median/max.

Besides: the hash-only ceiling (CPU seconds of one Argon2 verification in-process; cores / that is
the most sign-ins/s two cores can do; measured at the start, and again just before and after each
Argon2 scenario, whose hash share is read against those two as well), the JSON API sign-in (three
requests), PostgreSQL, and the flood (wrong passwords from many X-Forwarded-For addresses at 5× the hashing capacity while 16
members sign in). Every figure is also a JSON line in .cache/bench/<timestamp>.jsonl (and on
standard output with --json, the readable report then going to standard error).

Prefer the ratios and the CPU per sign-in to the absolute rates: the machine is shared.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import pyotp

from twostep.server import environment_with_huge_pages

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CACHE = ROOT / ".cache" / "bench"
TWOSTEP_PY = str(ROOT / ".venv" / "bin" / "python")
ALLAUTH_VENV = ROOT / ".cache" / "bench-allauth-venv"
ALLAUTH_PY = str(ALLAUTH_VENV / "bin" / "python")
ALLAUTH_SITE = BENCH / "allauth_site"
PASSWORD = "bench password long enough"
TWOSTEP_PORT = int(os.environ.get("BENCH_TWOSTEP_PORT", 8106))
# Threads per twostep worker: empty for `twostep serve`'s default (to measure p99 against threads).
TWOSTEP_THREADS = os.environ.get("BENCH_TWOSTEP_THREADS", "").strip()
# Web worker processes: empty for `twostep serve`'s default.
TWOSTEP_WORKERS = os.environ.get("BENCH_TWOSTEP_WORKERS", "").strip()
# Settings for the twostep server besides the benchmark's own, e.g. "TWOSTEP_ACTIVE_REQUESTS=0
# TWOSTEP_HASH_QUEUE_LENGTH=4" (space-separated; every other TWOSTEP_ variable is left out).
TWOSTEP_SETTINGS = dict(item.split("=", 1) for item in os.environ.get("BENCH_TWOSTEP_SETTINGS", "").split())
ALLAUTH_PORT = int(os.environ.get("BENCH_ALLAUTH_PORT", 8116))
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/twostep_bench")
# The protected JSON page of the fifth request: main has no GET /api/v1/me; the smallest
# signed-in GET it has is /api/v1/me/two-factor (set BENCH_TWOSTEP_ME to measure another).
TWOSTEP_ME = os.environ.get("BENCH_TWOSTEP_ME", "/api/v1/me/two-factor")
CORES = os.cpu_count() or 1
TICK = os.sysconf("SC_CLK_TCK")
REQUEST_TIMEOUT = 30.0
CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')

OUT = sys.stdout  # the readable report (standard error with --json)
RECORDS: list[dict] = []
JSONL: Path | None = None
JSON_STDOUT = False


def say(text: str = "") -> None:
    print(text, file=OUT, flush=True)


def record(kind: str, **fields) -> dict:
    line = {"kind": kind, **fields}
    RECORDS.append(line)
    if JSONL is not None:
        with JSONL.open("a") as out:
            out.write(json.dumps(line) + "\n")
    if JSON_STDOUT:
        print(json.dumps(line), flush=True)
    return line


# Processes -----------------------------------------------------------------------------------

def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks) of a live process, or None: its own user and system time, and its
    children's that it has reaped — a gunicorn worker replaced after its maximum of requests
    (`TWOSTEP_MAX_REQUESTS`) is counted in its arbiter's figure once it has exited."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime


def tree(root: int) -> list[int]:
    """root and every process below it."""
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat:
                children[stat[0]].append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by root's tree, its reaped processes included."""
    return sum((_proc_stat(pid) or (0, 0))[1] for pid in tree(root)) / TICK


def status_kb(pid: int, key: str) -> int:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith(key + ":"):
                return int(row.split()[1])
    except OSError:
        pass
    return 0


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Server:
    """One served site in its own process group, stopped with it (and at exit, whatever happens)."""

    running: list[Server] = []

    def __init__(self, name: str, command: list[str], env: dict, port: int, probe: str, cwd=None):
        self.name, self.port, self.probe = name, port, probe
        if not port_free(port):
            raise SystemExit(f"bench: port {port} is in use; stop what listens there "
                             f"or set BENCH_{name.upper()}_PORT")
        log = (CACHE / f"{name}-server.log").open("a")  # every scenario's server, one after another
        log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(command[-6:])}\n")
        log.flush()
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log,
                                        start_new_session=True)
        Server.running.append(self)
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"bench: the {name} server stopped at start; see {log.name}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", probe)
                if connection.getresponse().status == 200:
                    connection.close()
                    break
                connection.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"bench: the {name} server did not answer {probe} in 90 s; see {log.name}")
            time.sleep(0.2)
        self.base = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        return tree_cpu(self.pid)

    def rss(self) -> dict:
        """Resident memory of each process of the tree, in MB."""
        return {pid: status_kb(pid, "VmRSS") / 1024 for pid in tree(self.pid)}

    def stop(self) -> None:
        """Quick shutdown (SIGINT: gunicorn stops its workers at once, twostep its queue worker),
        then SIGKILL for whatever of the tree is left after 20 s."""
        if self in Server.running:
            Server.running.remove(self)
        pids = tree(self.pid)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        for pid in pids:  # the queue worker runs in a session of its own
            while _proc_stat(pid) is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            if _proc_stat(pid) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        while not port_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)


def stop_all(*_args) -> None:
    for server in list(Server.running):
        server.stop()


atexit.register(stop_all)


# The browser-like client ---------------------------------------------------------------------

class Browser:
    """A cookie jar and one kept-alive connection, like a browser tab; no redirects followed."""

    def __init__(self, port: int, address: str | None = None):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.address = address  # sent as X-Forwarded-For (behind a trusted proxy)
        self.connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def request(self, method: str, path: str, *, form: dict | None = None, data: dict | None = None,
                headers: dict | None = None) -> tuple[int, http.client.HTTPResponse, bytes]:
        head = {"Host": f"127.0.0.1:{self.port}", "Referer": f"http://127.0.0.1:{self.port}/",
                "User-Agent": "bench/1 (load.py)", **(headers or {})}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            head["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is not None:
            body = json.dumps(data).encode()
            head["Content-Type"] = "application/json"
        if self.cookies:
            head["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.address:
            head["X-Forwarded-For"] = self.address
        for attempt in (1, 2):
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            try:
                self.connection.request(method, path, body=body, headers=head)
                answer = self.connection.getresponse()
                content = answer.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if not reused or attempt == 2:  # a kept-alive connection the server had closed: once more
                    raise
        if (answer.getheader("Connection") or "").lower() == "close":
            self.close()
        for line in answer.headers.get_all("Set-Cookie") or ():
            jar = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"] or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return answer.status, answer, content


class FlowError(Exception):
    def __init__(self, step: str, status, retry_after: float = 0.0):
        super().__init__(f"{step}: {status}")
        self.step, self.status, self.retry_after = step, status, retry_after


def retry_after(answer) -> float:
    """The seconds a 429 or 503 answer asks the client to wait (0 if it names none)."""
    if answer is None or answer.status not in (429, 503):
        return 0.0
    try:
        return max(0.0, float(answer.getheader("Retry-After") or 0))
    except ValueError:
        return 0.0


FORM_ERROR = re.compile(rb'<ul class="errorlist[^"]*"[^>]*>\s*<li>(.*?)</li>', re.S)


def expect(step: str, status: int, wanted: int, answer=None, location: str | None = None,
           content: bytes = b"") -> None:
    if status != wanted:
        found = FORM_ERROR.search(content or b"")  # a form shown again says why
        raise FlowError(step, f"{status} ({found.group(1).decode(errors='replace')[:80]})" if found else status,
                        retry_after(answer))
    if location is not None and location not in (answer.getheader("Location") or ""):
        raise FlowError(step, f"{status}->{answer.getheader('Location')}")


def csrf(content: bytes, step: str) -> str:
    found = CSRF_INPUT.search(content)
    if not found:
        raise FlowError(step, "no CSRF token")
    return found.group(1).decode()


# Credentials: an app code is good once per user and time step, a backup code once -----------

class Credentials:
    """Users handed out one at a time; an app code only for a time step the user has not used."""

    def __init__(self, users: dict[str, dict], logins: list[str], codes_per_user: int = 6):
        self.secrets = {login: users[login]["secret"] for login in logins}
        self.codes = {login: collections.deque(users[login]["codes"][:codes_per_user]) for login in logins}
        self.last_step = dict.fromkeys(logins, 0)
        self.free = collections.deque(logins)
        self.lock = threading.Lock()
        self.waited = 0.0

    def take(self, factor: str, stop: threading.Event) -> str | None:
        while not stop.is_set():
            with self.lock:
                step = int(time.time() // 30)
                for _ in range(len(self.free)):
                    login = self.free.popleft()
                    if factor == "totp" and self.last_step[login] < step:
                        return login
                    if factor == "backup_code" and self.codes[login]:
                        return login
                    if factor == "any" and (self.last_step[login] < step or self.codes[login]):
                        return login
                    self.free.append(login)
            started = time.monotonic()  # every user has used this step: wait for the next
            stop.wait(min(1.0, 30 - time.time() % 30 + 0.05))
            with self.lock:
                self.waited += time.monotonic() - started
        return None

    def give_back(self, login: str) -> None:
        with self.lock:
            self.free.append(login)

    def proof(self, login: str, factor: str) -> tuple[str, str]:
        """(method, code) to type now; an app code's step is spent here, at the moment it is typed."""
        with self.lock:
            step = int(time.time() // 30)
            if factor in ("totp", "any") and self.last_step[login] < step:
                self.last_step[login] = step
                return "totp", pyotp.TOTP(self.secrets[login]).at(step * 30)
            if self.codes[login]:
                return "backup_code", self.codes[login].popleft()
        raise FlowError("credentials", "none left")


# The two sites' sign-ins ---------------------------------------------------------------------

class Site:
    name = ""
    session_cookie = ""

    def __init__(self, server: Server):
        self.server = server

    def web(self, browser: Browser, creds: Credentials, login: str, factor: str) -> None:
        raise NotImplementedError


class Twostep(Site):
    name = "twostep"
    session_cookie = "twostep_session"
    pages = {"totp": "/login/code", "backup_code": "/login/backup-code"}

    def web(self, browser, creds, login, factor):
        status, _, content = browser.request("GET", "/login")
        expect("GET login", status, 200)
        token = csrf(content, "GET login")
        status, answer, content = browser.request("POST", "/login", form={
            "csrfmiddlewaretoken": token, "login": login, "password": PASSWORD})
        expect("POST password", status, 302, answer, "/login/", content)
        method, code = creds.proof(login, factor)
        page = self.pages[method]
        status, _, content = browser.request("GET", page)
        expect("GET code page", status, 200)
        token = csrf(content, "GET code page")
        status, answer, content = browser.request("POST", page, form={"csrfmiddlewaretoken": token, "code": code})
        expect("POST code", status, 302, content=content)
        if "/login" in (answer.getheader("Location") or ""):
            raise FlowError("POST code", "302->login")
        status, _, content = browser.request("GET", TWOSTEP_ME)
        expect("GET me", status, 200)
        if b'"enabled": true' not in content and b'"enabled":true' not in content:
            raise FlowError("GET me", "not signed in with 2FA")

    def api(self, browser, creds, login, factor):
        status, _, _ = browser.request("GET", "/api/v1/auth/session")
        expect("GET session", status, 200)
        token = {"X-CSRFToken": browser.cookies.get("csrftoken", "")}
        status, answer, _ = browser.request("POST", "/api/v1/auth/login", data={"login": login, "password": PASSWORD},
                                            headers=token)
        expect("POST login", status, 200, answer)
        method, code = creds.proof(login, factor)
        status, _, _ = browser.request("POST", "/api/v1/auth/second-factor", data={"method": method, "code": code},
                                       headers=token)
        expect("POST second-factor", status, 200)


class Allauth(Site):
    name = "allauth"
    session_cookie = "sessionid"

    def web(self, browser, creds, login, factor):
        status, _, content = browser.request("GET", "/accounts/login/")
        expect("GET login", status, 200)
        token = csrf(content, "GET login")
        status, answer, content = browser.request("POST", "/accounts/login/", form={
            "csrfmiddlewaretoken": token, "login": login, "password": PASSWORD})
        expect("POST password", status, 302, answer, "/accounts/2fa/authenticate/", content)
        status, _, content = browser.request("GET", "/accounts/2fa/authenticate/")
        expect("GET code page", status, 200)
        token = csrf(content, "GET code page")
        _, code = creds.proof(login, factor)
        status, answer, content = browser.request("POST", "/accounts/2fa/authenticate/", form={
            "csrfmiddlewaretoken": token, "code": code})
        expect("POST code", status, 302, answer, "/me.json", content)
        status, _, _ = browser.request("GET", "/me.json")
        expect("GET me", status, 200)


# A closed loop of N clients ------------------------------------------------------------------

@dataclass
class Run:
    side: str
    scenario: str
    clients: int
    window: float
    signins: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)
    latencies: list = field(default_factory=list)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    waited: float = 0.0
    measured_ok: int = 0  # of the sign-ins started inside the window
    total_ok: int = 0  # every successful sign-in of the run, warm-up and drain included
    total_failed: int = 0

    @property
    def rate(self) -> float:
        return self.signins / self.window

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    @property
    def cpu_per_signin(self) -> float:
        return self.server_cpu / self.total_ok if self.total_ok else float("nan")

    @property
    def client_cpu_per_signin(self) -> float:
        return self.client_cpu / self.total_ok if self.total_ok else float("nan")

    def as_dict(self) -> dict:
        return {"side": self.side, "scenario": self.scenario, "clients": self.clients, "window_s": self.window,
                "signins": self.signins, "signins_per_s": round(self.rate, 2),
                "p50_ms": _ms(self.percentile(50)), "p99_ms": _ms(self.percentile(99)),
                "errors": sum(self.errors.values()), "error_kinds": dict(self.errors),
                "measured_started": len(self.latencies), "measured_ok": self.measured_ok,
                "total_ok": self.total_ok, "total_failed": self.total_failed,
                "server_cpu_s": round(self.server_cpu, 2),
                "server_cpu_ms_per_signin": round(self.cpu_per_signin * 1000, 2) if self.total_ok else None,
                "client_cpu_ms_per_signin": round(self.client_cpu_per_signin * 1000, 2) if self.total_ok else None,
                "credential_wait_s": round(self.waited, 2), "load_avg_1min": round(os.getloadavg()[0], 1)}


def closed_loop(site: Site, flow: str, creds: Credentials, factor: str, clients: int, warmup: float,
                window: float, scenario: str, *, browsers: list[Browser] | None = None,
                keep_cookies: bool = False, logins: list[str] | None = None) -> Run:
    """N clients signing in back to back, through a warm-up, a measured window, and a drain.

    sign-ins/s: successful sign-ins finished inside the window (which grows, up to 2.5 ×, until
    2 × N have finished). Latency and errors: every sign-in started inside the window, however
    late it ends. Server CPU per sign-in: the server's CPU from before the first request to after
    the last answer, over every successful sign-in of the run (so nothing in flight at the
    window's edges is charged to the wrong sign-ins).

    keep_cookies: a returning browser (everything but the session kept, e.g. a device cookie, and
    its kept-alive connection); otherwise every sign-in starts from an empty jar and a connection
    of its own, as a new browser (a connection kept across sign-ins stays with the server worker
    that took it first, and an uneven share of them between workers shows as latency). logins: client i always
    signs in as logins[i] (a member on their own browser); otherwise any free user.

    A sign-in refused with 429 or 503 counts as an error; its client then waits the answer's
    Retry-After before the next one, as a person at twostep's page must (its button is held,
    counting down), rather than asking again at once.
    """
    run = Run(site.name, scenario, clients, window)
    stop, measuring = threading.Event(), threading.Event()
    lock = threading.Lock()
    sign_in = getattr(site, flow)
    browsers = browsers or [Browser(site.server.port) for _ in range(clients)]
    waited_before = creds.waited
    totals = {"ok": 0, "failed": 0}
    window_state = {"open": False}

    def loop(index: int) -> None:
        browser = browsers[index]
        while not stop.is_set():
            login = logins[index] if logins else creds.take(factor, stop)
            if login is None:
                return
            if logins:
                with creds.lock:
                    usable = creds.last_step[login] < int(time.time() // 30) or bool(creds.codes[login])
                if not usable:
                    stop.wait(min(1.0, 30 - time.time() % 30 + 0.05))
                    continue
            if keep_cookies:
                browser.cookies.pop(site.session_cookie, None)
            else:  # a new browser: no cookies, and its own connection
                browser.cookies.clear()
                browser.close()
            in_window = measuring.is_set()
            started = time.perf_counter()
            pause = 0.0
            try:
                sign_in(browser, creds, login, factor)
                failure = None
            except FlowError as error:
                failure = f"{error.step}: {error.status}"
                pause = error.retry_after  # the page holds its button for that long; a person waits
            except (OSError, http.client.HTTPException) as error:
                browser.close()
                failure = f"connection: {type(error).__name__}"
            elapsed = time.perf_counter() - started
            if not logins:
                creds.give_back(login)
            with lock:
                totals["failed" if failure else "ok"] += 1
                if failure:
                    run.errors[failure] += 1
                if in_window:
                    run.latencies.append(elapsed)
                    run.measured_ok += failure is None
                if window_state["open"] and failure is None:
                    run.signins += 1
            if pause:
                stop.wait(pause)

    cpu0, client0 = site.server.cpu(), time.process_time()
    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    with lock:
        measuring.set()
        window_state["open"] = True
    started = time.monotonic()
    time.sleep(window)
    while run.signins < 2 * clients and time.monotonic() - started < 2.5 * window:
        time.sleep(0.25)
    with lock:  # the window closes here: no sign-in finishing later counts for the rate
        window_state["open"] = False
        measuring.clear()
        run.window = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT * 5 + 5)
    run.server_cpu = site.server.cpu() - cpu0
    run.client_cpu = time.process_time() - client0
    run.total_ok, run.total_failed = totals["ok"], totals["failed"]
    run.waited = creds.waited - waited_before
    return run


# Set-up: databases with users, cached by what decides their content ---------------------------

def _digest(paths: list[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def twostep_env(data: Path, hasher: str, *, database_url: str | None = None, **more) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "BENCH_", "DJANGO_"))}
    env.update(TWOSTEP_DATA_DIR=str(data), TWOSTEP_LOG_LEVEL="WARNING", BENCH_HASHER=hasher,
               DJANGO_SETTINGS_MODULE="bench_settings",
               PYTHONPATH=os.pathsep.join([str(BENCH), str(ROOT), str(ROOT / "src")]))
    if database_url:
        env["TWOSTEP_DATABASE_URL"] = database_url
    env.update(TWOSTEP_SETTINGS)
    env.update(more)
    return env


def allauth_env(data: Path, hasher: str, params: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "BENCH_", "DJANGO_"))}
    env.update(BENCH_DATA_DIR=str(data), BENCH_HASHER=hasher, DJANGO_SETTINGS_MODULE="benchsite.settings",
               PYTHONPATH=str(ALLAUTH_SITE))
    # "tuned" (default): twostep's SQLite options; "django": Django's defaults (allauth_site settings).
    env["BENCH_ALLAUTH_SQLITE"] = os.environ.get("BENCH_ALLAUTH_SQLITE", "tuned")
    for key in ("time_cost", "memory_cost", "parallelism"):
        if key in params:
            env[f"BENCH_ARGON2_{key.upper()}"] = str(params[key])
    return env


def _run(command: list[str], env: dict, timeout: float, what: str) -> str:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"bench: {what} took more than {timeout:.0f} s") from None
    if done.returncode:
        raise SystemExit(f"bench: {what} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def pg_admin(sql: str) -> None:
    """Run one statement on the PostgreSQL server of PG_URL (in twostep's venv: psycopg)."""
    parts = urllib.parse.urlsplit(PG_URL)
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    code = ("import psycopg,sys\n"
            "with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=5) as c: c.execute(sys.argv[2])")
    _run([TWOSTEP_PY, "-c", code, admin, sql], os.environ.copy(), 60, f"PostgreSQL: {sql}")


def pg_name(url: str = PG_URL) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


def template(side: str, users: int, *, postgres: bool = False) -> tuple[Path, dict]:
    """A data dir with `users` users (MD5 hashes), made once and reused while nothing it depends on changes."""
    if side == "twostep":
        inputs = [*(ROOT / "src" / "twostep" / "migrations").glob("*.py"), BENCH / "twostep_setup.py"]
    else:
        inputs = [ALLAUTH_SITE / "setup_users.py", ALLAUTH_SITE / "requirements.txt",
                  ALLAUTH_SITE / "benchsite" / "settings.py"]
    key = _digest(inputs, f"{side}:{users}:{'pg, analyzed' if postgres else 'sqlite'}")
    place = CACHE / f"template-{side}{'-pg' if postgres else ''}-{key}"
    tpl_db = f"{pg_name()}_tpl_{key}"
    ready = place / "users.json"
    if ready.exists() and postgres:
        # The template database must still be there (a PostgreSQL restarted from scratch has none).
        probe = subprocess.run([TWOSTEP_PY, "-c", "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=5)",
                                urllib.parse.urlunsplit(urllib.parse.urlsplit(PG_URL)._replace(path="/" + tpl_db))],
                               capture_output=True, timeout=30, check=False)
        if probe.returncode:
            shutil.rmtree(place)
    if not ready.exists():
        shutil.rmtree(place, ignore_errors=True)
        for old in CACHE.glob(f"template-{side}{'-pg' if postgres else ''}-*"):
            shutil.rmtree(old, ignore_errors=True)
        place.mkdir(parents=True)
        started = time.monotonic()
        say(f"  making the {side} template: {users} users with an authenticator app and backup codes …")
        if side == "twostep":
            url = None
            if postgres:
                url = urllib.parse.urlunsplit(urllib.parse.urlsplit(PG_URL)._replace(path="/" + tpl_db))
                pg_admin(f'DROP DATABASE IF EXISTS "{tpl_db}" WITH (FORCE)')
                pg_admin(f'CREATE DATABASE "{tpl_db}"')
            _run([TWOSTEP_PY, str(BENCH / "twostep_setup.py"), "--users", str(users), "--password", PASSWORD,
                  "--out", str(place / "users.tmp")], twostep_env(place / "data", "md5", database_url=url),
                 900, "twostep set-up")
            if url:  # planner statistics, as autovacuum keeps them on a live server (a copy keeps them)
                _run([TWOSTEP_PY, "-c", "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True)"
                      ".execute('ANALYZE')", url], os.environ.copy(), 120, "PostgreSQL: ANALYZE")
        else:
            _run([ALLAUTH_PY, str(ALLAUTH_SITE / "setup_users.py"), "--users", str(users), "--password", PASSWORD,
                  "--out", str(place / "users.tmp")], allauth_env(place / "data", "md5", {}), 600, "allauth set-up")
        (place / "users.tmp").rename(ready)
        say(f"    done in {time.monotonic() - started:.0f} s")
    users = json.loads(ready.read_text())
    users["_made_at"] = ready.stat().st_mtime
    return place, users


def fresh_copy(side: str, place: Path, hasher: str, params: dict, *, postgres: bool = False) -> Path:
    """A copy of the template's data dir, its users' password hash made with `hasher`."""
    data = CACHE / "run" / f"{side}-{hasher}{'-pg' if postgres else ''}"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(place / "data", data)
    if side == "twostep":
        url = None
        if postgres:
            url = PG_URL
            tpl_db = f"{pg_name()}_tpl_{place.name.rsplit('-', 1)[-1]}"
            pg_admin(f'DROP DATABASE IF EXISTS "{pg_name()}" WITH (FORCE)')
            pg_admin(f'CREATE DATABASE "{pg_name()}" TEMPLATE "{tpl_db}"')
        if hasher != "md5":
            _run([TWOSTEP_PY, str(BENCH / "twostep_setup.py"), "--rehash", "--password", PASSWORD],
                 twostep_env(data, hasher, database_url=url), 300, "twostep rehash")
    elif hasher != "md5":
        _run([ALLAUTH_PY, str(ALLAUTH_SITE / "setup_users.py"), "--rehash", "--password", PASSWORD],
             allauth_env(data, hasher, params), 300, "allauth rehash")
    return data


def start_twostep(data: Path, hasher: str, *, postgres: bool = False, **more) -> Server:
    env = twostep_env(data, hasher, database_url=PG_URL if postgres else None, **more)
    threads = ["--threads", TWOSTEP_THREADS] if TWOSTEP_THREADS else []
    threads += ["--workers", TWOSTEP_WORKERS] if TWOSTEP_WORKERS else []
    return Server("twostep", [TWOSTEP_PY, "-m", "twostep", "serve", "--port", str(TWOSTEP_PORT), *threads], env,
                  TWOSTEP_PORT, "/healthz")


def start_allauth(data: Path, hasher: str, params: dict) -> Server:
    command = [ALLAUTH_PY, "-m", "gunicorn", "--workers", "3", "--worker-class", "sync",
               "--bind", f"127.0.0.1:{ALLAUTH_PORT}", "--log-level", "warning", "--timeout", "120",
               "benchsite.wsgi:application"]
    return Server("allauth", command, allauth_env(data, hasher, params), ALLAUTH_PORT, "/accounts/login/",
                  cwd=str(ALLAUTH_SITE))


# The hash-only ceiling -----------------------------------------------------------------------

CEILING_CODE = r"""
import json, os, statistics, sys, time
import django
django.setup()
from django.contrib.auth.hashers import check_password, get_hasher, make_password
hasher = get_hasher("default")
encoded = make_password(sys.argv[1])
check_password(sys.argv[1], encoded)
samples = []
for _ in range(int(sys.argv[2])):
    cpu, wall = time.process_time(), time.perf_counter()
    assert check_password(sys.argv[1], encoded)
    samples.append((time.process_time() - cpu, time.perf_counter() - wall))
params = {k: getattr(hasher, k) for k in ("time_cost", "memory_cost", "parallelism") if hasattr(hasher, k)}
print(json.dumps({"hasher": type(hasher).__name__, "algorithm": hasher.algorithm, "params": params,
                  "cpu_s": [s[0] for s in samples], "wall_s": [s[1] for s in samples]}))
"""


def ceiling(hasher: str, repeats: int, when: str = "at the start") -> dict:
    data = CACHE / "run" / "ceiling"
    data.mkdir(parents=True, exist_ok=True)
    # The hash as `twostep serve` runs it: its memory given back after each hash (hashers.py) and,
    # where serve starts itself with glibc's huge-page tunable, in huge pages (server.py).
    env = twostep_env(data, hasher)
    out = _run([TWOSTEP_PY, "-c", CEILING_CODE, PASSWORD, str(repeats)], environment_with_huge_pages(env) or env,
               300, "the hash-only ceiling")
    found = json.loads(out.strip().splitlines()[-1])
    cpu = statistics.median(found["cpu_s"])
    found.update(hasher_mode=hasher, cpu_per_hash_s=cpu, cpu_min_s=min(found["cpu_s"]),
                 cpu_max_s=max(found["cpu_s"]), cores=CORES, ceiling_signins_per_s=CORES / cpu, when=when)
    record("ceiling", **{k: v for k, v in found.items() if k not in ("cpu_s", "wall_s")})
    say(f"  {hasher:<15} {when}: {found['hasher']} {found['params']}: {cpu * 1000:.0f} ms CPU per verification "
        f"(min {found['cpu_min_s'] * 1000:.0f}, max {found['cpu_max_s'] * 1000:.0f}, {repeats} runs, "
        f"wall median {statistics.median(found['wall_s']) * 1000:.0f} ms) "
        f"→ ceiling {CORES} cores / {cpu * 1000:.0f} ms = {CORES / cpu:.1f} sign-ins/s")
    return found


# Reports -------------------------------------------------------------------------------------

def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    values = [v for v in values if v == v]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def report(title: str, runs: dict[str, list[Run]], ceil: dict | None = None) -> None:
    """One scenario: each side's min/median/max over its repetitions, then the ratios."""
    say(f"\n{title}  (min/median/max of {max(len(r) for r in runs.values())} runs)")
    say(f"  {'':9}{'sign-ins/s':>18}{'p50 ms':>18}{'p99 ms':>18}{'errors':>10}{'CPU ms/sign-in':>20}"
        f"{'client CPU ms':>15}")
    for side, side_runs in runs.items():
        errors = sum(sum(r.errors.values()) for r in side_runs)
        kinds = collections.Counter()
        for r in side_runs:
            kinds.update(r.errors)
        say(f"  {side:9}{spread([r.rate for r in side_runs]):>18}"
            f"{spread([r.percentile(50) * 1000 for r in side_runs], '{:.0f}'):>18}"
            f"{spread([r.percentile(99) * 1000 for r in side_runs], '{:.0f}'):>18}{errors:>10}"
            f"{spread([r.cpu_per_signin * 1000 for r in side_runs]):>20}"
            f"{spread([r.client_cpu_per_signin * 1000 for r in side_runs]):>15}")
        if kinds:
            say(f"  {'':9}errors: " + ", ".join(f"{k} ×{n}" for k, n in kinds.most_common(5)))
        waited = sum(r.waited for r in side_runs)
        if waited > 0.5:
            say(f"  {'':9}(clients waited {waited:.1f} s in all for users with an unused time step)")
        if ceil:
            hash_share(side, side_runs, ceil)
    summary = {"scenario": title}
    for side, side_runs in runs.items():
        summary[side] = {"signins_per_s": [round(r.rate, 2) for r in side_runs],
                         "cpu_ms_per_signin": [None if not r.total_ok else round(r.cpu_per_signin * 1000, 2)
                                               for r in side_runs],
                         "p50_ms": [_ms(r.percentile(50)) for r in side_runs],
                         "p99_ms": [_ms(r.percentile(99)) for r in side_runs],
                         "errors": [sum(r.errors.values()) for r in side_runs]}
    if "twostep" in runs and "allauth" in runs:
        pairs = list(zip(runs["twostep"], runs["allauth"], strict=False))
        rates = [t.rate / a.rate for t, a in pairs if a.rate]
        cpus = [t.cpu_per_signin / a.cpu_per_signin for t, a in pairs if a.total_ok and t.total_ok]
        say(f"  twostep/allauth: sign-ins/s {spread(rates, '{:.2f}')}×, CPU per sign-in {spread(cpus, '{:.2f}')}× "
            f"(each the ratio within one repetition)")
        summary["ratio_signins_per_s"] = [round(x, 3) for x in rates]
        summary["ratio_cpu_per_signin"] = [round(x, 3) for x in cpus]
    record("summary", **summary)


def hash_share(side: str, side_runs: list[Run], ceil: dict) -> dict:
    """Say, and return, how near one side came to the hash-only ceiling and the hash's share of its CPU."""
    per_hash = ceil["cpu_per_hash_s"]
    share = {"of_ceiling_pct": [round(100 * r.rate / ceil["ceiling_signins_per_s"], 1) for r in side_runs],
             "hash_of_cpu_pct": [round(100 * per_hash / r.cpu_per_signin, 1) for r in side_runs if r.total_ok],
             "besides_hash_ms": [round((r.cpu_per_signin - per_hash) * 1000, 1) for r in side_runs if r.total_ok]}
    say(f"  {side:9}{spread(share['of_ceiling_pct'], '{:.0f}')} % of the hash-only ceiling "
        f"({ceil['ceiling_signins_per_s']:.1f}/s); the hash is {spread(share['hash_of_cpu_pct'], '{:.0f}')} % of "
        f"the CPU per sign-in; besides the hash {spread(share['besides_hash_ms'])} ms")
    return share


def side_by_side(title: str, sites: list[Site], creds: dict[str, Credentials], factor: str, clients: int,
                 reps: int, warmup: float, window: float, ceil: dict | None = None, flow: str = "web") -> dict:
    runs: dict[str, list[Run]] = {site.name: [] for site in sites}
    for rep in range(reps):
        for site in sites:
            run = closed_loop(site, flow, creds[site.name], factor, clients, warmup, window, title)
            runs[site.name].append(run)
            record("run", rep=rep + 1, **run.as_dict())
    report(title, runs, ceil)
    return runs


def warm_up(sites: list[Site], creds: dict[str, Credentials], count: int = 4) -> None:
    """A few sign-ins on each new server (imports, templates, connections), not measured."""
    for site in sites:
        browser = Browser(site.server.port)
        for _ in range(count):
            login = creds[site.name].take("totp", threading.Event())
            browser.cookies.clear()
            with contextlib.suppress(FlowError, OSError, http.client.HTTPException):
                site.web(browser, creds[site.name], login, "totp")
            creds[site.name].give_back(login)
        browser.close()


def idle_cpu(servers: list[Server], seconds: float = 3.0) -> None:
    """The servers' CPU with nothing to do (queue worker polling, timers): part of every run's figure."""
    before = [s.cpu() for s in servers]
    time.sleep(seconds)
    for server, cpu in zip(servers, before, strict=True):
        rate = (server.cpu() - cpu) / seconds
        record("idle_cpu", side=server.name, cpu_ms_per_s=round(rate * 1000, 1))
        say(f"  {server.name:8} idle: {rate * 1000:.1f} ms of CPU a second")


def rss_at_rest(server: Server, label: str) -> dict:
    sizes = server.rss()
    rows = []
    for pid, mb in sorted(sizes.items()):
        role = "arbiter" if pid == server.pid else ("queue worker" if " worker" in process_name(pid) else "worker")
        rows.append({"pid": pid, "role": role, "rss_mb": round(mb, 1)})
    record("rss_at_rest", side=server.name, label=label, processes=rows)
    say(f"  {server.name:8} at rest ({label}): " + ", ".join(f"{r['role']} {r['rss_mb']:.0f} MB" for r in rows))
    return sizes


def _ms(seconds: float) -> int | None:
    return None if seconds != seconds else round(seconds * 1000)


# The flood -----------------------------------------------------------------------------------

def flood(server: Server, users: dict, members: list[str], strangers: list[str], rate: float, warmup: float,
          duration: float, rep: int) -> dict:
    """Wrong passwords at `rate` a second (open loop, each from its own address) while members sign in."""
    creds = Credentials(users, members, codes_per_user=10)
    site = Twostep(server)
    browsers = [Browser(server.port, address=f"10.77.{rep}.{i + 1}") for i in range(len(members))]
    # Each member signed in on this browser before: whatever cookies that left stay in the jar.
    # Sixteen new browsers at once on a busy machine can find the hashing gate full; like a
    # person, a member refused with 503 tries again a little later (a few times), so that each
    # starts the flood with the device cookie a real member would have.
    def first_sign_in(browser: Browser, login: str) -> None:
        for _ in range(8):
            try:
                site.web(browser, creds, login, "any")
                return
            except FlowError as error:
                if error.status != 503:
                    return
            except (OSError, http.client.HTTPException):
                browser.close()
            time.sleep(1.0 + random.random())

    earlier = [threading.Thread(target=first_sign_in, args=pair, daemon=True) for pair in zip(browsers, members, strict=True)]
    for thread in earlier:
        thread.start()
    for thread in earlier:
        thread.join(timeout=REQUEST_TIMEOUT * 5 + 5)
    with_cookie = sum(1 for browser in browsers if "twostep_device" in browser.cookies)
    # One CSRF cookie and token, reused by every stranger (a script fetches it once).
    opener = Browser(server.port, address="198.18.0.1")
    _, _, content = opener.request("GET", "/login")
    token, cookie = csrf(content, "flood GET login"), opener.cookies.get("csrftoken", "")
    statuses, retry_after = collections.Counter(), collections.Counter()
    lock = threading.Lock()
    sent = [0]
    late = [0]
    stop = threading.Event()
    peak = {"rss_sum_mb": 0.0, "rss_max_mb": 0.0}

    def stranger(n: int, due: float) -> None:
        if time.monotonic() - due > 0.5:  # the client could not keep the open loop's pace
            with lock:
                late[0] += 1
        address = f"100.{64 + (n >> 16) % 64}.{(n >> 8) & 255}.{n & 255}"
        login = strangers[n % len(strangers)] if n % 2 else f"nobody{n}"
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "login": login,
                                           "password": f"wrong {n}"})
            connection.request("POST", "/login", body=body, headers={
                "Host": f"127.0.0.1:{server.port}", "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={cookie}", "X-Forwarded-For": address, "Connection": "close",
                "Referer": f"http://127.0.0.1:{server.port}/"})
            answer = connection.getresponse()
            answer.read()
            key = answer.status
            has_retry = answer.getheader("Retry-After") is not None
            connection.close()
        except TimeoutError:
            key, has_retry = "timeout", False
        except (OSError, http.client.HTTPException) as error:
            key, has_retry = type(error).__name__, False
        with lock:
            statuses[key] += 1
            retry_after[key] += has_retry

    def watch() -> None:
        while not stop.wait(0.25):
            sizes = server.rss()
            peak["rss_sum_mb"] = max(peak["rss_sum_mb"], sum(sizes.values()))
            peak["rss_max_mb"] = max(peak["rss_max_mb"], max(sizes.values(), default=0))

    def schedule(pool: ThreadPoolExecutor) -> None:
        started = time.monotonic()
        n = 0
        while not stop.is_set():
            due = started + n / rate
            now = time.monotonic()
            if due > now:
                stop.wait(due - now)
            if stop.is_set():
                break
            pool.submit(stranger, rep * 1_000_000 + n, due)
            sent[0] += 1
            n += 1

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    cpu0 = server.cpu()
    # Enough threads for every stranger to wait out its timeout without holding up the next.
    with ThreadPoolExecutor(max_workers=int(min(800, rate * 12 + 16))) as pool:
        scheduler = threading.Thread(target=schedule, args=(pool,), daemon=True)
        scheduler.start()
        run = closed_loop(site, "web", creds, "any", len(members), warmup, duration, "flood members",
                          browsers=browsers, keep_cookies=True, logins=members)
        stop.set()
        scheduler.join(timeout=5)
    watcher.join(timeout=5)
    cpu = server.cpu() - cpu0
    hwm = {pid: status_kb(pid, "VmHWM") / 1024 for pid in tree(server.pid)}
    attempts = len(run.latencies)  # member sign-ins started during the flood's window
    result = {
        "rep": rep + 1, "flood_rate_per_s": round(rate, 1), "flood_sent": sent[0], "flood_late": late[0],
        "flood_statuses": {str(k): v for k, v in statuses.items()},
        "flood_retry_after": {str(k): v for k, v in retry_after.items() if v},
        "members": len(members), "members_with_device_cookie": with_cookie,
        "member_signins": run.measured_ok, "member_attempts": attempts,
        "member_signins_per_s": round(run.rate, 2),
        "member_success_pct": round(100 * run.measured_ok / attempts, 1) if attempts else 0.0,
        "member_p50_ms": _ms(run.percentile(50)), "member_p99_ms": _ms(run.percentile(99)),
        "member_errors": dict(run.errors), "server_cpu_s": round(cpu, 1),
        "peak_rss_sum_mb": round(peak["rss_sum_mb"]), "peak_rss_process_mb": round(peak["rss_max_mb"]),
        "vm_hwm_mb": {str(pid): round(mb) for pid, mb in hwm.items()},
    }
    record("flood", **result)
    say(f"  run {rep + 1}: strangers {sent[0]} sent at {rate:.0f}/s"
        f"{f' ({late[0]} sent late)' if late[0] else ''}, answers "
        + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))
        + f"; Retry-After on {sum(retry_after.values())}")
    say(f"         members ({with_cookie} of {len(members)} with a device cookie from their first sign-in): "
        f"{run.measured_ok}/{attempts} signed in ({result['member_success_pct']} %, "
        f"{run.rate:.1f}/s), "
        f"p50 {result['member_p50_ms']} ms, p99 {result['member_p99_ms']} ms"
        + (f", failures {dict(run.errors)}" if run.errors else ""))
    say(f"         peak RSS of the server's processes together {result['peak_rss_sum_mb']} MB, largest one "
        f"{result['peak_rss_process_mb']} MB (VmHWM per process: {sorted(result['vm_hwm_mb'].values())})")
    return result


# Markdown tables from a run's JSON lines (docs/performance.md) --------------------------------

def markdown(path: Path) -> str:
    """The figures of one `make bench` run as docs/performance.md shows them."""
    lines = [json.loads(row) for row in path.read_text().splitlines() if row.strip()]

    def mmm(values, fmt="{:.1f}"):
        return spread([v for v in values if v is not None], fmt)

    def sides(row):
        return [(side, row[side]) for side in ("twostep", "allauth") if side in row]

    out = []
    for row in lines:
        if row["kind"] == "machine":
            out.append(f"Commit {row['commit']}, {row['cores']} cores ({row['cpu']}), load average "
                       f"{row['load_avg'][0]:.1f} at start, allauth SQLite: {row.get('allauth_sqlite', '?')}, "
                       f"{row['reps']} runs per scenario (min/median/max).\n")
    out.append("| scenario | side | sign-ins/s | p50 ms | p99 ms | errors | server CPU ms per sign-in |")
    out.append("|---|---|---|---|---|---|---|")
    ratios = []
    for row in lines:
        if row["kind"] != "summary":
            continue
        for side, fig in sides(row):
            out.append(f"| {row['scenario']} | {side} | {mmm(fig['signins_per_s'])} | "
                       f"{mmm(fig['p50_ms'], '{:.0f}')} | {mmm(fig['p99_ms'], '{:.0f}')} | "
                       f"{sum(fig['errors'])} | {mmm(fig['cpu_ms_per_signin'])} |")
        if "ratio_signins_per_s" in row:
            ratios.append(f"| {row['scenario']} | {mmm(row['ratio_signins_per_s'], '{:.2f}')} | "
                          f"{mmm(row['ratio_cpu_per_signin'], '{:.2f}')} |")
    if ratios:
        out += ["", "| scenario | twostep/allauth sign-ins/s | twostep/allauth CPU per sign-in |", "|---|---|---|",
                *ratios]
    ceilings = [r for r in lines if r["kind"] == "ceiling"]
    if ceilings:
        out += ["", "| hasher | measured | parameters | CPU per verification (median, min–max) | ceiling on "
                f"{ceilings[0]['cores']} cores |", "|---|---|---|---|---|"]
        for c in ceilings:
            out.append(f"| {c['hasher_mode']} | {c.get('when', 'at the start')} | {c['params']} | "
                       f"{c['cpu_per_hash_s'] * 1000:.0f} ms ({c['cpu_min_s'] * 1000:.0f}–{c['cpu_max_s'] * 1000:.0f}) | "
                       f"{c['ceiling_signins_per_s']:.1f} sign-ins/s |")
    shares = [r for r in lines if r["kind"] == "hash_share"]
    if shares:
        out += ["", "| scenario | ceiling, mean of just before and after (after/before) | side | % of that ceiling "
                "| hash % of the CPU | ms besides the hash |", "|---|---|---|---|---|---|"]
        for h in shares:
            for side, f in sides(h):
                out.append(f"| {h['scenario']} | {h['cpu_per_hash_s'] * 1000:.0f} ms ({h['drift']:.2f}) | {side} | "
                           f"{mmm(f['of_ceiling_pct'], '{:.0f}')} | {mmm(f['hash_of_cpu_pct'], '{:.0f}')} | "
                           f"{mmm(f['besides_hash_ms'])} |")
    floods = [r for r in lines if r["kind"] == "flood"]
    if floods:
        out += ["", "| flood run | strangers sent (rate) | their answers | with Retry-After | members signed in "
                "| members p50 / p99 ms | peak RSS, all / largest process |", "|---|---|---|---|---|---|---|"]
        for f in floods:
            answers = ", ".join(f"{k}: {v}" for k, v in sorted(f["flood_statuses"].items()))
            out.append(f"| {f['rep']} | {f['flood_sent']} ({f['flood_rate_per_s']}/s) | {answers} | "
                       f"{sum(f['flood_retry_after'].values())} | {f['member_signins']}/{f['member_attempts']} "
                       f"({f['member_success_pct']} %) | {f['member_p50_ms']} / {f['member_p99_ms']} | "
                       f"{f['peak_rss_sum_mb']} / {f['peak_rss_process_mb']} MB |")
    rest = [r for r in lines if r["kind"] == "rss_at_rest"]
    if rest:
        out += ["", "| side | when | RSS per process |", "|---|---|---|"]
        for r in rest:
            out.append(f"| {r['side']} | {r['label']} | "
                       + ", ".join(f"{p['role']} {p['rss_mb']:.0f} MB" for p in r["processes"]) + " |")
    return "\n".join(out)


# The plan ------------------------------------------------------------------------------------

def main() -> int:
    global OUT, JSONL, JSON_STDOUT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~2-minute subset: one run of each main figure")
    parser.add_argument("--json", action="store_true", help="JSON lines on standard output, the report on standard error")
    parser.add_argument("--reps", type=int, help="repetitions of each scenario (default 3; --quick 1)")
    parser.add_argument("--window", type=float, help="seconds measured per run with MD5 (default 7)")
    parser.add_argument("--users", type=int, default=int(os.environ.get("BENCH_USERS", 6000)),
                        help="users per site (each app code is good once per 30 s)")
    parser.add_argument("--only", default="",
                        help="comma-separated: md5,argon2,api,postgres,flood,ceiling (default: all)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--markdown", metavar="JSONL", type=Path,
                        help="print the tables of an earlier run's JSON lines as Markdown, and stop")
    options = parser.parse_args()
    if options.markdown:
        print(markdown(options.markdown))
        return 0
    if options.json:
        OUT, JSON_STDOUT = sys.stderr, True
    reps = options.reps or (1 if options.quick else 3)
    window = options.window or (6.0 if options.quick else 7.0)
    warmup = 2.0
    only = {s for s in options.only.split(",") if s} or {"md5", "argon2", "api", "postgres", "flood", "ceiling"}
    if options.no_postgres:
        only.discard("postgres")
    CACHE.mkdir(parents=True, exist_ok=True)
    JSONL = CACHE / f"{datetime.datetime.now(datetime.UTC).strftime('%Y%m%dT%H%M%SZ')}.jsonl"
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    if not Path(ALLAUTH_PY).exists():
        raise SystemExit("bench: no django-allauth venv; run `make bench-allauth-venv` first")
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                            text=True, check=False).stdout.strip()
    began = time.monotonic()
    machine = {"allauth_sqlite": os.environ.get("BENCH_ALLAUTH_SQLITE", "tuned"), "cores": CORES, "load_avg": os.getloadavg(), "commit": commit, "quick": options.quick, "reps": reps,
               "python": sys.version.split()[0], "cpu": _cpu_model()}
    record("machine", **machine)
    say(f"twostep {commit} against django-allauth (SQLite: {os.environ.get('BENCH_ALLAUTH_SQLITE', 'tuned')}), "
        f"{CORES} cores ({machine['cpu']}), load average "
        f"{' '.join(f'{x:.1f}' for x in machine['load_avg'])} at start; results also in {JSONL.relative_to(ROOT)}")

    say("\nSet-up")
    t_place, t_users = template("twostep", options.users)
    a_place, a_users = template("allauth", options.users)

    say("\nHash-only ceiling: one Argon2 verification, in-process, CPU seconds")
    ceiling_runs = 3 if options.quick else 7
    ceilings = {}
    if only & {"ceiling", "argon2", "flood"}:
        for mode in ("argon2-django", "argon2-twostep"):
            ceilings[mode] = ceiling(mode, ceiling_runs)
    twostep_params = ceilings.get("argon2-twostep", {}).get("params", {})
    same_params = twostep_params == ceilings.get("argon2-django", {}).get("params", {})

    t_users.pop("_made_at"), a_users.pop("_made_at")
    # u0 was made through the services, its app confirmed with the code of that moment: left out.
    t_logins, a_logins = list(t_users)[1:], list(a_users)[1:]
    members_pool = t_logins[:48]  # the flood's members; the scenarios below use the rest
    t_creds = Credentials(t_users, t_logins[48:])
    a_creds = Credentials(a_users, a_logins[48:])

    if only & {"md5", "api"}:
        say("\nMD5 (benchmark only: the framework's own cost), SQLite")
        ts = start_twostep(fresh_copy("twostep", t_place, "md5", {}), "md5")
        aa = start_allauth(fresh_copy("allauth", a_place, "md5", {}), "md5", {})
        try:
            sites = [Twostep(ts), Allauth(aa)]
            creds = {"twostep": t_creds, "allauth": a_creds}
            warm_up(sites, creds)
            idle_cpu([ts, aa])
            if "md5" in only:
                side_by_side("MD5, app code, 16 clients, SQLite", sites, creds, "totp", 16, reps, warmup, window)
                rss_at_rest(ts, "after MD5 sign-ins")
                rss_at_rest(aa, "after MD5 sign-ins")
                if not options.quick:
                    side_by_side("MD5, backup code, 16 clients, SQLite", sites, creds, "backup_code", 16, reps,
                                 warmup, window)
                    side_by_side("MD5, app code, 64 clients, SQLite", sites, creds, "totp", 64, reps, warmup,
                                 window)
                    side_by_side("MD5, backup code, 64 clients, SQLite", sites, creds, "backup_code", 64, reps,
                                 warmup, window)
            if "api" in only:
                side_by_side("MD5, JSON API sign-in (3 requests), app code, 16 clients, SQLite", sites[:1],
                             creds, "totp", 16, reps, warmup, window, flow="api")
        finally:
            ts.stop()
            aa.stop()

    if "argon2" in only:
        modes = ["argon2-django"] if same_params else ["argon2-django", "argon2-twostep"]
        if same_params:
            say(f"\n(twostep's Argon2 parameters {twostep_params} are Django's defaults: one Argon2 scenario)")
        for mode in modes:
            params = ceilings[mode]["params"]
            say(f"\n{mode}: Argon2 {params}, SQLite")
            title = f"{mode}, app code, 16 clients, SQLite"
            # The machine's pace drifts (a quarter, even a half, within the hour on shared
            # machines): the ceiling is measured again on both sides of the scenario, with no
            # server running, and the hash's share read against the mean of the two as well.
            near = [ceiling(mode, ceiling_runs, f"just before {title}")]
            ts = start_twostep(fresh_copy("twostep", t_place, mode, params), mode)
            aa = start_allauth(fresh_copy("allauth", a_place, mode, params), mode, params)
            try:
                warm_up([Twostep(ts), Allauth(aa)], {"twostep": t_creds, "allauth": a_creds}, 2)
                runs = side_by_side(title, [Twostep(ts), Allauth(aa)], {"twostep": t_creds, "allauth": a_creds},
                                    "totp", 16, reps, 3.0, window * (1.5 if options.quick else 2),
                                    ceil=ceilings[mode])
            finally:
                ts.stop()
                aa.stop()
            near.append(ceiling(mode, ceiling_runs, f"just after {title}"))
            per_hash = statistics.mean(c["cpu_per_hash_s"] for c in near)
            drift = near[1]["cpu_per_hash_s"] / near[0]["cpu_per_hash_s"]
            say(f"  against the mean of the ceilings measured just before and after ({per_hash * 1000:.0f} ms a "
                f"hash, {CORES / per_hash:.1f}/s; after/before {drift:.2f}):")
            shares = {side: hash_share(side, side_runs, {"cpu_per_hash_s": per_hash,
                                                         "ceiling_signins_per_s": CORES / per_hash})
                      for side, side_runs in runs.items()}
            record("hash_share", scenario=title, cpu_per_hash_s=per_hash, drift=round(drift, 3), **shares)

    if "postgres" in only and not options.quick:
        say("\nMD5, PostgreSQL (twostep's own processes' CPU; PostgreSQL's not counted)")
        try:
            p_place, p_users = template("twostep", min(options.users, 2400), postgres=True)
        except SystemExit as error:
            say(f"  left out: {error}")
        else:
            ts = start_twostep(fresh_copy("twostep", p_place, "md5", {}, postgres=True), "md5", postgres=True)
            try:
                p_users.pop("_made_at")
                p_creds = Credentials(p_users, list(p_users)[1:])
                warm_up([Twostep(ts)], {"twostep": p_creds})
                side_by_side("MD5, app code, 16 clients, PostgreSQL", [Twostep(ts)], {"twostep": p_creds}, "totp",
                             16, reps, warmup, window)
            finally:
                ts.stop()

    if "flood" in only:
        mode = "argon2-twostep"
        ceil = ceilings[mode]
        rate = 5 * ceil["ceiling_signins_per_s"]
        say(f"\nFlood: wrong passwords at 5 × the hashing capacity ({rate:.0f}/s, each from its own "
            f"X-Forwarded-For address) while 16 members sign in; twostep, {mode} {ceil['params']}, SQLite")
        strangers = t_logins[-200:]
        for rep in range(1 if options.quick else min(reps, 3)):
            # A new server each time: the strangers a flood leaves queued must not meet the next one.
            ts = start_twostep(fresh_copy("twostep", t_place, mode, ceil["params"]), mode,
                               TWOSTEP_TRUSTED_PROXIES="127.0.0.1")
            try:
                if rep == 0:
                    rss_at_rest(ts, "Argon2, before the flood")
                flood(ts, t_users, members_pool[rep * 16:(rep + 1) * 16], strangers, rate, 3.0,
                      10.0 if options.quick else 15.0, rep)
                if rep == 0:
                    rss_at_rest(ts, "after the flood")
            finally:
                ts.stop()

    record("done", seconds=round(time.monotonic() - began))
    say(f"\nDone in {time.monotonic() - began:.0f} s; JSON lines in {JSONL.relative_to(ROOT)}")
    return 0


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
