"""The `twostep` command, run as the operator runs it: a real process on a fresh data dir."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]

ENROL = f"""
import django, pyotp
django.setup()
from twostep.models import User
from twostep.services import authenticators, factors
from twostep.services.audit import Origin
user = User.objects.get(login="bob")
setup = authenticators.start_app(user, "{PASSWORD}", Origin())
authenticators.confirm_app(user, pyotp.TOTP(setup.secret).now(), Origin())
"""


@pytest.fixture
def run(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))}
    env.update(TWOSTEP_DATA_DIR=str(tmp_path / "data"), TWOSTEP_LOG_LEVEL="WARNING")

    def twostep(*args, stdin=None):
        return subprocess.run([TWOSTEP, *args], input=stdin, env=env, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)

    twostep.env = env
    twostep.data = tmp_path / "data"
    return twostep


def _acme(run):
    made = run("account", "create", "Acme", "--admin", "alice", "--email", "alice@acme.example",
               "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    return made


def _one_line_error(result) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_account_and_user_create_on_a_fresh_data_dir(run):
    assert "created account Acme with admin alice" in _acme(run).stdout
    made = run("user", "create", "bob", "--account", "acme", "--email", "bob@acme.example",
               "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert "created user bob in account Acme" in made.stdout
    shown = json.loads(run("user", "show", "BOB", "--json").stdout)
    assert shown["login"] == "bob" and shown["account"] == "Acme"
    assert shown["two_factor_enabled"] is False and shown["is_admin"] is False


def test_generated_keys_are_private_to_the_owner(run):
    _acme(run)
    for name in ("secret_key", "encryption_keys", "code_hash_keys"):
        mode = stat.S_IMODE((run.data / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert stat.S_IMODE(run.data.stat().st_mode) == 0o700


@pytest.mark.parametrize(("args", "stdin", "says"), [
    (["user", "create", "ALICE", "--account", "Acme", "--email", "a2@acme.example"], PASSWORD, "taken"),
    (["user", "create", "carol", "--account", "Acme", "--email", "c@acme.example"], "short", "too short"),
    (["user", "create", "carol", "--account", "Nowhere", "--email", "c@acme.example"], PASSWORD, "No account named Nowhere"),
    (["user", "create", "carol", "--account", "Acme", "--email", "not-an-address"], PASSWORD, "not an e-mail address"),
    (["user", "create", "carol", "--account", "Acme", "--email", "c@acme.example"], "", "no password"),
    (["account", "create", "acme", "--admin", "dave", "--email", "d@acme.example"], PASSWORD, "exists already"),
])
def test_refused_create_is_one_line_and_nonzero(run, args, stdin, says):
    _acme(run)
    result = run(*args, "--password-stdin", stdin=stdin + "\n" if stdin else "")
    assert result.returncode == 1
    assert says in _one_line_error(result)


def test_usage_error_exits_2(run):
    result = run("user", "create", "carol")
    assert result.returncode == 2
    assert "required" in result.stderr


def test_operator_switches_2fa_off_and_show_reports_it(run):
    _acme(run)
    run("user", "create", "bob", "--account", "Acme", "--email", "bob@acme.example", "--password-stdin",
        stdin=PASSWORD + "\n")
    enrol = subprocess.run([sys.executable, "-c", ENROL], env={**run.env, "DJANGO_SETTINGS_MODULE": "config.settings"},
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert enrol.returncode == 0, enrol.stderr
    before = json.loads(run("user", "show", "bob", "--json").stdout)
    assert before["two_factor_enabled"] is True and before["backup_codes_remaining"] == 10

    done = run("user", "disable-2fa", "bob", "--reason", "lost phone, identity checked")
    assert done.returncode == 0, done.stderr
    assert "off for bob" in done.stdout
    assert "a mail to bob@acme.example is queued" in done.stdout
    sent = run("worker", "--batch")
    assert "lost phone, identity checked" in sent.stderr  # the mail to bob (console backend, stderr)
    after = json.loads(run("user", "show", "bob", "--json").stdout)
    assert after["two_factor_enabled"] is False and after["backup_codes_remaining"] == 0
    human = run("user", "show", "bob").stdout
    assert "two-factor:     off" in human

    again = run("user", "disable-2fa", "bob", "--reason", "twice")
    assert "no two-factor authentication to switch off" in _one_line_error(again)


@pytest.mark.parametrize("args", [["user", "disable-2fa", "ghost", "--reason", "x"], ["user", "show", "ghost"]])
def test_unknown_login_is_one_line_error(run, args):
    _acme(run)
    assert "No user with the login ghost" in _one_line_error(run(*args))


def test_disable_2fa_needs_a_reason(run):
    _acme(run)
    assert "why" in _one_line_error(run("user", "disable-2fa", "alice", "--reason", "  "))


def test_keys_reencrypt_on_a_fresh_data_dir(run):
    _acme(run)
    result = run("keys", "reencrypt")
    assert result.returncode == 0 and "re-encrypted 0" in result.stdout


# Reads, in the data dir's environment, how many keys of each kind are accepted, and whether
# bob's TOTP secret decrypts.
KEYS_STATE = """
import django, json
django.setup()
from django.conf import settings
from twostep import crypto
from twostep.models import Authenticator
secrets = [crypto.decrypt_secret(d.encrypted_secret) for d in Authenticator.objects.all()]
print(json.dumps([1 + len(settings.SECRET_KEY_FALLBACKS), len(settings.TWOSTEP_ENCRYPTION_KEYS),
                  len(settings.TWOSTEP_CODE_HASH_KEYS), len(secrets)]))
"""


def _python(run, script, **env):
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**run.env, "DJANGO_SETTINGS_MODULE": "config.settings", **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_keys_rotate_in_the_data_dir_keep_the_old_ones_until_dropped(run):
    _acme(run)
    assert run("user", "create", "bob", "--account", "acme", "--email", "bob@acme.example",
               "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    _python(run, ENROL)
    for kind in ("secret", "encryption", "code-hash"):
        done = run("keys", f"rotate-{kind}")
        assert done.returncode == 0 and "1 older key still accepted" in done.stdout, done.stderr
    assert json.loads(_python(run, KEYS_STATE)) == [2, 2, 2, 1]  # bob's secret still decrypts
    for name in ("secret_key", "encryption_keys", "code_hash_keys"):
        assert stat.S_IMODE((run.data / name).stat().st_mode) == 0o600

    refused = run("keys", "drop-old", "encryption")
    assert "1 TOTP secret still needs an older key" in _one_line_error(refused)
    assert run("keys", "reencrypt").stdout == "re-encrypted 1 TOTP secret with the newest key\n"
    for kind in ("secret", "encryption", "code-hash"):
        done = run("keys", "drop-old", kind)
        assert done.returncode == 0 and "dropped 1 older" in done.stdout, done.stderr
    assert json.loads(_python(run, KEYS_STATE)) == [1, 1, 1, 1]


def test_keys_rotate_from_the_environment_print_what_to_set(run):
    _acme(run)
    before = (run.data / "secret_key").read_text()
    run.env.update(TWOSTEP_SECRET_KEY="current-secret", TWOSTEP_SECRET_KEY_FALLBACKS="older-secret")
    done = run("keys", "rotate-secret")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "nothing was changed" in lines[0]
    assert lines[1].startswith("  TWOSTEP_SECRET_KEY=") and lines[1] != "  TWOSTEP_SECRET_KEY=current-secret"
    assert lines[2] == "  TWOSTEP_SECRET_KEY_FALLBACKS=current-secret,older-secret"
    assert (run.data / "secret_key").read_text() == before
    assert json.loads(_python(run, KEYS_STATE))[0] == 2  # the fallbacks reach Django


def test_serve_answers_healthz_then_stops(run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([TWOSTEP, "serve", "--port", str(port), "--workers", "1"], env=run.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=run.data.parent)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert json.loads(answer.read()) == {"status": "ok"}
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"twostep serving on http://127.0.0.1:{port}" in output
    assert server.returncode == 0


DEADLINE = """
import datetime, django
django.setup()
from twostep.models import Account
Account.objects.filter(name="Acme").update(
    require_two_factor_from=datetime.date.today() + datetime.timedelta(days=7))
"""


def test_reminders_send_mails_each_unenrolled_user_once(run):
    _acme(run)
    run("user", "create", "bob", "--account", "Acme", "--email", "bob@acme.example", "--password-stdin",
        stdin=PASSWORD + "\n")
    set_deadline = subprocess.run([sys.executable, "-c", DEADLINE],
                                  env={**run.env, "DJANGO_SETTINGS_MODULE": "config.settings"},
                                  capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert set_deadline.returncode == 0, set_deadline.stderr
    first = run("reminders", "send")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "queued 2 reminders"  # alice and bob, neither enrolled
    again = run("reminders", "send")
    assert again.stdout.strip() == "queued 0 reminders"
    sent = run("worker", "--batch")
    assert sent.stdout.strip() == "ran 2 tasks"
    assert "bob@acme.example" in sent.stderr and "alice@acme.example" in sent.stderr  # console mail: stderr
