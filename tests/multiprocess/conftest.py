"""Two real `twostep serve` processes on one fresh PostgreSQL database, and clients for them.

Each process has its own port and its own data dir; they share only what a deployment behind a
load balancer shares: the database (and Redis where configured) and the keys, given in the
environment. Users are made with the `twostep` command, as an operator would. The servers start
once per pytest session and are stopped, and the database dropped, at its end.

PostgreSQL comes from TWOSTEP_DATABASE_URL (scripts/test-all runs this folder after its
PostgreSQL pass, in one pytest process: under pytest-xdist each worker would start its own
servers). Without it the suite is skipped, unless TWOSTEP_REQUIRE_POSTGRES says it must run.
"""

from __future__ import annotations

import base64
import contextlib
import http.cookiejar
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import dj_database_url
import psycopg
import pyotp
import pytest

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
PASSWORD = "correct horse battery staple"
API = "/api/v1"
# Redis for the run with TWOSTEP_REDIS_URL set; a database number of its own by default.
REDIS_URL = os.environ.get("TWOSTEP_TEST_MULTIPROCESS_REDIS_URL", "redis://127.0.0.1:6379/7")
START_SECONDS = 60


# Clients -------------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    body: dict
    headers: dict = field(repr=False)

    @property
    def error(self) -> str | None:
        return self.body.get("error")


class Client:
    """One browser: its cookies go to whichever process it calls, as behind a load balancer.

    Requests arrive through the trusted proxy (127.0.0.1) with `address` in X-Forwarded-For, so
    each test throttles its own client address and never meets another test's counters.
    """

    def __init__(self, address: str):
        self.address = address
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def call(self, server: Server, method: str, path: str, body: dict | None = None) -> Answer:
        headers = {"X-Forwarded-For": self.address, "Accept-Language": "en"}
        data = None
        if method != "GET":
            if self.cookie("csrftoken") is None:
                self.call(server, "GET", "/auth/session")
            headers["X-CSRFToken"] = self.cookie("csrftoken") or ""
            headers["Content-Type"] = "application/json"
            data = json.dumps(body or {}).encode()
        request = urllib.request.Request(server.url + API + path, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=60) as response:
                return Answer(response.status, json.loads(response.read() or b"{}"), dict(response.headers))
        except urllib.error.HTTPError as error:
            with error:
                raw = error.read()
            return Answer(error.code, json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode()},
                          dict(error.headers))

    def get(self, server: Server, path: str) -> Answer:
        return self.call(server, "GET", path)

    def post(self, server: Server, path: str, body: dict | None = None) -> Answer:
        return self.call(server, "POST", path, body)

    def login(self, server: Server, login: str, password: str = PASSWORD) -> Answer:
        return self.post(server, "/auth/login", {"login": login, "password": password})

    def second_factor(self, server: Server, method: str, code: str) -> Answer:
        return self.post(server, "/auth/second-factor", {"method": method, "code": code})

    def stage(self, server: Server) -> str:
        return self.get(server, "/auth/session").body["stage"]


_addresses = itertools.count(1)
_RUN = secrets.token_hex(2)  # Redis outlives the run: another run's counters must not meet ours


def new_address() -> str:
    """Return a client address (IPv6 documentation range) no other test or run uses."""
    return f"2001:db8:{_RUN}::{next(_addresses):x}"


def fire_together(calls) -> list[Answer]:
    """Run the zero-argument callables in threads released at one moment; return their answers."""
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=30)
            answers[i] = call()
        except BaseException as error:  # noqa: BLE001 — the test reports every outcome
            answers[i] = error

    threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert all(isinstance(a, Answer) for a in answers), answers
    return answers


# TOTP ----------------------------------------------------------------------------------------

def settled_step(margin: float = 3.0) -> int:
    """Return the current 30 s step, first waiting for the next one if fewer than `margin` s remain.

    The servers run on this machine's clock, so the codes computed here for this step and its
    neighbours stay inside their ±1 step window while a test uses them.
    """
    if 30 - time.time() % 30 < margin:
        time.sleep(30 - time.time() % 30 + 0.1)
    return int(time.time() // 30)


@dataclass
class Factor:
    """A user's confirmed authenticator app and the backup codes shown at enrolment."""

    login: str
    secret: str
    backup_codes: list[str]
    confirmed_step: int  # spent by the confirmation: sign-ins start at the step after it

    def at(self, step: int) -> str:
        return pyotp.TOTP(self.secret).at(step * 30)

    def wrong_code(self) -> str:
        """Return six digits that are no code of the steps around now."""
        now = int(time.time() // 30)
        taken = {self.at(s) for s in range(now - 2, now + 3)}
        return next(c for c in (f"{n:06d}" for n in range(100000, 1000000, 7919)) if c not in taken)


# Servers ---------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One `twostep serve --workers 1` process on a free port, with a data dir of its own."""

    def __init__(self, name: str, env: dict, data_dir: Path):
        self.name = name
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(mode=0o700)
        self.log_path = data_dir / "serve.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen(
            [TWOSTEP, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            env={**env, "TWOSTEP_DATA_DIR": str(data_dir)}, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=data_dir,
        )

    def __repr__(self) -> str:
        return f"<{self.name} {self.url}>"

    def wait_ready(self, deadline: float) -> None:
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not answer within {START_SECONDS} s: "
                                       f"{self.log_path.read_text()}") from None
                time.sleep(0.1)

    def wait_stopped(self) -> None:
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class Cluster:
    """Processes A and B on one database, and the operator's `twostep` command beside them."""

    def __init__(self, root: Path, database_url: str, extra_env: dict):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))}
        self.env = {
            **env,
            "TWOSTEP_DATABASE_URL": database_url,
            "TWOSTEP_SECRET_KEY": secrets.token_urlsafe(50),
            "TWOSTEP_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "TWOSTEP_CODE_HASH_KEYS": secrets.token_urlsafe(32),
            "TWOSTEP_TRUSTED_PROXIES": "127.0.0.1",
            "TWOSTEP_LOG_LEVEL": "WARNING",
            **extra_env,
        }
        self.root = root
        self.servers: list[Server] = []
        self.a = self.b = None

    def cli(self, *args: str, stdin: str | None = None) -> None:
        done = subprocess.run([TWOSTEP, *args], input=stdin, capture_output=True, text=True, timeout=120,
                              env={**self.env, "TWOSTEP_DATA_DIR": str(self.root / "operator")},
                              cwd=self.root)
        if done.returncode:
            raise RuntimeError(f"twostep {' '.join(args)} failed: {done.stderr}")

    def start(self, logins: list[str]) -> None:
        """Create the account (admin `alice`) and `logins`, and start A and B beside them."""
        # The first command creates and migrates the database, so the servers find it ready.
        self.cli("account", "create", "Acme", "--admin", "alice", "--email", "alice@acme.example",
                 "--password-stdin", stdin=PASSWORD + "\n")
        self.a = Server("A", self.env, self.root / "a")
        self.b = Server("B", self.env, self.root / "b")
        self.servers = [self.a, self.b]
        operator = {"TWOSTEP_DATA_DIR": str(self.root / "operator")}
        makers = [subprocess.Popen(
            [TWOSTEP, "user", "create", login, "--account", "Acme", "--email", f"{login}@acme.example",
             "--password-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**self.env, **operator}, cwd=self.root) for login in logins]
        for login, maker in zip(logins, makers, strict=True):
            _, err = maker.communicate(PASSWORD + "\n", timeout=120)
            if maker.returncode:
                raise RuntimeError(f"twostep user create {login} failed: {err}")
        deadline = time.monotonic() + START_SECONDS
        for server in self.servers:
            server.wait_ready(deadline)

    def stop(self) -> None:
        for server in self.servers:
            server.process.terminate()
        for server in self.servers:
            server.wait_stopped()

    def enrol(self, login: str, *, on: Server | None = None) -> Factor:
        """Set up and confirm an authenticator for `login` through the API; return it.

        The confirmation spends the code of the step before the current one, so the codes of
        the current step and the next are still good for two sign-ins right away.
        """
        on = on or self.b
        client = Client(new_address())
        step = settled_step()
        assert client.login(on, login).body == {"stage": "authenticated"}
        setup = client.post(on, "/me/two-factor/setup", {"password": PASSWORD})
        assert setup.status == 200, setup
        secret = setup.body["secret"]
        confirmed = client.post(on, "/me/two-factor/confirm", {"code": pyotp.TOTP(secret).at((step - 1) * 30)})
        assert confirmed.status == 200 and confirmed.body["enabled"] is True, confirmed
        client.post(on, "/auth/logout")
        return Factor(login, secret, confirmed.body["backup_codes"], step - 1)


def _postgres_url() -> str:
    url = os.environ.get("TWOSTEP_DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        if os.environ.get("TWOSTEP_REQUIRE_POSTGRES"):
            pytest.fail("the two-process suite must run here, but TWOSTEP_DATABASE_URL is not PostgreSQL")
        pytest.skip("two processes share state through PostgreSQL: set TWOSTEP_DATABASE_URL "
                    "(make test-postgres; CI always runs it)")
    return url


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def _cluster(tmp_path_factory, logins: list[str], **extra_env: str):
    base_url = _postgres_url()
    config = dj_database_url.parse(base_url)
    name = f"{config['NAME']}_mp_{secrets.token_hex(4)}"
    admin = {"host": config["HOST"], "port": config["PORT"] or 5432, "user": config["USER"],
             "password": config["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**admin) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    cluster = Cluster(tmp_path_factory.mktemp("multiprocess"), base_url.rsplit("/", 1)[0] + "/" + name,
                      extra_env)
    try:
        cluster.start(logins)
        yield cluster
    finally:
        cluster.stop()
        with psycopg.connect(**admin) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Users the tests of tests/multiprocess/ share out among themselves, one purpose each.
LOGINS = ["sam", "pat", "dan", "eve", "tia", "tom", "ted", "bea", "fay"]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A and B on PostgreSQL; failed passwords counted in the database."""
    with _cluster(tmp_path_factory, LOGINS) as running:
        yield running


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A and B on PostgreSQL with TWOSTEP_REDIS_URL: failed passwords counted in Redis."""
    _postgres_url()
    if not _redis_answers(REDIS_URL):
        if os.environ.get("TWOSTEP_REQUIRE_REDIS"):
            pytest.fail(f"Redis at {REDIS_URL} is required for this run but does not answer")
        pytest.skip(f"Redis at {REDIS_URL} does not answer")
    with _cluster(tmp_path_factory, [], TWOSTEP_REDIS_URL=REDIS_URL) as running:
        yield running
    import redis

    store = redis.Redis.from_url(REDIS_URL)
    left = list(store.scan_iter(match=f"*2001:db8:{_RUN}::*"))  # this run's counters
    if left:
        store.delete(*left)
