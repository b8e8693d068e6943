"""Benchmarks that print figures: `make bench`.

Machines are noisy, so besides absolute figures each section prints a ratio against the
alternative it replaces, measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
os.environ.setdefault("TWOSTEP_DATA_DIR", tempfile.mkdtemp(prefix="twostep-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def timed(fn, repeat: int) -> float:
    """Return the median seconds per call over `repeat` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def line(name: str, seconds: float, note: str = "") -> None:
    print(f"  {name:<58} {seconds * 1e6:>10.1f} µs/op {note}")


def bench_core() -> None:
    from twostep.core import backup_codes, totp

    print("core (pure, no database)")
    secret = totp.new_secret()
    now = time.time()
    code = totp.hotp(secret, totp.time_step(now))
    line("TOTP: check a code over ±1 step", timed(lambda: totp.match_code(secret, code, now), 2000))
    line("backup codes: make a set of 10", timed(backup_codes.make_codes, 500))
    sample = backup_codes.format_code(backup_codes.make_code())
    line("backup codes: normalise a typed code", timed(lambda: backup_codes.normalize_code(sample), 5000))


def bench_backup_code_check() -> None:
    """Our one indexed HMAC look-up against the loop of password hashes others use."""
    import django
    from django.core.management import call_command

    django.setup()
    from django.conf import settings

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("migrate", verbosity=0)
    from django.contrib.auth.hashers import check_password, make_password
    from django.db import transaction

    from twostep.core import clock
    from twostep.models import BackupCode
    from twostep.services import accounts, authenticators
    from twostep.services.audit import Origin
    from twostep.services.factors import backup_codes

    print("backup-code check (SQLite, one user with 10 codes)")
    origin = Origin(ip="127.0.0.1", user_agent="bench")
    password = "bench password long enough"
    accounts.create_account("Bench", "bench", "bench@example.com", password)
    user = accounts.user_status("bench").user
    setup = authenticators.start_app(user, password, origin)
    from twostep.core import totp

    confirmed = authenticators.confirm_app(user, totp.hotp(setup.secret, totp.time_step(clock.now())), origin)
    codes = confirmed.backup_codes.codes
    # Many users' codes in the table, as in production.
    for n in range(200):
        other = accounts.create_user(f"user{n}", "Bench", f"u{n}@example.com", password)
        with transaction.atomic():
            backup_codes.replace_codes(other, clock.utcnow())
    print(f"  table holds {BackupCode.objects.count()} codes")

    wrong = codes[0][:-4] + "zzzz"

    def lookup_only():
        from twostep import crypto
        from twostep.core import backup_codes as core

        c = core.normalize_code(codes[5])
        return BackupCode.objects.filter(user=user, digest__in=crypto.code_digests(c, user.backup_code_set.salt),
                                         used_at__isnull=True).exists()

    ours = timed(lookup_only, 300)
    line("twostep: keyed hash + one indexed look-up", ours)

    hashed = [make_password(c) for c in codes]  # Django's default: Argon2id, as a password store would

    def loop_of_password_hashes():
        for h in hashed:  # a wrong code is compared with every stored one
            check_password(wrong, h)

    theirs = timed(loop_of_password_hashes, 5)
    line("alternative: loop of Argon2 password hashes (wrong code)", theirs,
         f"(ratio {theirs / ours:,.0f}x slower)")


if __name__ == "__main__":
    bench_core()
    bench_backup_code_check()
