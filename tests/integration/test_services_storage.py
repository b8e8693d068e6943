"""What the database holds: no backup code, no TOTP secret, no password in any readable form."""

from __future__ import annotations

import base64
import logging

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from twostep import crypto
from twostep.core import backup_codes as codes_core
from twostep.core import clock as core_clock
from twostep.models import Authenticator, BackupCode, User
from twostep.services import signin
from twostep.services.factors import backup_codes

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db


def dump_database() -> str:
    """Every value of every table, text as is and binary both as hex and as Latin-1."""
    chunks = []
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        raw = bytes(value)
                        chunks += [raw.hex(), raw.decode("latin-1")]
                    else:
                        chunks.append(str(value))
    assert "twostep_backupcode" in tables and "twostep_authenticator" in tables
    return "\n".join(chunks)


def code_forms(shown: str) -> list[str]:
    """Every spelling a stored code could take: as shown, normalised, upper case, spaced."""
    plain = codes_core.normalize_code(shown)
    return [shown, plain, plain.upper(), shown.upper(), shown.replace("-", " "),
            base64.b64encode(plain.encode()).decode()]


def secret_forms(secret: str) -> list[str]:
    raw = base64.b32decode(secret)
    return [secret, secret.lower(), " ".join(secret[i:i + 4] for i in range(0, 32, 4)),
            raw.hex(), base64.b64encode(raw).decode(), base64.b64encode(secret.encode()).decode()]


@pytest.fixture
def regenerated(enrolled, mailoutbox, django_capture_on_commit_callbacks):
    """An enrolled user who also made a second set and used a code of it (mails sent)."""
    with django_capture_on_commit_callbacks(execute=True):
        second = backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
        signin.check_code(enrolled.user.pk, second.codes[0], ORIGIN)
    return enrolled, second.codes


def test_database_dump_holds_no_backup_code_and_no_totp_secret(regenerated):
    """SECURITY.md: django-otp StaticToken, bitwarden #270 — a test greps a DB dump for codes."""
    enrolled, second_codes = regenerated
    dump = dump_database()
    assert "member@acme.example" in dump  # the dump does see the user's rows
    assert BackupCode.objects.get(user=enrolled.user, used_at__isnull=False).digest in dump
    lowered = dump.lower()
    leaked = [form for shown in [*enrolled.codes, *second_codes] for form in code_forms(shown)
              if form.lower() in lowered]
    assert leaked == []
    assert [form for form in secret_forms(enrolled.secret) if form.lower() in lowered] == []
    assert PASSWORD not in dump


def test_logs_and_mails_hold_no_code_and_no_secret(enrolled, clock, caplog, mailoutbox,
                                                   django_capture_on_commit_callbacks):
    """ASVS 6.5.x / STYLE.md habit 6: secrets never reach logs or e-mail."""
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        new = backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
        signin.check_code(enrolled.user.pk, new.codes[0], ORIGIN)
        signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)
    text = (caplog.text + "".join(m.subject + m.body for m in mailoutbox)).lower()
    assert len(mailoutbox) == 2 and "event=backup_code_used" in text
    forms = [f for shown in [*enrolled.codes, *new.codes] for f in code_forms(shown)]
    forms += secret_forms(enrolled.secret) + [PASSWORD]
    assert [f for f in forms if f.lower() in text] == []


def test_stored_code_is_a_keyed_salted_hash(enrolled):
    enrolled.user.refresh_from_db()
    code = codes_core.normalize_code(enrolled.codes[0])
    stored = set(BackupCode.objects.filter(user=enrolled.user).values_list("digest", flat=True))
    assert crypto.code_digest(code, enrolled.user.backup_code_set.salt) in stored
    assert codes_core.hash_code(code, enrolled.user.backup_code_set.salt, b"another key") not in stored


def test_totp_secret_is_encrypted_at_rest(enrolled):
    token = bytes(Authenticator.objects.get(user=enrolled.user).encrypted_secret)
    assert enrolled.secret.encode() not in token
    assert crypto.decrypt_secret(token) == enrolled.secret


@pytest.fixture
def keys(settings):
    """Change the key lists for one test; the cached key objects follow both ways."""
    crypto.clear_caches()
    yield settings
    crypto.clear_caches()


def test_secret_made_under_an_old_key_decrypts_after_a_new_key_is_put_first(enrolled, keys):
    """Key rotation (STYLE.md habit 5): the first key encrypts, every key decrypts."""
    old = list(keys.TWOSTEP_ENCRYPTION_KEYS)
    new = Fernet.generate_key().decode()
    keys.TWOSTEP_ENCRYPTION_KEYS = [new, *old]
    crypto.clear_caches()
    token = bytes(Authenticator.objects.get(user=enrolled.user).encrypted_secret)
    assert crypto.decrypt_secret(token) == enrolled.secret
    signin.check_code(enrolled.user.pk, enrolled.code(), ORIGIN)

    rotated = crypto.rotate_secret(token)
    keys.TWOSTEP_ENCRYPTION_KEYS = [new]
    crypto.clear_caches()
    assert crypto.decrypt_secret(rotated) == enrolled.secret
    with pytest.raises(RuntimeError):  # the old token needs the old key
        crypto.decrypt_secret(token)


def test_secret_cannot_be_read_without_its_key(enrolled, keys):
    keys.TWOSTEP_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    crypto.clear_caches()
    with pytest.raises(RuntimeError):
        crypto.decrypt_secret(Authenticator.objects.get(user=enrolled.user).encrypted_secret)


def test_backup_codes_hashed_under_an_old_key_still_work_after_a_new_key_is_put_first(enrolled, keys):
    old = list(keys.TWOSTEP_CODE_HASH_KEYS)
    keys.TWOSTEP_CODE_HASH_KEYS = ["a brand new code hash key", *old]
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)
    new = backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    keys.TWOSTEP_CODE_HASH_KEYS = ["a brand new code hash key"]
    signin.check_code(enrolled.user.pk, new.codes[0], ORIGIN)


def test_backup_codes_stop_working_when_their_key_is_removed(enrolled, keys):
    keys.TWOSTEP_CODE_HASH_KEYS = ["a brand new code hash key"]
    user = User.objects.get(pk=enrolled.user.pk)
    assert backup_codes.spend(user, enrolled.codes[0], core_clock.utcnow()) is False


def test_password_is_stored_as_argon2id(member):
    """DESIGN.md: Argon2id via Django's hasher (twostep's subclass), also in production settings."""
    from config import settings as production

    member.refresh_from_db()
    assert member.password.startswith("argon2$argon2id$")
    assert production.PASSWORD_HASHERS[0] == "twostep.hashers.Argon2PasswordHasher"
    assert member.check_password(PASSWORD)
