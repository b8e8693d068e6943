"""Reads compiled once (models.PreparedQuery) — the request's user, the second step's kinds, apps and
codes: the same objects and values as the ORM's, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from twostep.models import User
from twostep.prepared import PreparedQuery

from ..conftest import ORIGIN, PASSWORD


def fields(user: User) -> dict:
    return {field.attname: getattr(user, field.attname) for field in User._meta.concrete_fields}


def test_the_same_user_and_account_as_the_orm_in_one_statement(admin, make_user):
    member = make_user("member")
    User.objects.filter(pk=member.pk).update(second_factor_blocked_until=datetime.datetime(2026, 12, 2, 19, 2,
                                                                                          tzinfo=datetime.UTC))
    for pk in (admin.pk, member.pk, str(member.pk)):
        with CaptureQueriesContext(connection) as queries:
            user = User.objects.with_account(pk)
            account_name = user.account.name  # filled in by the same statement
        assert len(queries) == 1
        expected = User.objects.select_related("account").get(pk=pk)
        assert fields(user) == fields(expected)
        assert account_name == expected.account.name == "Acme"
        assert user.account.pk == expected.account.pk and user._state.db == "default" and not user._state.adding
    member = User.objects.with_account(member.pk)
    # Converted as the ORM converts: aware datetimes, booleans, not the database's raw values.
    assert member.second_factor_blocked_until == datetime.datetime(2026, 12, 2, 19, 2, tzinfo=datetime.UTC)
    assert member.is_active is True and member.is_account_admin is False
    assert isinstance(member.created_at, datetime.datetime) and member.created_at.tzinfo is not None


def test_no_user_for_an_unknown_or_missing_key_and_an_error_for_junk(admin):
    assert User.objects.with_account(admin.pk + 1000) is None
    assert User.objects.with_account(None) is None
    with pytest.raises(ValueError, match="expected a number"):
        User.objects.with_account("1; DROP TABLE twostep_user")


@pytest.mark.django_db(transaction=True)
def test_each_thread_runs_it_on_its_own_connection(account):
    admin_pk = User.objects.get(login="admin").pk
    found = []

    def read():
        try:
            found.append(User.objects.with_account(admin_pk).login)
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert found == ["admin"] * 4


def test_a_query_whose_sql_changes_with_the_key_or_that_ignores_it_is_refused(admin):
    ignores = PreparedQuery(lambda pk: User.objects.filter(pk=admin.pk))
    with pytest.raises(ValueError, match="takes its key as a parameter"):
        ignores.first(admin.pk)
    changes = PreparedQuery(lambda n: User.objects.all()[:n])  # LIMIT is written into the SQL
    with pytest.raises(ValueError, match="the same SQL for every key"):
        changes.all(1)


def test_constants_stay_and_the_key_goes_wherever_it_is_used(admin, make_user):
    member = make_user("member")
    both = PreparedQuery(lambda pk: User.objects.filter(Q(pk=pk) | Q(pk=pk + 0), login="member").values_list("login"))
    assert both.values(member.pk) == [("member",)]
    assert both.values(admin.pk) == []  # the constant login is kept, not replaced by the key
    assert PreparedQuery(lambda pk: User.objects.filter(account__users__pk=pk).order_by("login")).all(admin.pk) == [
        admin, member]


def test_the_second_steps_reads_give_what_the_orm_gives(admin, make_user, enroll):
    """Kinds, apps, codes left and the code set: the same answers as the ORM's, one statement each."""
    from twostep.models import Authenticator, BackupCode, BackupCodeSet
    from twostep.services import authenticators
    from twostep.services.factors import backup_codes, confirmed_kinds, enabled
    from twostep.services.factors import totp as totp_factor

    member = make_user("member")
    assert (enabled(member), confirmed_kinds(member), backup_codes.remaining(member),
            backup_codes.current_set(member)) == (False, frozenset(), 0, None)
    enroll(member)
    authenticators.start_app(member, PASSWORD, ORIGIN)  # a second app, not confirmed: not offered
    with CaptureQueriesContext(connection) as queries:
        answers = (enabled(member), confirmed_kinds(member), backup_codes.remaining(member),
                   backup_codes.current_set(member), totp_factor._CONFIRMED_APPS.all(member.pk))
    assert len(queries) == 5
    assert answers[:3] == (True, frozenset({"totp"}), BackupCode.objects.filter(user=member, used_at__isnull=True).count())
    assert answers[2] == 10
    assert answers[3] == BackupCodeSet.objects.get(user=member)
    assert answers[4] == list(Authenticator.objects.filter(user=member, confirmed=True)) and len(answers[4]) == 1
    assert answers[4][0].encrypted_secret == Authenticator.objects.get(user=member, confirmed=True).encrypted_secret
    assert enabled(admin) is False and backup_codes.remaining(admin) == 0 and backup_codes.current_set(admin) is None


@pytest.mark.django_db(transaction=True)
def test_the_locked_read_is_the_orms_statement_and_only_in_a_transaction(admin):
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    with transaction.atomic():
        with CaptureQueriesContext(connection) as ours:
            user = User.objects.locked_with_account(admin.pk)
        with CaptureQueriesContext(connection) as orms:
            list(User.objects.select_for_update().select_related("account").filter(pk=admin.pk))
    assert user.login == "admin" and user.account.name == "Acme"
    assert ours[0]["sql"] == orms[0]["sql"]  # FOR UPDATE on PostgreSQL; SQLite has none
    with pytest.raises(TransactionManagementError):
        User.objects.locked_with_account(admin.pk)


def test_an_insert_compiled_once_writes_the_row_the_orm_writes(admin):
    """Every field as the ORM stores it (JSON, an address, a time, a key to another row), the new key back."""
    from twostep.models import SecurityEvent
    from twostep.prepared import PreparedInsert

    at = datetime.datetime(2026, 12, 3, 8, 0, 1, 250000, tzinfo=datetime.UTC)
    values = dict(type=SecurityEvent.Type.SIGN_IN, at=at, account=admin.account, user=admin, actor=admin,
                  actor_label="admin", ip="2001:db8::1", user_agent="Firefox", detail={"method": "totp", "n": [1, "ü"]})
    insert = PreparedInsert(SecurityEvent)
    with CaptureQueriesContext(connection) as queries:
        ours = insert.create(**values)
        again = insert.create(**{**values, "ip": None, "detail": {}})
    orms = SecurityEvent.objects.create(**values)
    assert len(queries) == 2 and queries[0]["sql"].startswith("INSERT")
    assert ours.pk is not None and again.pk == ours.pk + 1 and orms.pk == again.pk + 1
    assert not ours._state.adding and ours._state.db == "default"

    def stored(pk):
        row = SecurityEvent.objects.get(pk=pk)
        return {f.attname: getattr(row, f.attname) for f in SecurityEvent._meta.concrete_fields if f.attname != "id"}

    assert stored(ours.pk) == stored(orms.pk)
    assert stored(ours.pk)["detail"] == {"method": "totp", "n": [1, "ü"]} and stored(ours.pk)["at"] == at
    assert stored(again.pk)["ip"] is None and stored(again.pk)["detail"] == {}


def test_an_insert_refused_by_the_database_raises_as_the_orms_does(admin):
    from django.db import IntegrityError, transaction

    from twostep.models import UserSession
    from twostep.prepared import PreparedInsert

    now = datetime.datetime(2026, 12, 3, 8, 0, tzinfo=datetime.UTC)
    insert = PreparedInsert(UserSession)
    insert.create(session_key="k" * 32, user=admin, created_at=now, last_seen_at=now, ip=None, user_agent="")
    with pytest.raises(IntegrityError), transaction.atomic():  # the key is unique
        insert.create(session_key="k" * 32, user=admin, created_at=now, last_seen_at=now, ip=None, user_agent="")
    assert UserSession.objects.filter(user=admin).count() == 1
