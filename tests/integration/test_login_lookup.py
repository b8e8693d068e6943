"""A login is found whatever its letters' case, by the unique index on LOWER(login), as the index folds it."""

from __future__ import annotations

import pytest
from django.db import connection

from twostep.models import Account, User
from twostep.services import accounts
from twostep.services.errors import Conflict


def test_any_case_finds_the_user_and_nothing_else_does(make_user):
    member = make_user("Member.One")
    assert User.objects.get_by_natural_key("member.one") == member
    assert User.objects.get_by_natural_key("MEMBER.ONE") == member
    for other in ("member.on", "member_one", "member%one", "member.one "):
        with pytest.raises(User.DoesNotExist):
            User.objects.get_by_natural_key(other)


def test_the_lookup_folds_letters_as_the_unique_index_does(make_user):
    """Where the database folds É and é alike (PostgreSQL) both the lookup and the uniqueness do; where it
    folds ASCII only (SQLite's LOWER), neither does: a login is never found that the index calls another."""
    emile = make_user("Émile", email="emile@acme.example")
    try:
        make_user("émile", email="emile2@acme.example")
    except Conflict:
        assert User.objects.get_by_natural_key("émile") == emile
    else:
        assert User.objects.get_by_natural_key("émile") != emile
    assert User.objects.get_by_natural_key("Émile") == emile


def plan(queryset) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: ask whether the index *can* serve
        return queryset.explain()


def test_sign_in_finds_the_login_and_the_account_name_by_their_index(account, make_user):
    make_user("member")
    assert "user_login_unique_ci" in plan(User.objects.filter(login__caseless="MEMBER"))
    assert "account_name_unique_ci" in plan(Account.objects.filter(name__caseless="acme"))
    assert accounts.user_status("MEMBER").user.login == "member"
