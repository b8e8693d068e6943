"""The operator's `twostep` command beyond creating users: break-glass audit, key rotation, the
database and the server's start-up refusals. Real processes on a fresh data dir; on PostgreSQL
(TWOSTEP_DATABASE_URL set) each test gets a database of its own, which the command creates."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from cryptography.fernet import Fernet

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
ROOT = Path(__file__).resolve().parents[2]
# Spaces are part of a password; only the line break ends it, and later lines are not read.
PASSWORD = "  correct horse battery staple  "

# Runs inside the data dir's environment: enrol a user, or list a user's security events.
HELPER = """
import json, sys, django, pyotp
django.setup()
from twostep.models import SecurityEvent, User
from twostep.services import authenticators, factors
from twostep.services.audit import Origin
action, login = sys.argv[1], sys.argv[2]
user = User.objects.get(login=login)
if action == "enrol":
    setup = authenticators.start_app(user, sys.argv[3], Origin())
    authenticators.confirm_app(user, pyotp.TOTP(setup.secret).now(), Origin())
else:
    print(json.dumps([{"type": e.type, "actor": e.actor_label, "detail": e.detail}
                      for e in SecurityEvent.objects.filter(user=user).order_by("pk")]))
"""


class Operator:
    """Runs `twostep` and the helper against one fresh data dir (and database)."""

    def __init__(self, data: Path, env: dict):
        self.data, self.env = data, env

    def __call__(self, *args, stdin: str | None = None, **env) -> subprocess.CompletedProcess:
        return subprocess.run([TWOSTEP, *args], input=stdin, env={**self.env, **env}, capture_output=True,
                              text=True, timeout=120, cwd=self.data.parent)

    def helper(self, *args) -> str:
        done = subprocess.run([sys.executable, "-c", HELPER, *args], capture_output=True, text=True,
                              env={**self.env, "DJANGO_SETTINGS_MODULE": "config.settings"}, cwd=ROOT,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def acme(self) -> None:
        made = self("account", "create", "Acme", "--admin", "alice", "--email", "alice@acme.example",
                    "--password-stdin", stdin=PASSWORD + "\nnot read\n")
        assert made.returncode == 0, made.stderr


@pytest.fixture
def operator(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))}
    env["TWOSTEP_DATA_DIR"] = str(tmp_path / "data")
    base_url = os.environ.get("TWOSTEP_DATABASE_URL")
    if not base_url:
        yield Operator(tmp_path / "data", env)
        return
    config = dj_database_url.parse(base_url)
    name = f"{config['NAME']}_cli_{secrets.token_hex(4)}"
    env["TWOSTEP_DATABASE_URL"] = base_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield Operator(tmp_path / "data", env)
    finally:
        with psycopg.connect(host=config["HOST"], port=config["PORT"] or 5432, user=config["USER"],
                             password=config["PASSWORD"] or None, dbname="postgres", autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def one_line_error(result) -> str:
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_migrate_on_a_fresh_data_dir_then_again(operator):
    first = operator("migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied ") and first.stdout.strip().endswith(" migrations")
    again = operator("migrate")
    assert again.stdout == "the database is up to date\n"
    if not os.environ.get("TWOSTEP_DATABASE_URL"):
        database = operator.data / "twostep.sqlite3"
        assert stat.S_IMODE(database.stat().st_mode) == 0o600  # it holds password hashes


def test_disable_2fa_is_audited_with_the_reason_and_mail_stays_off_stdout(operator):
    operator.acme()
    operator.helper("enrol", "alice", PASSWORD)  # also proves the password kept its spaces
    assert json.loads(operator("user", "show", "alice", "--json").stdout)["two_factor_enabled"] is True

    done = operator("user", "disable-2fa", "ALICE", "--reason", "lost phone; identity checked by call")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "off for alice" in done.stdout
    assert "a mail to alice@acme.example is queued" in done.stdout and "Subject:" not in done.stderr
    sent = operator("worker", "--batch")  # what `twostep serve` runs beside the web workers
    assert sent.returncode == 0, sent.stderr
    assert "Subject:" in sent.stderr and "Subject:" not in sent.stdout  # console mail on stderr

    events = json.loads(operator.helper("events", "alice"))
    assert events[-1] == {"type": "operator_disabled_two_factor", "actor": "operator",
                          "detail": {"reason": "lost phone; identity checked by call"}}
    shown = operator("user", "show", "alice").stdout
    assert "two-factor:     off" in shown and "backup codes:   0 left" in shown


def test_a_mail_the_worker_could_not_send_waits_for_its_retry_in_mail_status(operator):
    operator.acme()
    operator.helper("enrol", "alice", PASSWORD)
    with socket.socket() as probe:  # a port where nothing listens: the SMTP connection is refused
        probe.bind(("127.0.0.1", 0))
        closed_port = str(probe.getsockname()[1])
    smtp = {"TWOSTEP_EMAIL_HOST": "127.0.0.1", "TWOSTEP_EMAIL_PORT": closed_port}
    done = operator("user", "disable-2fa", "alice", "--reason", "lost phone", **smtp)
    assert done.returncode == 0  # the mail never undoes the break-glass
    worker = operator("worker", "--batch", **smtp)
    assert worker.returncode == 0, worker.stderr
    lines = worker.stderr.splitlines()  # one line per mail (the enrolment's and the switch-off's)
    assert len(lines) == 2 and all(line.startswith("twostep: could not send two_factor_") for line in lines)
    assert "Traceback" not in worker.stderr
    status = json.loads(operator("mail", "status", "--json").stdout)
    assert status["counts"]["queued"] == 2 and status["counts"]["failed"] == 0
    waiting = [m for m in status["mails"] if m["kind"] == "two_factor_disabled"]
    assert len(waiting) == 1 and waiting[0]["attempts"] == 1 and "ConnectionRefusedError" in waiting[0]["error"]
    assert "two_factor_disabled to alice: queued after 1 attempt, next attempt" in operator("mail", "status").stdout


def test_serve_runs_a_queue_worker_that_sends_queued_mail_and_stops_with_it(operator):
    from aiosmtpd.controller import Controller

    from .test_notifications_smtp import Collector

    collector = Collector()
    smtp = Controller(collector, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {**operator.env, "TWOSTEP_EMAIL_HOST": "127.0.0.1", "TWOSTEP_EMAIL_PORT": str(smtp.port)}
    operator.acme()
    operator.helper("enrol", "alice", PASSWORD)
    port = free_port()
    server = subprocess.Popen([TWOSTEP, "serve", "--port", str(port), "--workers", "1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=operator.data.parent)
    try:
        assert operator("user", "disable-2fa", "alice", "--reason", "lost phone").returncode == 0
        deadline = time.monotonic() + 60
        while len(collector.envelopes) < 2:  # the enrolment's mail and the switch-off's
            assert server.poll() is None and time.monotonic() < deadline, "no mail within 60 s"
            time.sleep(0.2)
        time.sleep(1)  # a mail sent twice would arrive now
        assert [e.rcpt_tos for e in collector.envelopes] == [["alice@acme.example"]] * 2
        workers = _queue_workers_of(server.pid)
        assert len(workers) == 1  # one beside the web workers, not one per web worker
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
        smtp.stop()
    assert server.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # it stopped with the server


def _queue_workers_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in command and str(parent).encode() in command:
            found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_keys_reencrypt_moves_every_secret_to_the_newest_key(operator):
    operator.acme()
    operator.helper("enrol", "alice", PASSWORD)
    old = (operator.data / "encryption_keys").read_text().strip()
    new = Fernet.generate_key().decode()

    moved = operator("keys", "reencrypt", TWOSTEP_ENCRYPTION_KEYS=f"{new},{old}")
    assert moved.stdout == "re-encrypted 1 TOTP secret with the newest key\n", moved.stderr
    # The old key can go now: the new one alone decrypts every secret.
    alone = operator("keys", "reencrypt", TWOSTEP_ENCRYPTION_KEYS=new)
    assert alone.returncode == 0, alone.stderr

    stranger = Fernet.generate_key().decode()
    refused = operator("keys", "reencrypt", TWOSTEP_ENCRYPTION_KEYS=stranger)
    assert "cannot be decrypted with any configured key" in one_line_error(refused)


def test_unreachable_database_is_one_line_naming_the_setting(operator):
    result = operator("user", "show", "alice", TWOSTEP_DATABASE_URL="postgres://postgres@127.0.0.1:1/twostep")
    assert "TWOSTEP_DATABASE_URL" in one_line_error(result)


def test_serve_refuses_a_port_in_use_in_one_line(operator):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = operator("serve", "--port", str(taken.getsockname()[1]))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("the address is in use")


def test_serve_refuses_a_configuration_the_checks_reject(operator):
    operator("migrate")
    result = operator("serve", "--port", "1", TWOSTEP_SECOND_FACTOR_LOCK_AFTER="500")
    line = one_line_error(result)
    assert "refusing to start" in line and "twostep.E001" in line


def test_serve_logs_requests_to_stdout_and_stops_on_ctrl_c(operator):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([TWOSTEP, "serve", "--port", str(port), "--workers", "1"], env=operator.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=operator.data.parent)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    vendor = "postgresql" if os.environ.get("TWOSTEP_DATABASE_URL") else "sqlite"
    first, *rest = out.splitlines()
    slots = len(os.sched_getaffinity(0))  # one worker: every CPU's share
    assert first == (f"twostep serving on http://127.0.0.1:{port} "
                     f"(data: {operator.data}, database: {vendor}, "
                     f"passwords: argon2id m=19 MiB t=2 p=1, {slots} at once per worker)")
    assert any('"GET /healthz HTTP/1.1" 200' in line for line in rest)
    assert "Traceback" not in err


def test_serve_refuses_argon2_parameters_below_owasps_minimum(operator):
    operator("migrate")
    result = operator("serve", "--port", "1", TWOSTEP_ARGON2_MEMORY_COST="8192")
    line = one_line_error(result)
    assert "refusing to start" in line and "twostep.E020" in line
