"""Processes A and B: two `twostep serve` on one database, and the operator's `twostep` beside them."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyotp

from .client import PASSWORD, Client, Factor, new_address, settled_step

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
QUEUE_PROBE = str(Path(__file__).with_name("queue_probe.py"))
START_SECONDS = 60
# Redis for the processes started with TWOSTEP_REDIS_URL; a database number of its own by default.
REDIS_URL = os.environ.get("TWOSTEP_TEST_MULTIPROCESS_REDIS_URL", "redis://127.0.0.1:6379/7")


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

    def probe(self, *args: str) -> str:
        """Run queue_probe.py (a look at the shared queue, or more wake-ups) and return its output."""
        done = subprocess.run([sys.executable, QUEUE_PROBE, *args], capture_output=True, text=True, timeout=60,
                              env={**self.env, "TWOSTEP_DATA_DIR": str(self.root / "operator")},
                              cwd=self.root)
        if done.returncode:
            raise RuntimeError(f"queue_probe {' '.join(args)} failed: {done.stderr}")
        return done.stdout

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


