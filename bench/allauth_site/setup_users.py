"""Make the comparison site's database: users with a TOTP authenticator and recovery codes.

    BENCH_DATA_DIR=… BENCH_HASHER=md5 python setup_users.py --users N --password P --out users.json
    BENCH_DATA_DIR=… BENCH_HASHER=argon2-django python setup_users.py --rehash --password P

Uses allauth's own API (TOTP.activate, RecoveryCodes.activate). Every user gets the same
password hash (computed once with the configured hasher), so making thousands is quick;
--rehash only replaces that hash in a copied database for another hasher.
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")

import django  # noqa: E402

django.setup()

import pyotp  # noqa: E402
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes  # noqa: E402
from allauth.mfa.totp.internal.auth import TOTP  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out")
    parser.add_argument("--rehash", action="store_true")
    options = parser.parse_args()
    encoded = make_password(options.password)
    if options.rehash:
        User.objects.update(password=encoded)
        return
    call_command("migrate", verbosity=0)
    users = {}
    with transaction.atomic():
        made = User.objects.bulk_create(
            User(username=f"u{n}", email=f"u{n}@bench.example", password=encoded)
            for n in range(options.users))
        for user in made:
            secret = pyotp.random_base32()
            TOTP.activate(user, secret)
            codes = RecoveryCodes.activate(user).generate_codes()
            users[user.username] = {"secret": secret, "codes": codes}
    Path(options.out).write_text(json.dumps(users))


if __name__ == "__main__":
    main()
