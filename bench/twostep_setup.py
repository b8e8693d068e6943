"""Make twostep's benchmark database: users with an authenticator app and backup codes.

    DJANGO_SETTINGS_MODULE=bench_settings PYTHONPATH=bench TWOSTEP_DATA_DIR=… \
        python bench/twostep_setup.py --users N --password P --out users.json
    … python bench/twostep_setup.py --rehash --password P

The first user is made through twostep's services (as `twostep user create` and the setup
pages do); the others are copies of its rows (user, authenticator app, backup-code set and
codes), each with its own login, TOTP secret (encrypted as the service does), salt and codes,
written in bulk: a few seconds for thousands of users, on a machine where the services would
take minutes. Every password is then set to one hash made once with the configured hasher
(BENCH_HASHER); --rehash does only that, in a copied data dir, for another hasher. Mails the set-up queued are dropped: the queue worker of the served
instance must not spend the measured minutes sending them.
"""

from __future__ import annotations

import argparse
import copy
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
from django.db import transaction  # noqa: E402

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


def copies(model: User, count: int) -> dict:
    """`count` more users like `model`, written in bulk; return their secrets and codes."""
    from twostep import crypto
    from twostep.core import backup_codes as codes_core
    from twostep.models import Authenticator, BackupCode, BackupCodeSet

    app = Authenticator.objects.get(user=model, confirmed=True)
    code_set = BackupCodeSet.objects.get(user=model)
    stamp = User._meta.get_field("security_stamp")
    made = {}
    for start in range(1, count + 1, 500):
        batch = range(start, min(count + 1, start + 500))
        people = []
        for n in batch:
            person = copy.copy(model)
            person.pk = person.id = None
            person.login, person.email = f"u{n}", f"u{n}@bench.example"
            person.security_stamp = stamp.default() if callable(stamp.default) else stamp.default
            people.append(person)
        with transaction.atomic():
            people = User.objects.bulk_create(people)
            apps, sets, rows = [], [], []
            for person in people:
                secret = totp.new_secret()
                plain = codes_core.make_codes()
                salt = codes_core.new_salt()
                twin = copy.copy(app)
                twin.pk = twin.id = None
                twin.user = person
                twin.encrypted_secret = crypto.encrypt_secret(secret)
                if twin.last_step is not None:  # as if confirmed a few minutes ago
                    twin.last_step -= 10
                apps.append(twin)
                their_set = copy.copy(code_set)
                their_set.pk = their_set.id = None
                their_set.user, their_set.salt, their_set.size = person, salt, len(plain)
                sets.append(their_set)
                rows += [BackupCode(user=person, digest=crypto.code_digest(c, salt)) for c in plain]
                made[person.login] = {"secret": secret, "codes": [codes_core.format_code(c) for c in plain]}
            Authenticator.objects.bulk_create(apps)
            BackupCodeSet.objects.bulk_create(sets)
            BackupCode.objects.bulk_create(rows)
    return made


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
        user = accounts.create_user("u0", "Bench", "u0@bench.example", password)
        setup = authenticators.start_app(user, password, origin)
        added = authenticators.confirm_app(user, totp.hotp(setup.secret, totp.time_step(clock.now())), origin)
        users = {"u0": {"secret": setup.secret, "codes": list(added.backup_codes.codes)}}
        users.update(copies(User.objects.get(pk=user.pk), options.users - 1))
        Path(options.out).write_text(json.dumps(users))
    User.objects.update(password=make_password(options.password))
    drop_queued_mail()
    print(f"hasher {settings.PASSWORD_HASHERS[0].rsplit('.', 1)[-1]}", file=sys.stderr)


if __name__ == "__main__":
    main()
