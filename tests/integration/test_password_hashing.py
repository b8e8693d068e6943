"""Argon2id parameters chosen by twostep (OWASP's minimum by default), set by environment,
checked at start, and re-hashed at sign-in without ending anyone's other sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.hashers import get_hasher
from django.core.checks import run_checks

from twostep import crypto, hashers
from twostep.models import User

from ..conftest import PASSWORD
from .test_sessions import signed_in, web_sign_in

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def real_hasher(settings):
    """twostep's own hasher, with parameters the test sets (kept cheap: these are not checked here)."""
    settings.PASSWORD_HASHERS = ["twostep.hashers.Argon2PasswordHasher"]
    settings.TWOSTEP_ARGON2_MEMORY_COST, settings.TWOSTEP_ARGON2_TIME_COST = 1024, 1
    settings.TWOSTEP_ARGON2_PARALLELISM = 1
    return settings


def test_the_defaults_are_owasps_argon2id_minimum():
    """Read from a fresh process: what config/settings.py gives without any TWOSTEP_ARGON2_*."""
    values = settings_in_a_new_process({})
    assert (values["m"], values["t"], values["p"]) == (19456, 2, 1)
    assert values["first"] == "twostep.hashers.Argon2PasswordHasher"


def test_the_environment_sets_the_parameters():
    values = settings_in_a_new_process({"TWOSTEP_ARGON2_MEMORY_COST": "47104", "TWOSTEP_ARGON2_TIME_COST": "1",
                                        "TWOSTEP_ARGON2_PARALLELISM": "2", "TWOSTEP_HASH_CONCURRENCY": "3",
                                        "TWOSTEP_HASH_QUEUE_LENGTH": "0", "TWOSTEP_HASH_QUEUE_TIMEOUT": "1.5"})
    assert (values["m"], values["t"], values["p"]) == (47104, 1, 2)
    assert (values["slots"], values["queue"], values["wait"]) == (3, 0, 1.5)


def settings_in_a_new_process(env: dict) -> dict:
    code = ("from config import settings as s; import json; print(json.dumps({'m': s.TWOSTEP_ARGON2_MEMORY_COST, "
            "'t': s.TWOSTEP_ARGON2_TIME_COST, 'p': s.TWOSTEP_ARGON2_PARALLELISM, 'first': s.PASSWORD_HASHERS[0], "
            "'slots': s.TWOSTEP_HASH_CONCURRENCY, 'queue': s.TWOSTEP_HASH_QUEUE_LENGTH, "
            "'wait': s.TWOSTEP_HASH_QUEUE_TIMEOUT}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_ARGON2", "TWOSTEP_HASH"))}
    clean["TWOSTEP_DATA_DIR"] = str(ROOT / ".test-data")
    result = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def test_the_hasher_hashes_with_the_settings(real_hasher):
    real_hasher.TWOSTEP_ARGON2_MEMORY_COST, real_hasher.TWOSTEP_ARGON2_TIME_COST = 2048, 3
    encoded = get_hasher("default").encode(PASSWORD, "a salt of 16 chars")
    assert encoded.startswith("argon2$argon2id$v=19$m=2048,t=3,p=1$")
    assert hashers.describe() == "argon2id m=2 MiB t=3 p=1"


def test_parameters_below_owasp_refuse_to_start(settings):
    assert not [p for p in run_checks() if p.id == "twostep.E020"]
    settings.TWOSTEP_ARGON2_MEMORY_COST, settings.TWOSTEP_ARGON2_TIME_COST = 19456, 1
    assert [p.id for p in run_checks() if p.id == "twostep.E020"] == ["twostep.E020"]
    settings.TWOSTEP_ARGON2_MEMORY_COST = 47104  # OWASP's m=46 MiB, t=1
    assert not [p for p in run_checks() if p.id == "twostep.E020"]


def test_new_parameters_rehash_at_sign_in_and_keep_the_other_sessions(member, real_hasher):
    phone = web_sign_in()
    stamp = User.objects.get(pk=member.pk).security_stamp
    real_hasher.TWOSTEP_ARGON2_TIME_COST = 2
    laptop = web_sign_in()
    user = User.objects.get(pk=member.pk)
    assert "$m=1024,t=2,p=1$" in user.password  # re-hashed with the new parameters
    assert user.security_stamp == stamp  # a re-hash is no password change
    assert signed_in(phone) and signed_in(laptop)
    assert user.check_password(PASSWORD)


def test_a_password_set_anywhere_still_ends_every_session(member):
    phone = web_sign_in()
    user = User.objects.get(pk=member.pk)
    user.set_password("a brand new password 42")  # as the Django admin or a command would
    user.save()
    assert not signed_in(phone)
    user.set_password("another new password 42")
    user.save(update_fields=["password"])  # the stamp is saved with it
    assert User.objects.get(pk=member.pk).security_stamp == user.security_stamp


def test_a_session_signed_in_before_the_upgrade_stays_and_is_upgraded(member):
    phone = web_sign_in()
    user = User.objects.get(pk=member.pk)
    session = phone.session
    session[HASH_SESSION_KEY] = crypto.session_auth_hash(f"{user.password}:{user.security_stamp}")
    session.save()
    assert signed_in(phone)
    assert phone.session[HASH_SESSION_KEY] == user.get_session_auth_hash()
