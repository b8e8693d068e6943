"""The user of a request read by a query compiled once (models.PreparedQuery): the same objects as
the ORM's, in one statement, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from twostep.models import PreparedQuery, User


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


def test_a_query_with_more_than_its_value_as_parameter_is_refused(admin):
    prepared = PreparedQuery(lambda pk: User.objects.filter(pk=pk, login="admin"), sample=0)
    with pytest.raises(ValueError, match="one parameter"):
        prepared.first(admin.pk)


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
