#!/usr/bin/env python3
"""A smoke check of admission control: members sign in while strangers flood the password step.

Starts `twostep serve` on a temporary SQLite data dir behind a pretend proxy (127.0.0.1 is
trusted, so each stranger's request names its own address in X-Forwarded-For), makes a few
members, lets each sign in once through the API (which gives its client a device cookie), then
for --duration seconds sends wrong passwords for the members' logins at --rate requests per
second from random addresses while the members sign in and out in a loop. Prints one JSON line:
the members' sign-ins (ok, refused, p50, p99) and what the strangers got (status counts).

    .venv/bin/python scripts/flood-smoke.py --rate 40 --argon2 django   # Django's parameters
    .venv/bin/python scripts/flood-smoke.py --no-device-cookies          # members as strangers

Not a benchmark (the load client shares the machine with the server); the benchmark is `make
bench`. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWOSTEP = str(ROOT / ".venv" / "bin" / "twostep")
PASSWORD = "correct horse battery staple"


class Client:
    """One keep-alive connection with a cookie jar, speaking the JSON API."""

    def __init__(self, port: int):
        self.port, self.cookies = port, {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        data = None if body is None else json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return response.status, payload

    def prime(self):
        self.request("GET", "/api/v1/auth/session")


def percentile(values, share):
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8107)
    parser.add_argument("--rate", type=float, default=40.0, help="strangers' requests per second")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--flood-threads", type=int, default=24)
    parser.add_argument("--argon2", choices=("twostep", "django"), default="twostep",
                        help="twostep's parameters, or Django's m=100 MiB t=2 p=8")
    parser.add_argument("--no-device-cookies", action="store_true", help="members drop their device cookie")
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="twostep-flood-")
    env = {**os.environ, "TWOSTEP_DATA_DIR": data, "TWOSTEP_TRUSTED_PROXIES": "127.0.0.1",
           "TWOSTEP_LOG_LEVEL": "WARNING", "TWOSTEP_ADDRESS_FREE_ATTEMPTS": "1000"}
    env.pop("TWOSTEP_DATABASE_URL", None)
    if args.argon2 == "django":
        env.update(TWOSTEP_ARGON2_MEMORY_COST="102400", TWOSTEP_ARGON2_TIME_COST="2", TWOSTEP_ARGON2_PARALLELISM="8")
    logins = [f"member{i}" for i in range(args.members)]
    def twostep(*words, password=False):
        subprocess.run([TWOSTEP, *words], input=PASSWORD + "\n" if password else None,  # noqa: S603 — ours
                       text=True, env=env, check=True, capture_output=True)

    twostep("migrate")
    twostep("account", "create", "Acme", "--admin", "admin", "--email", "admin@acme.example", "--password-stdin",
            password=True)
    for login in logins:
        twostep("user", "create", login, "--account", "Acme", "--email", f"{login}@acme.example",
                "--password-stdin", password=True)
    server = subprocess.Popen([TWOSTEP, "serve", "--port", str(args.port), "--no-worker"],  # noqa: S603 — ours
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = server.stdout.readline().strip()
        threading.Thread(target=lambda: server.stdout.read(), daemon=True).start()
        return run(args, logins, ready)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def run(args, logins, ready) -> int:
    members = []
    for login in logins:
        client = Client(args.port)
        client.prime()
        status, body = client.request("POST", "/api/v1/auth/login", {"login": login, "password": PASSWORD})
        assert status == 200, (status, body)
        client.request("POST", "/api/v1/auth/logout", {})
        if args.no_device_cookies:
            client.cookies.pop("twostep_device", None)
        members.append((login, client))

    stop = threading.Event()
    lock = threading.Lock()
    stranger_statuses: dict[int, int] = {}
    member_times, member_failures = [], {}
    interval = args.flood_threads / args.rate

    def stranger(index):
        client = Client(args.port)
        client.prime()
        next_at = time.monotonic() + random.random() * interval
        while not stop.is_set():
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            next_at += interval
            address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
            status, _ = client.request("POST", "/api/v1/auth/login",
                                       {"login": random.choice(logins), "password": "a wrong guess"},
                                       {"X-Forwarded-For": address})
            with lock:
                stranger_statuses[status] = stranger_statuses.get(status, 0) + 1

    def member(login, client):
        while not stop.is_set():
            started = time.monotonic()
            status, _ = client.request("POST", "/api/v1/auth/login", {"login": login, "password": PASSWORD})
            took = time.monotonic() - started
            with lock:
                if status == 200:
                    member_times.append(took)
                else:
                    member_failures[status] = member_failures.get(status, 0) + 1
            client.request("POST", "/api/v1/auth/logout", {})
            if args.no_device_cookies:
                client.cookies.pop("twostep_device", None)
            time.sleep(0.2)

    threads = [threading.Thread(target=stranger, args=(i,), daemon=True) for i in range(args.flood_threads)]
    time_started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the flood first
    member_threads = [threading.Thread(target=member, args=m, daemon=True) for m in members]
    for thread in member_threads:
        thread.start()
    time.sleep(args.duration)
    stop.set()
    for thread in member_threads + threads:
        thread.join(60)
    elapsed = time.monotonic() - time_started
    tried = len(member_times) + sum(member_failures.values())
    print(json.dumps({
        "server": ready, "argon2": args.argon2, "device_cookies": not args.no_device_cookies,
        "flood_rate_sent": round(sum(stranger_statuses.values()) / elapsed, 1),
        "strangers": {str(k): v for k, v in sorted(stranger_statuses.items())},
        "members": {"sign_ins": tried, "ok": len(member_times),
                    "ok_share": round(len(member_times) / tried, 4) if tried else None,
                    "failed": {str(k): v for k, v in sorted(member_failures.items())},
                    "p50_s": percentile(member_times, 0.5), "p99_s": percentile(member_times, 0.99)},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
