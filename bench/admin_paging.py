"""The account admin's users list with 100 000 users in one account: `python bench/admin_paging.py`.

Prints the time of the first page, a page deep in the list (keyset cursor), and a search, on
SQLite by default or on the database in TWOSTEP_DATABASE_URL. Keyset paging should make the
deep page cost about what the first one does; the ratio says whether it does.
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
os.environ.setdefault("TWOSTEP_DATA_DIR", tempfile.mkdtemp(prefix="twostep-paging-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("TWOSTEP_LOG_LEVEL", "WARNING")
USERS = int(os.environ.get("BENCH_USERS", "100000"))


def median_ms(fn, repeat=20) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    call_command("migrate", verbosity=0)
    from twostep.models import Account, User
    from twostep.services import accounts

    account = Account.objects.filter(name="Paging").first()
    if account is None:
        account = Account.objects.create(name="Paging")
        admin = User(login="aaadmin", email="a@paging.example", account=account, is_account_admin=True)
        admin.set_unusable_password()
        admin.save()
        started = time.perf_counter()
        with transaction.atomic():
            for start in range(0, USERS, 5000):
                User.objects.bulk_create(
                    User(login=f"user{n:06d}", email=f"user{n:06d}@paging.example", account=account,
                         password="!")
                    for n in range(start, min(start + 5000, USERS))
                )
        print(f"made {USERS} users in {time.perf_counter() - started:.1f} s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum would do after a bulk load
    admin = User.objects.get(login="aaadmin")
    deep_cursor = f"user{USERS - 100:06d}"
    first = median_ms(lambda: accounts.list_users(admin))
    deep = median_ms(lambda: accounts.list_users(admin, after=deep_cursor))
    search = median_ms(lambda: accounts.list_users(admin, query="user09999"), repeat=5)
    print(f"users page of 50, {USERS} users in the account, {connection.vendor}:")
    print(f"  first page                 {first:8.2f} ms")
    print(f"  page near the end (cursor) {deep:8.2f} ms   ratio to the first page {deep / first:.2f}")
    print(f"  search (substring)         {search:8.2f} ms")


if __name__ == "__main__":
    main()
