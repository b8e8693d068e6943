"""Full two-step sign-ins over HTTP against a running `twostep serve`, from many clients at once.

    python bench/http_signin.py [--clients 16] [--rounds 4] [--database-url postgres://…]

Starts the service on a fresh data dir, makes users with the `twostep` command, enrols them
through the JSON API, then has every client sign in repeatedly (password, then an app code or
a backup code). Prints sign-ins per second, latency percentiles and the number of errors — which
must be 0 (HTTP 500 "database is locked" is what default SQLite settings give). The ratio of a
two-step sign-in to a password-only one shows what the second step costs.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyotp

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
PASSWORD = "bench password long enough"


class Client:
    """One browser-like API client: a cookie jar and the CSRF header."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        token = next((c.value for c in self.jar if c.name == "csrftoken"), "")
        request = urllib.request.Request(
            self.base + "/api/v1" + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": token,
                     "Referer": self.base + "/"},
        )
        try:
            with self.opener.open(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def sign_in(self, login: str, code: str | None, method: str = "totp") -> int:
        self.jar.clear()
        self.call("GET", "/auth/session")
        status, body = self.call("POST", "/auth/login", {"login": login, "password": PASSWORD})
        if status != 200 or code is None:
            return status
        status, body = self.call("POST", "/auth/second-factor", {"method": method, "code": code})
        return status


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(clients: int, rounds: int, database_url: str | None) -> None:
    data = Path(tempfile.mkdtemp(prefix="twostep-http-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWOSTEP_")}
    env.update(TWOSTEP_DATA_DIR=str(data), TWOSTEP_LOG_LEVEL="WARNING",
               TWOSTEP_PASSWORD_FREE_ATTEMPTS="1000", TWOSTEP_ADDRESS_FREE_ATTEMPTS="100000")
    if database_url:
        env["TWOSTEP_DATABASE_URL"] = database_url

    def cli(*args, stdin=None):
        subprocess.run([TWOSTEP, *args], input=stdin, env=env, check=True, capture_output=True, text=True)

    cli("account", "create", "Bench", "--admin", "benchadmin", "--email", "a@bench.example",
        "--password-stdin", stdin=PASSWORD)
    logins = [f"u{n}" for n in range(clients)]
    for login in logins + ["plain"]:
        cli("user", "create", login, "--account", "Bench", "--email", f"{login}@bench.example",
            "--password-stdin", stdin=PASSWORD)
    port = free_port()
    server = subprocess.Popen([TWOSTEP, "serve", "--port", str(port), "--workers", "2"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        secrets, codes = {}, {}
        for login in logins:
            c = Client(base)
            c.sign_in(login, None)
            _, setup = c.call("POST", "/me/two-factor/setup", {"password": PASSWORD})
            secrets[login] = setup["secret"]
            _, confirmed = c.call("POST", "/me/two-factor/confirm",
                                  {"code": pyotp.TOTP(setup["secret"]).now()})
            codes[login] = list(confirmed["backup_codes"])

        def measure(label: str, work) -> float:
            latencies, errors = [], []
            lock = threading.Lock()
            barrier = threading.Barrier(clients)

            def client_loop(index: int):
                client = Client(base)
                barrier.wait()
                for r in range(rounds):
                    started = time.perf_counter()
                    status = work(client, index, r)
                    with lock:
                        latencies.append(time.perf_counter() - started)
                        if status != 200:
                            errors.append(status)

            threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            latencies.sort()
            rate = len(latencies) / elapsed
            p95 = latencies[int(len(latencies) * 0.95) - 1]
            print(f"  {label:<42} {rate:7.1f} sign-ins/s  p50 {statistics.median(latencies) * 1000:6.0f} ms"
                  f"  p95 {p95 * 1000:6.0f} ms  errors {len(errors)} {sorted(set(errors)) or ''}")
            return rate

        print(f"HTTP sign-ins, {clients} clients x {rounds} rounds, "
              f"{'PostgreSQL' if database_url else 'SQLite'}, 2 gunicorn workers")
        plain = measure("password only (no 2FA)", lambda c, i, r: c.sign_in("plain", None))
        backup = measure("password + backup code", lambda c, i, r: c.sign_in(
            logins[i], codes[logins[i]][r % 10], "backup_code"))
        print(f"  the second step costs {plain / backup:.2f}x the time of a password-only sign-in")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--database-url")
    options = parser.parse_args()
    run(min(options.clients, 64), min(options.rounds, 10), options.database_url)
