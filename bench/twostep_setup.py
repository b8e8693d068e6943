"""Make twostep's benchmark database: users with an authenticator app and backup codes.

    DJANGO_SETTINGS_MODULE=bench_settings PYTHONPATH=bench TWOSTEP_DATA_DIR=… \
        python bench/twostep_setup.py --users N --password P --out users.json
    … python bench/twostep_setup.py --rehash --password P

Users are made through twostep's services (as `twostep user create` and the setup pages do),
then every password is set to one hash made once with the configured hasher (BENCH_HASHER),
so thousands of users take seconds even with Argon2; --rehash does only that, in a copied data
dir, for another hasher. Mails the set-up queued are dropped: the queue worker of the served
instance must not spend the measured minutes sending them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT), str(ROOT / "src")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402

from twostep.core import clock, totp  # noqa: E402
from twostep.models import Mail, User  # noqa: E402
from twostep.services import accounts, authenticators  # noqa: E402
from twostep.services.audit import Origin  # noqa: E402


def drop_queued_mail() -> None:
    Mail.objects.all().delete()
    try:
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.all().delete()
    except ImportError:  # pragma: no cover — another queue backend
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out")
    parser.add_argument("--rehash", action="store_true")
    options = parser.parse_args()
    call_command("migrate", verbosity=0)
    if not options.rehash:
        origin = Origin(ip="127.0.0.1", user_agent="bench setup")
        password = options.password
        accounts.create_account("Bench", "benchadmin", "admin@bench.example", password)
        users = {}
        for n in range(options.users):
            user = accounts.create_user(f"u{n}", "Bench", f"u{n}@bench.example", password)
            setup = authenticators.start_app(user, password, origin)
            code = totp.hotp(setup.secret, totp.time_step(clock.now()))
            added = authenticators.confirm_app(user, code, origin)
            users[user.login] = {"secret": setup.secret, "codes": list(added.backup_codes.codes)}
        Path(options.out).write_text(json.dumps(users))
    User.objects.update(password=make_password(options.password))
    drop_queued_mail()
    print(f"hasher {settings.PASSWORD_HASHERS[0].rsplit('.', 1)[-1]}", file=sys.stderr)


if __name__ == "__main__":
    main()
