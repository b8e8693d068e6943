"""The OpenID Connect token endpoint under load: authorization codes redeemed by many clients at once.

    python bench/oidc_token.py [--clients 16] [--codes 800] [--workers 2] [--database-url postgres://…]
                               [--confidential]

Starts `twostep serve` on a fresh data dir, makes a user and a trusted client with the `twostep`
command, signs the user in once and has twostep issue `--codes` authorization codes through
/oauth/authorize (PKCE S256, each with its own verifier) before the clock starts. Then `--clients`
threads redeem them all at /oauth/token at once, and it prints tokens per second, p50/p99
latency and the errors (which must be 0).

The hasher is left out by measuring a public client: client secrets are stored hashed (Django's
password hasher, argon2 in twostep), so a confidential client pays one argon2 verification per
token request. A public client proves itself with the PKCE verifier (one SHA-256) instead.
`--confidential` measures a confidential client (client_secret_post) too, to show that cost.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.cookiejar
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
PASSWORD = "bench password long enough"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never opened: the code is read from the redirect


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_form(url: str, form: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw.startswith(b"{") else {}


class Person:
    """A signed-in browser session that asks twostep for codes."""

    def __init__(self, base: str, login: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)
        self.opener.open(base + "/api/v1/auth/session", timeout=30).read()
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        request = urllib.request.Request(
            base + "/api/v1/auth/login", method="POST",
            data=json.dumps({"login": login, "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": token})
        with self.opener.open(request, timeout=60) as answer:
            assert json.loads(answer.read())["stage"] == "authenticated"

    def code(self, client_id: str) -> tuple[str, str]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email offline_access", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8), "code_challenge": challenge, "code_challenge_method": "S256"})
        try:
            self.opener.open(f"{self.base}/oauth/authorize?{query}", timeout=60)
        except urllib.error.HTTPError as error:
            location = error.headers.get("Location", "")
            if error.code == 302 and location.startswith(REDIRECT_URI):
                return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0], verifier
            raise RuntimeError(f"authorize answered {error.code} {location}") from None
        raise RuntimeError("authorize gave no code (a consent page?)")


def measure(base: str, client: dict, codes: list[tuple[str, str]], clients: int) -> None:
    latencies: list[float] = []
    errors: list = []
    lock = threading.Lock()
    work = iter(codes)
    barrier = threading.Barrier(clients)

    def loop() -> None:
        barrier.wait()
        while True:
            with lock:
                item = next(work, None)
            if item is None:
                return
            code, verifier = item
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                    "code_verifier": verifier, "client_id": client["client_id"]}
            if client.get("client_secret"):
                form["client_secret"] = client["client_secret"]
            started = time.perf_counter()
            status, body = post_form(base + "/oauth/token", form)
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                if status != 200 or "id_token" not in body:
                    errors.append(status)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    ok = len(latencies) - len(errors)
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    kind = "confidential, secret hashed" if client.get("client_secret") else "public + PKCE, no hasher"
    print(f"  {kind:<30} {ok / elapsed:7.1f} tokens/s  p50 {statistics.median(latencies) * 1000:6.0f} ms"
          f"  p99 {p99 * 1000:6.0f} ms  errors {len(errors)} {sorted(set(errors)) or ''}")


def run(clients: int, count: int, workers: int, database_url: str | None, confidential: bool) -> None:
    data = Path(tempfile.mkdtemp(prefix="twostep-oidc-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))}
    # Codes live long enough to be issued all before the clock starts.
    env.update(TWOSTEP_DATA_DIR=str(data), TWOSTEP_LOG_LEVEL="WARNING", TWOSTEP_OIDC_CODE_SECONDS="3600")
    if database_url:
        env["TWOSTEP_DATABASE_URL"] = database_url

    def cli(*args: str, stdin: str | None = None) -> str:
        return subprocess.run([TWOSTEP, *args], input=stdin, env=env, check=True, capture_output=True,
                              text=True, cwd=data).stdout

    cli("account", "create", "Bench", "--admin", "benchadmin", "--email", "a@bench.example",
        "--password-stdin", stdin=PASSWORD)
    cli("user", "create", "reader", "--account", "Bench", "--email", "reader@bench.example",
        "--password-stdin", stdin=PASSWORD)
    apps = [json.loads(cli("client", "create", "Bench public", "--redirect-uri", REDIRECT_URI, "--public",
                           "--trusted", "--json"))]
    if confidential:
        apps.append(json.loads(cli("client", "create", "Bench confidential", "--redirect-uri", REDIRECT_URI,
                                   "--trusted", "--json")))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([TWOSTEP, "serve", "--port", str(port), "--workers", str(workers)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=data)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        person = Person(base, "reader")
        print(f"OpenID Connect token endpoint, {clients} clients, {count} codes per client kind, "
              f"{'PostgreSQL' if database_url else 'SQLite'}, {workers} gunicorn workers")
        for app in apps:
            started = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                codes = list(pool.map(person.code, [app["client_id"]] * count))
            print(f"  ({count} codes issued in {time.perf_counter() - started:.1f} s, not counted)")
            measure(base, app, codes, clients)
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--codes", type=int, default=800)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url")
    parser.add_argument("--confidential", action="store_true", help="also measure a confidential client")
    options = parser.parse_args()
    run(min(options.clients, 64), max(options.codes, options.clients), options.workers, options.database_url,
        options.confidential)
