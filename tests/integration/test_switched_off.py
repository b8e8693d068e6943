"""After an admin or the operator switched someone's 2FA off, that person's security page says so."""

from __future__ import annotations

import pytest
from django.test import Client

from twostep.services import authenticators, recovery

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db


def switch_off_as_admin(admin, enrolled, admin_factor):
    return recovery.admin_disable_two_factor(admin, enrolled.user.pk, "lost phone, called them", PASSWORD,
                                             ORIGIN, code=admin_factor.code())


def test_switched_off_for_user_names_the_admin_the_time_and_the_reason(admin, enrolled, admin_factor):
    assert recovery.switched_off_for_user(enrolled.user) is None  # 2FA on: nothing to say
    switch_off_as_admin(admin, enrolled, admin_factor)
    told = recovery.switched_off_for_user(enrolled.user)
    assert told is not None and told.by == "admin" and told.reason == "lost phone, called them"
    assert told.at is not None


def test_switched_off_for_user_by_the_operator_names_no_admin(enrolled):
    recovery.operator_disable_two_factor(enrolled.user.login, "ticket 42")
    told = recovery.switched_off_for_user(enrolled.user)
    assert told is not None and told.by == "" and told.reason == "ticket 42"


def test_switched_off_for_user_is_forgotten_once_set_up_again(admin, enrolled, admin_factor, enroll):
    switch_off_as_admin(admin, enrolled, admin_factor)
    enroll(enrolled.user)
    assert recovery.switched_off_for_user(enrolled.user) is None


def test_switched_off_for_user_is_forgotten_when_the_user_switched_on_and_off_since(
        admin, enrolled, admin_factor, enroll, clock):
    switch_off_as_admin(admin, enrolled, admin_factor)
    again = enroll(enrolled.user)
    clock.advance(30)
    authenticators.disable(enrolled.user, PASSWORD, again.code(), ORIGIN)
    assert recovery.switched_off_for_user(enrolled.user) is None


def test_security_page_says_who_switched_it_off_and_offers_switching_on(admin, enrolled, admin_factor):
    switch_off_as_admin(admin, enrolled, admin_factor)
    client = Client()
    client.post("/login", {"login": enrolled.user.login, "password": PASSWORD})
    page = client.get("/security").content.decode()
    assert 'id="switched-off"' in page
    assert "Your account admin admin switched your two-factor authentication off on" in page
    assert "Reason given: lost phone, called them" in page
    assert 'action="/security/setup"' in page  # the way back: switching it on again
