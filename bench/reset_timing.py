"""Password reset answers for a known and an unknown login: their medians must be within 5 %.

    python bench/reset_timing.py [--requests 50] [--database-url postgres://…] [--no-worker]

Starts `twostep serve` (with its queue worker) on a fresh data dir, makes one user, then sends
`--requests` reset requests for that user's login and as many for a login that does not exist,
one after another, interleaved in random order, each from its own client address (X-Forwarded-For from a
trusted proxy) so the throttle never answers instead. Prints both medians and their ratio
(ASVS 6.3.8: the answer's timing must not tell whether a login exists).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
PASSWORD = "bench password long enough"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def reset(base: str, login: str, address: str) -> float:
    """Ask for a reset as a fresh client (session cookie, CSRF token); return the POST's seconds."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    headers = {"X-Forwarded-For": address, "Referer": base + "/"}
    opener.open(urllib.request.Request(base + "/api/v1/auth/session", headers=headers)).read()
    token = _token(opener)
    request = urllib.request.Request(
        base + "/api/v1/auth/password-reset", method="POST", data=json.dumps({"login": login}).encode(),
        headers={**headers, "Content-Type": "application/json", "X-CSRFToken": token})
    started = time.perf_counter()
    with opener.open(request) as answer:
        answer.read()
        assert answer.status == 200, answer.status
    return time.perf_counter() - started


def _token(opener) -> str:
    for handler in opener.handlers:
        jar = getattr(handler, "cookiejar", None)
        if jar is not None:
            return next(c.value for c in jar if c.name == "csrftoken")
    raise RuntimeError("no CSRF cookie")


def run(requests: int, database_url: str | None, worker: bool) -> None:
    data = Path(tempfile.mkdtemp(prefix="twostep-bench-")) / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWOSTEP_")}
    env.update(TWOSTEP_DATA_DIR=str(data), TWOSTEP_TRUSTED_PROXIES="127.0.0.1", TWOSTEP_LOG_LEVEL="error")
    if database_url:
        env["TWOSTEP_DATABASE_URL"] = database_url
    made = subprocess.run([TWOSTEP, "account", "create", "Bench", "--admin", "known", "--email",
                           "known@bench.example", "--password-stdin"], input=PASSWORD + "\n", env=env,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [TWOSTEP, "serve", "--port", str(port), "--workers", "2"] + ([] if worker else ["--no-worker"])
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        for n in range(10):  # warm both paths up: imports, connections, caches
            reset(base, "known" if n % 2 else "nobody-here", f"198.18.0.{n + 1}")
        times = {"known": [], "unknown": []}
        for n in range(requests):
            pair = [("known", "known", "198.19"), ("unknown", "nobody-here", "198.20")]
            random.shuffle(pair)  # neither kind always goes first, after the other's worker activity
            for kind, login, net in pair:
                times[kind].append(reset(base, login, f"{net}.{n // 200}.{n % 200 + 1}"))
    finally:
        server.terminate()
        server.wait(30)
    known, unknown = (statistics.median(times[k]) * 1000 for k in ("known", "unknown"))
    print(f"password reset, {requests} requests each ({'with' if worker else 'without'} the queue worker, "
          f"{'PostgreSQL' if database_url else 'SQLite'}):")
    print(f"  known login:   median {known:.2f} ms")
    print(f"  unknown login: median {unknown:.2f} ms")
    print(f"  ratio known/unknown: {known / unknown:.3f} (within 5 %: {abs(known / unknown - 1) <= 0.05})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--database-url")
    parser.add_argument("--no-worker", action="store_true", help="measure without the queue worker running")
    args = parser.parse_args()
    run(args.requests, args.database_url, not args.no_worker)


if __name__ == "__main__":
    main()
