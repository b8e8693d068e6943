"""A v1 database (one TotpDevice per user, the backup-code salt on User) migrates with everyone's
app and codes still working; and back again, keeping one app and the codes.

The database is taken back to 0002 (the last v1 migration), filled through the models as they
were then, and migrated forward; then people sign in through the service as they would. Every
test leaves the database at the latest migration, whatever happens, for the tests after it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from twostep import crypto
from twostep.core import backup_codes as codes_core
from twostep.models import Authenticator, BackupCodeSet, User
from twostep.services import authenticators, signin
from twostep.services.errors import InvalidCode
from twostep.services.factors import backup_codes
from twostep.services.factors.totp import CodeAlreadyUsed

from ..conftest import ORIGIN, PASSWORD

# Schema changes cannot run inside the test's transaction; tables are emptied after instead.
pytestmark = pytest.mark.django_db(transaction=True)

V1 = ("twostep", "0002_activity_sessions_recovery")
GENERATED_AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def migrate(target: list[tuple[str, str]]):
    """Migrate to `target` (a fresh executor sees what is applied now); return the models of then."""
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return MigrationExecutor(connection).loader.project_state(target).apps


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def at_latest_after(transactional_db):
    """Run the test, then bring the database back to the latest migration, even after a failure."""
    yield
    migrate(latest())
    assert not MigrationExecutor(connection).migration_plan(latest())


class V1User:
    """A v1 user as stored then: its app's key and codes, as the person holds them."""

    def __init__(self, pk: int, secret: str | None, codes: list[str], used: list[str]):
        self.pk, self.secret, self.codes, self.used = pk, secret, codes, used

    def code(self, now: float, steps: int = 0) -> str:
        return pyotp.TOTP(self.secret).at(now + 30 * steps)

    @property
    def unused(self) -> list[str]:
        return [c for c in self.codes if c not in self.used]


def make_v1_user(apps, account, login: str, *, now: float, with_app: bool = True, used: int = 0,
                 pending_app: bool = False) -> V1User:
    """Store a user the way v1 did: a confirmed TotpDevice, BackupCode digests, the salt on User."""
    User_, TotpDevice, BackupCode = (apps.get_model("twostep", name) for name in ("User", "TotpDevice", "BackupCode"))
    salt = codes_core.new_salt() if with_app else ""
    user = User_.objects.create(
        account=account, login=login, email=f"{login}@acme.example", password=make_password(PASSWORD),
        backup_codes_salt=salt, backup_codes_generated_at=GENERATED_AT if with_app else None,
    )
    if pending_app:  # began setting up a new phone and never finished
        TotpDevice.objects.create(user=user, encrypted_secret=crypto.encrypt_secret(pyotp.random_base32()))
    if not with_app:
        return V1User(user.pk, None, [], [])
    secret = pyotp.random_base32()
    TotpDevice.objects.create(user=user, encrypted_secret=crypto.encrypt_secret(secret), confirmed=True,
                              confirmed_at=GENERATED_AT, last_step=int(now // 30) - 1)
    plain = codes_core.make_codes()
    spent = plain[:used]
    BackupCode.objects.bulk_create(
        BackupCode(user=user, digest=crypto.code_digest(code, salt),
                   used_at=GENERATED_AT + timedelta(days=1) if code in spent else None)
        for code in plain)
    shown = [codes_core.format_code(c) for c in plain]
    return V1User(user.pk, secret, shown, shown[:used])


@pytest.fixture
def v1(at_latest_after, clock):
    """A v1 database: alice (2 codes used, a pending new phone), bob (no code used), carol (no 2FA)."""
    apps = migrate([V1])
    account = apps.get_model("twostep", "Account").objects.create(name="Acme")
    people = {
        "alice": make_v1_user(apps, account, "alice", now=clock(), used=2, pending_app=True),
        "bob": make_v1_user(apps, account, "bob", now=clock()),
        "carol": make_v1_user(apps, account, "carol", now=clock(), with_app=False),
    }
    migrate(latest())
    return people


def refused(user_id: int, code: str, error=InvalidCode) -> bool:
    with pytest.raises(error):
        signin.check_code(user_id, code, ORIGIN)
    return True


def test_every_app_and_unused_backup_code_still_works(v1, clock):
    for person in (v1["alice"], v1["bob"]):
        assert signin.check_code(person.pk, person.code(clock()), ORIGIN).method == "totp"
        for code in person.unused:
            assert signin.check_code(person.pk, code, ORIGIN).method == "backup_code"
        assert backup_codes.remaining(User.objects.get(pk=person.pk)) == 0


def test_used_backup_codes_stay_refused(v1):
    alice = v1["alice"]
    assert all(refused(alice.pk, code) for code in alice.used)
    assert backup_codes.remaining(User.objects.get(pk=alice.pk)) == 8


def test_the_last_accepted_step_is_kept_so_an_old_code_is_not_replayed(v1, clock):
    bob = v1["bob"]
    assert refused(bob.pk, bob.code(clock(), steps=-1), CodeAlreadyUsed)  # v1 accepted this step
    assert signin.check_code(bob.pk, bob.code(clock()), ORIGIN).method == "totp"
    assert refused(bob.pk, bob.code(clock()), CodeAlreadyUsed)


def test_each_app_becomes_an_authenticator_named_and_dated(v1):
    for login in ("alice", "bob"):
        apps = list(Authenticator.objects.filter(user__login=login, confirmed=True))
        assert [(a.kind, a.name, a.confirmed_at, a.last_used_at) for a in apps] == [
            ("totp", "Authenticator app", GENERATED_AT, GENERATED_AT)]
    pending = Authenticator.objects.get(user__login="alice", confirmed=False)
    assert pending.kind == "totp"
    assert not Authenticator.objects.filter(user__login="carol").exists()


def test_each_salt_moves_to_a_backup_code_set(v1):
    for login in ("alice", "bob"):
        code_set = BackupCodeSet.objects.get(user__login=login)
        assert (code_set.size, code_set.generated_at, code_set.saved_at) == (10, GENERATED_AT, GENERATED_AT)
        assert len(code_set.salt) > 0
    assert not BackupCodeSet.objects.filter(user__login="carol").exists()


def test_a_user_without_two_factor_still_signs_in_with_the_password_alone(v1):
    assert signin.check_password("carol", PASSWORD, ORIGIN).stage == signin.AUTHENTICATED
    assert signin.check_password("alice", PASSWORD, ORIGIN).stage == signin.SECOND_FACTOR


def test_back_to_v1_keeps_the_newest_app_and_the_codes(at_latest_after, member, enroll, clock):
    older = enroll(member)
    setup = authenticators.start_app(member, PASSWORD, ORIGIN, name="Work tablet")
    clock.advance(30)
    authenticators.confirm_app(member, pyotp.TOTP(setup.secret).at(clock()), ORIGIN)
    Authenticator.objects.create(user=member, kind="webauthn", name="YubiKey", confirmed=True,
                                 credential_id="a2V5", public_key=b"\x01")
    assert signin.check_code(member.pk, older.codes[0], ORIGIN).method == "backup_code"
    salt = BackupCodeSet.objects.get(user=member).salt

    apps = migrate([V1])
    devices = apps.get_model("twostep", "TotpDevice").objects.filter(user_id=member.pk, confirmed=True)
    assert [crypto.decrypt_secret(bytes(d.encrypted_secret)) for d in devices] == [setup.secret]
    v1_user = apps.get_model("twostep", "User").objects.get(pk=member.pk)
    assert v1_user.backup_codes_salt == salt
    codes = apps.get_model("twostep", "BackupCode").objects.filter(user_id=member.pk)
    assert (codes.count(), codes.filter(used_at__isnull=True).count()) == (10, 9)

    migrate(latest())  # and forward again: the kept app and the unused codes work
    clock.advance(30)
    assert signin.check_code(member.pk, pyotp.TOTP(setup.secret).at(clock()), ORIGIN).method == "totp"
    assert signin.check_code(member.pk, older.codes[1], ORIGIN).method == "backup_code"
    assert refused(member.pk, older.codes[0])
    assert [a.name for a in Authenticator.objects.filter(user=member)] == ["Authenticator app"]
