"""Races: a code is spent once however many requests carry it; sign-ins never meet a locked DB.

The single-use races run on PostgreSQL only: SQLite serialises writers and would hide them
(STYLE.md habit 4). The "database is locked" tests run on both.
"""

from __future__ import annotations

import threading
from collections import Counter

import pyotp
import pytest
from django.db import connection, transaction
from django.utils import timezone

from twostep.core import backup_codes as codes_core
from twostep.core import clock as core_clock
from twostep.core import totp
from twostep.models import Authenticator, BackupCode, SecurityEvent, User
from twostep.services import authenticators, signin
from twostep.services.audit import Origin
from twostep.services.errors import InvalidCode, NoPendingSetup, Throttled
from twostep.services.factors import backup_codes
from twostep.services.factors import totp as totp_factor

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def room_for_every_thread(settings):
    """These races are about the database: every thread waits for a hashing slot instead of
    being answered 503 "busy" (the gate has tests of its own: test_admission.py)."""
    settings.TWOSTEP_HASH_QUEUE_LENGTH = 64
    settings.TWOSTEP_HASH_QUEUE_TIMEOUT = 60


def race(count: int, work) -> list:
    """Run work(i) in `count` threads released together; return each result or exception."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as error:  # noqa: BLE001 — the test inspects every outcome
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    return results


def outcomes(results) -> Counter:
    return Counter("ok" if not isinstance(r, BaseException) else type(r).__name__ for r in results)


def unexpected(results, *allowed) -> list:
    return [r for r in results if isinstance(r, BaseException) and not isinstance(r, allowed)]


# single use, on PostgreSQL -------------------------------------------------------------------

def test_backup_code_raced_by_twenty_sign_ins_is_spent_once(postgres_only, enrolled):
    """Keycloak #26106: one recovery code accepted by parallel requests (ASVS 15.4.2)."""
    code = enrolled.codes[0]
    results = race(20, lambda i: signin.check_code(enrolled.user.pk, code, ORIGIN))
    assert unexpected(results, InvalidCode, Throttled) == []
    assert outcomes(results)["ok"] == 1
    assert BackupCode.objects.filter(user=enrolled.user, used_at__isnull=False).count() == 1
    assert backup_codes.remaining(enrolled.user) == 9
    assert SecurityEvent.objects.filter(user=enrolled.user, type="backup_code_used").count() == 1


def test_backup_code_conditional_update_alone_lets_one_of_twenty_win(postgres_only, enrolled):
    """The UPDATE … WHERE used_at IS NULL is single-use even without the caller's row lock."""
    user = User.objects.get(pk=enrolled.user.pk)
    code = enrolled.codes[3]

    def spend(i):
        with transaction.atomic():
            return backup_codes.spend(user, code, core_clock.utcnow())

    results = race(20, spend)
    # The losers find the code spent by the winner: "already used", never a second True.
    assert unexpected(results, backup_codes.CodeAlreadyUsed) == []
    assert results.count(True) == 1
    assert sum(isinstance(r, backup_codes.CodeAlreadyUsed) for r in results) == 19
    assert BackupCode.objects.filter(user=enrolled.user, used_at__isnull=False).count() == 1


def test_app_code_raced_by_twenty_sign_ins_is_accepted_once(postgres_only, enrolled, clock):
    """RFC 6238 §5.2 under concurrency: the stored last step admits one winner."""
    code = enrolled.code()
    results = race(20, lambda i: signin.check_code(enrolled.user.pk, code, ORIGIN, method="totp"))
    assert unexpected(results, InvalidCode, Throttled) == []
    assert outcomes(results)["ok"] == 1
    assert Authenticator.objects.get(user=enrolled.user).last_step == totp.time_step(clock())
    assert SecurityEvent.objects.filter(user=enrolled.user, type="sign_in").count() == 1


def test_app_code_conditional_update_alone_lets_one_of_twenty_win(postgres_only, enrolled):
    """The step check sits in the UPDATE itself, so it holds without the user-row lock too."""
    user = User.objects.get(pk=enrolled.user.pk)
    code = enrolled.code()

    def spend(i):
        with transaction.atomic():
            try:
                return totp_factor.verify(user, code, timezone.now(), ORIGIN) is not None
            except totp_factor.CodeAlreadyUsed:
                return False

    results = race(20, spend)
    assert unexpected(results) == []
    assert results.count(True) == 1


@pytest.mark.parametrize("count", [2, 5])
def test_simultaneous_wrong_codes_each_count_a_failure(postgres_only, enrolled, count):
    """No lost update on the failure counter: concurrent guesses cannot slip past the throttle."""
    window = {enrolled.code(o) for o in (-1, 0, 1)}
    wrong = [c for c in (f"{n:06d}" for n in range(100)) if c not in window][:count]
    results = race(count, lambda i: signin.check_code(enrolled.user.pk, wrong[i], ORIGIN))
    assert outcomes(results) == Counter({"InvalidCode": count})
    enrolled.user.refresh_from_db()
    assert enrolled.user.second_factor_failures == count


def test_wrong_app_and_backup_codes_at_once_share_the_counter(postgres_only, enrolled):
    window = {enrolled.code(o) for o in (-1, 0, 1)}
    app = next(c for c in (f"{n:06d}" for n in range(100)) if c not in window)
    guesses = [app, codes_core.format_code(codes_core.make_code())]
    results = race(2, lambda i: signin.check_code(enrolled.user.pk, guesses[i], ORIGIN))
    assert outcomes(results) == Counter({"InvalidCode": 2})
    enrolled.user.refresh_from_db()
    assert enrolled.user.second_factor_failures == 2


def test_pending_setup_raced_by_twenty_confirmations_is_confirmed_once(postgres_only, member, clock):
    setup = authenticators.start_app(member, PASSWORD, ORIGIN)
    code = pyotp.TOTP(setup.secret).at(clock())
    results = race(20, lambda i: authenticators.confirm_app(member, code, ORIGIN))
    assert unexpected(results, NoPendingSetup) == []
    assert outcomes(results)["ok"] == 1
    assert Authenticator.objects.filter(user=member).count() == 1
    assert Authenticator.objects.filter(user=member, confirmed=True).count() == 1
    assert BackupCode.objects.filter(user=member).count() == 10
    assert SecurityEvent.objects.filter(user=member, type="two_factor_enabled").count() == 1
    winner = next(r for r in results if not isinstance(r, BaseException))
    assert len(winner.backup_codes.codes) == 10
    signin.check_code(member.pk, winner.backup_codes.codes[0], ORIGIN)  # the kept set is that one


def test_replacement_raced_by_twenty_confirmations_keeps_exactly_one_device(postgres_only, enrolled, clock):
    setup = authenticators.start_app(enrolled.user, PASSWORD, ORIGIN)
    code = pyotp.TOTP(setup.secret).at(clock())
    results = race(20, lambda i: authenticators.confirm_app(enrolled.user, code, ORIGIN, replace_apps=True))
    assert unexpected(results, NoPendingSetup) == []
    assert outcomes(results)["ok"] == 1
    assert Authenticator.objects.filter(user=enrolled.user).count() == 1
    assert SecurityEvent.objects.filter(user=enrolled.user, type="authenticator_replaced").count() == 1


# no "database is locked", on SQLite and PostgreSQL ----------------------------------------------

def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(db):
    """DESIGN.md: WAL, immediate write transactions and a busy timeout on SQLite."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's journal mode")
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert connection.settings_dict["TEST"]["NAME"] != ":memory:"


def test_sixteen_users_sign_in_at_once_without_error(make_user, enroll, clock):
    """SECURITY.md: HTTP 500 "database is locked" under 4 concurrent sign-ins elsewhere."""
    people = [enroll(make_user(f"user{i:02d}")) for i in range(16)]

    def sign_in(i):
        person = people[i]
        origin = Origin(ip=f"192.0.2.{100 + i}", user_agent=f"thread {i}")
        step = signin.check_password(person.user.login.upper(), PASSWORD, origin)
        assert step.stage == signin.SECOND_FACTOR
        return signin.check_code(step.user.pk, person.code(), origin)

    results = race(16, sign_in)
    assert unexpected(results) == []
    assert SecurityEvent.objects.filter(type="sign_in").count() == 16


def test_one_user_spends_all_backup_codes_at_once_without_error(enrolled):
    def sign_in(i):
        step = signin.check_password("member", PASSWORD, ORIGIN)
        return signin.check_code(step.user.pk, enrolled.codes[i], ORIGIN)

    results = race(10, sign_in)
    assert unexpected(results) == []
    assert sorted(r.backup_codes_remaining for r in results) == list(range(10))
    assert backup_codes.remaining(enrolled.user) == 0


def test_setup_started_twice_at_once_leaves_one_pending_authenticator(postgres_only, member, clock):
    """A double-clicked "set up" button: no error, one pending device, the last key shown wins."""
    results = race(10, lambda i: authenticators.start_app(member, PASSWORD, ORIGIN))
    assert unexpected(results) == []
    assert Authenticator.objects.filter(user=member).count() == 1
    pending = authenticators.pending_app(member)
    assert pending.secret in {r.secret for r in results}
    authenticators.confirm_app(member, pyotp.TOTP(pending.secret).at(clock()), ORIGIN)


def test_twenty_wrong_passwords_at_once_hash_no_more_than_one_by_one(postgres_only, member, clock, settings,
                                                                     hashes):
    """Check-then-act (ASVS 15.4.2): 20 guesses at once were all hashed; one by one only 6 are."""
    from twostep.models import Throttle
    from twostep.services import throttling
    from twostep.services.errors import InvalidCredentials

    allowed = settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS + 1  # the 6th failure is the one that blocks
    results = race(20, lambda i: signin.check_password("member", f"wrong {i}", ORIGIN))
    assert unexpected(results, InvalidCredentials, Throttled) == []
    assert len(hashes) == allowed
    assert outcomes(results) == Counter({"InvalidCredentials": allowed, "Throttled": 20 - allowed})
    # No lost update, no duplicate-key error, nothing left pending.
    rows = {key: (failures, pending) for key, failures, pending
            in Throttle.objects.values_list("key", "failures", "pending")}
    assert rows == {key: (allowed, 0) for key in throttling.password_keys("member", ORIGIN.ip)}
    with pytest.raises(Throttled):  # and the right password now waits its turn, as one by one
        signin.check_password("member", PASSWORD, ORIGIN)


def test_wrong_passwords_at_once_for_many_logins_from_one_address_respect_its_limit(
        postgres_only, make_user, clock, settings, hashes):
    """The per-address counter holds under a race too: 3 free, so 4 guesses hashed of 12."""
    from twostep.services.errors import InvalidCredentials

    settings.TWOSTEP_ADDRESS_FREE_ATTEMPTS = 3
    for i in range(12):
        make_user(f"login{i:02d}")
    hashes.clear()
    results = race(12, lambda i: signin.check_password(f"login{i:02d}", "not the password", ORIGIN))
    assert unexpected(results, InvalidCredentials, Throttled) == []
    assert len(hashes) == 4
    assert outcomes(results) == Counter({"InvalidCredentials": 4, "Throttled": 8})


def test_same_account_created_twice_at_once_is_a_conflict(postgres_only):
    """Two `twostep account create` runs for one name: one account, the other a clean conflict."""
    from twostep.models import Account
    from twostep.services import accounts
    from twostep.services.errors import Conflict

    results = race(6, lambda i: accounts.create_account("Initech", f"boss{i}", f"boss{i}@initech.example",
                                                        PASSWORD))
    assert unexpected(results, Conflict) == []
    assert outcomes(results)["ok"] == 1
    assert Account.objects.filter(name="Initech").count() == 1
    assert User.objects.filter(login__startswith="boss").count() == 1


def test_same_login_created_twice_at_once_is_a_conflict(postgres_only, account):
    from twostep.services import accounts
    from twostep.services.errors import Conflict

    results = race(6, lambda i: accounts.create_user("Newbie", "Acme", f"n{i}@acme.example", PASSWORD))
    assert unexpected(results, Conflict) == []
    assert outcomes(results)["ok"] == 1


def test_mixed_right_and_wrong_sign_ins_at_once_meet_no_database_error(make_user, enroll, clock):
    """Writers of every kind at once (throttle rows, failure counters, spent codes, events)."""
    from twostep.services.errors import InvalidCredentials

    people = [enroll(make_user(f"user{i:02d}")) for i in range(4)]

    def sign_in(i):
        person = people[i % 4]
        origin = Origin(ip=f"192.0.2.{i}", user_agent="mixed")
        if i % 4 == 0:
            return signin.check_password(person.user.login, "not the password", origin)
        step = signin.check_password(person.user.login, PASSWORD, origin)
        if i % 4 == 1:
            return signin.check_code(step.user.pk, "000000" if person.code() != "000000" else "111111",
                                           origin, method="totp")
        return signin.check_code(step.user.pk, person.codes[i // 4], origin)

    results = race(16, sign_in)
    assert unexpected(results, InvalidCredentials, InvalidCode) == []
    assert outcomes(results) == Counter({"ok": 8, "InvalidCredentials": 4, "InvalidCode": 4})


def test_concurrent_confirmations_that_codes_are_saved_record_one_event(enrolled, postgres_only):
    results = race(8, lambda i: backup_codes.confirm_saved(enrolled.user, ORIGIN).saved_at)
    assert len(set(results)) == 1, results  # every answer names the one saved_at
    assert SecurityEvent.objects.filter(user=enrolled.user, type=SecurityEvent.Type.BACKUP_CODES_SAVED).count() == 1


def test_right_passwords_at_once_from_one_address_all_sign_in_and_leave_nothing_counted(
        postgres_only, make_user, clock):
    """Colleagues behind one address sign in together: the shared address row is counted and
    given back by each, with no lost update and no deadlock; nothing stays counted after."""
    from twostep.models import Throttle

    for i in range(12):
        make_user(f"colleague{i:02d}")
    results = race(12, lambda i: signin.check_password(f"colleague{i:02d}", PASSWORD, ORIGIN))
    assert unexpected(results) == []
    assert Throttle.objects.count() == 0


def test_one_right_password_sent_many_times_at_once_signs_in_each_time(postgres_only, member, clock):
    """A form sent again and again (both keys shared by every attempt): each waits its turn or
    passes, none meets a database error, and the counters end at nothing."""
    from twostep.models import Throttle

    results = race(8, lambda i: signin.check_password("member", PASSWORD, ORIGIN))
    assert unexpected(results) == []
    assert Throttle.objects.count() == 0
